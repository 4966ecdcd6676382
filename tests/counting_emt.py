"""An EMT calculator that records every calculation in a file (to prove campaigns recompute nothing)."""

from __future__ import annotations

import os

from ase.calculators.emt import EMT


class CountingEMT(EMT):
    """EMT that appends a line to ``$SUS2_TEST_COUNTER`` per calculation (optionally sleeping, to be killable)."""

    def calculate(self, atoms=None, properties=("energy",), system_changes=None):
        super().calculate(atoms, properties, system_changes or ["positions"])
        with open(os.environ["SUS2_TEST_COUNTER"], "a") as fh:
            fh.write("x\n")
        delay = float(os.environ.get("SUS2_TEST_DELAY", "0"))
        if delay:
            import time

            time.sleep(delay)
