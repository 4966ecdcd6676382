"""An EMT calculator that records every calculation in a file (to prove campaigns recompute nothing)."""

from __future__ import annotations

import os
import random

from ase.calculators.emt import EMT


class CountingEMT(EMT):
    """EMT that appends a line to ``$SUS2_TEST_COUNTER`` per calculation (optionally sleeping, to be killable, or
    failing like an unconverged SCF on the structure whose source is ``$SUS2_TEST_FAIL_SOURCE``, or on a random
    ``$SUS2_TEST_FAIL_RATE`` of its calls, a line per failure in ``$SUS2_TEST_FAILURES``)."""

    def calculate(self, atoms=None, properties=("energy",), system_changes=None):
        fail = os.environ.get("SUS2_TEST_FAIL_SOURCE")
        if fail and atoms is not None and atoms.info.get("source") == fail:
            raise RuntimeError("SCF did not converge (a test's failure)")
        if random.random() < float(os.environ.get("SUS2_TEST_FAIL_RATE", "0")):
            with open(os.environ["SUS2_TEST_FAILURES"], "a") as fh:
                fh.write(f"{atoms.info.get('source')}\n")
            raise RuntimeError("SCF did not converge (a random failure)")
        super().calculate(atoms, properties, system_changes or ["positions"])
        with open(os.environ["SUS2_TEST_COUNTER"], "a") as fh:
            fh.write("x\n")
        delay = float(os.environ.get("SUS2_TEST_DELAY", "0"))
        if delay:
            import time

            time.sleep(delay)
