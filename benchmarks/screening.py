"""Equation-of-state screening throughput: structures per minute (relaxation included) with the relaxations in
lockstep and the grid's energies in batched model calls, next to the same pipeline driven one ASE call per
relaxation step and per volume, in the same run; with ACWF's ν against the all-electron references where
../shared/data/acwf is present.  Prints JSON.

    python benchmarks/screening.py [--model ../shared/data/sus2_published/m3gnet/l2k3.mtp] [--limit 384] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import tarfile
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
from ase import units
from ase.build import bulk

from sus2_model import Sus2Calculator, Sus2ModelError
from sus2_workflows.errors import ScreeningError
from sus2_workflows.steps.eos import delta_metrics, energies_one_by_one, energies_per_atom, eos_of, relax_all, screen_eos
from sus2_workflows.steps.targets import Target, read_targets

ACWF = Path(__file__).resolve().parents[2] / "shared" / "data" / "acwf"
MODEL = Path(__file__).resolve().parents[2] / "shared" / "data" / "sus2_published" / "m3gnet" / "l2k3.mtp"


def acwf_targets(folder: Path) -> list[Target]:
    """The ACWF unaries' structures (xsf), unpacked into ``folder``."""
    with tarfile.open(ACWF / "acwf-unaries-PBE-v1-structures-xsf.tar.gz") as archive:
        archive.extractall(folder, filter="data")
    return read_targets([next(folder.rglob("xsfs-unaries-verification-PBE-v1"))])


def prototype_targets() -> list[Target]:
    """A few elemental crystals, where the reference data are absent."""
    return [Target(f"{e}-{p}", bulk(e, p)) for e in ("Cu", "Al", "Ni", "Si") for p in ("fcc", "bcc", "diamond")]


def failure_kind(error: str) -> str:
    """An error message with its numbers and lists blanked, so that failures of one kind count together."""
    return re.sub(r"-?[0-9][0-9.eE+-]*", "#", re.sub(r"\[[^]]*\]", "[...]", error.removeprefix("EOS: ")))[:90]


def screen(targets: list[Target], calculator: Sus2Calculator, batched: bool) -> tuple[float, dict, Counter]:
    """Seconds for the whole screen, the results by name, and the failures counted by kind.  Batched: every
    relaxation in lockstep (one model call per BFGS step for all structures) and each grid in one call; else one ASE
    call per relaxation step and per volume."""
    results, failures = {}, Counter(failure_kind(t.error) for t in targets if t.atoms is None)
    start = time.perf_counter()
    readable = [t for t in targets if t.atoms is not None]
    relaxed = relax_all([t.atoms for t in readable], calculator) if batched else [None] * len(readable)
    for target, cell in zip(readable, relaxed):
        try:
            if isinstance(cell, Exception):
                raise cell
            if batched:
                fit = eos_of(cell, lambda images: energies_per_atom(images, calculator))
            else:
                fit = screen_eos(target.atoms, calculator, energies_one_by_one)
            results[target.name] = (fit.v0, fit.b0_gpa, fit.b1)
        except (ScreeningError, Sus2ModelError) as exc:  # named failures (unknown element, close contact, a bad fit)
            failures[failure_kind(str(exc))] += 1
    return time.perf_counter() - start, results, failures


def nu_against_acwf(results: dict) -> dict:
    """ν of every result against the ACWF all-electron equation of state (median and the ACWF classes)."""
    reference = json.loads((ACWF / "results-unaries-verification-PBE-v1-AE-average.json").read_text())
    nus = []
    for name, ours in results.items():
        key = name.removesuffix(".xsf").replace("-", "-X/", 1)
        fit = reference["BM_fit_data"].get(key)
        if fit:
            atoms = reference["num_atoms_in_sim_cell"][key]
            theirs = (fit["min_volume"] / atoms, fit["bulk_modulus_ev_ang3"] / units.GPa, fit["bulk_deriv"])
            nus.append(delta_metrics(ours, theirs)["nu"])
    nus = np.array(nus)
    return {"compared": len(nus), "nu_median": float(np.median(nus)), "excellent": int((nus < 0.10).sum()),
            "good": int((nus < 0.33).sum()), "outliers": int((nus > 1.65).sum())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(MODEL))
    parser.add_argument("--limit", type=int, default=0, help="screen only the first N structures (0: all)")
    parser.add_argument("--json", action="store_true", help="print JSON (the only format)")
    args = parser.parse_args()
    calculator = Sus2Calculator(args.model)
    with tempfile.TemporaryDirectory() as folder:
        targets = acwf_targets(Path(folder)) if ACWF.is_dir() else prototype_targets()
    targets = targets[: args.limit or None]
    report = {"model": Path(args.model).name, "structures": len(targets), "cores": len(os.sched_getaffinity(0))}
    for mode, batched in (("batched", True), ("one_call_per_volume", False)):
        seconds, results, failures = screen(targets, calculator, batched)
        report[mode] = {"seconds": round(seconds, 2), "structures_per_minute": round(60 * len(targets) / seconds, 1),
                        "results": len(results), "failures": sum(failures.values())}
    report["failures_by_kind"] = dict(failures.most_common())  # the same in both modes (both report their total)
    if ACWF.is_dir():
        report["acwf"] = nu_against_acwf(results)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
