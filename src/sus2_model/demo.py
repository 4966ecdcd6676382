"""A self-contained example (``python -m sus2_model.demo``): fit a SUS2 model to EMT Cu-Ni data and compare its
equation of state with EMT's.  Runs anywhere (no reference data, no DFT); tests use its data and model helpers.
Writes the model (``.mtp``) and a JSON summary into ``--out``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.calculators.singlepoint import SinglePointCalculator
from ase.eos import EquationOfState
from ase.units import GPa

from . import Sus2Calculator, Sus2Potential, error_metrics, predict
from .io import atomic_write, write_mtp
from .templates import untrained_mtp
from .train import fit_linear


def emt_dataset(n: int, seed: int = 0, ni_fraction: float = 0.2) -> list[Atoms]:
    """Strained, rattled fcc Cu(-Ni) cells labelled by EMT (energy, forces, stress)."""
    rng = np.random.default_rng(seed)
    images = []
    for k in range(n):
        cell = bulk("Cu", "fcc", a=3.61 * rng.uniform(0.94, 1.06), cubic=True)
        atoms = cell.repeat((2, 2, 2) if k % 2 else (1, 1, 2))
        swap = rng.random(len(atoms)) < ni_fraction
        atoms.symbols[swap] = "Ni"
        atoms.set_cell(atoms.cell.array @ (np.eye(3) + rng.normal(0, 0.01, (3, 3))), scale_atoms=True)
        atoms.rattle(rng.uniform(0.01, 0.1), seed=seed * 1000 + k)
        atoms.calc = EMT()
        labels = {"energy": atoms.get_potential_energy(), "forces": atoms.get_forces(), "stress": atoms.get_stress()}
        atoms.calc = SinglePointCalculator(atoms, **labels)
        atoms.info["source"] = f"emt:{seed}:{k}"
        images.append(atoms)
    return images


def fitted_emt_model(n_train: int = 40, seed: int = 0) -> Sus2Potential:
    """A small L2 SUS2 model whose linear parameters are fitted to EMT Cu-Ni data."""
    model = Sus2Potential(untrained_mtp(2, max_rank=2, n_radial=3, max_level=16, min_dist=2.0, max_dist=5.0,
                                        seed=seed), ["Cu", "Ni"])
    fit_linear(model, emt_dataset(n_train, seed), force_weight=0.1)
    return model


def _eos(calc, a0: float = 3.61) -> dict[str, float]:
    """Birch-Murnaghan fit (ase.eos) of ``calc``'s fcc Cu energies over +-4 % of the lattice constant ``a0``."""
    volumes, energies = [], []
    for s in np.linspace(0.96, 1.04, 9):
        atoms = bulk("Cu", "fcc", a=a0 * s, cubic=True)
        atoms.calc = calc
        volumes.append(atoms.get_volume() / len(atoms))
        energies.append(atoms.get_potential_energy() / len(atoms))
    eos = EquationOfState(volumes, energies, eos="birchmurnaghan")
    v0, e0, b0 = eos.fit()
    return {"v0_a3_atom": float(v0), "e0_ev_atom": float(e0), "b0_gpa": float(b0 / GPa)}


def main(argv: list[str] | None = None) -> int:
    """Fit, evaluate on held-out data, compare the Cu equation of state with EMT's, write the outputs."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="demo_output")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    model = fitted_emt_model()
    test = emt_dataset(20, seed=1)
    metrics = error_metrics(test, predict(model, test))
    write_mtp(model.to_mtp(), out / "sus2_cu_ni.mtp")
    summary = {"test_errors": metrics, "eos_sus2": _eos(Sus2Calculator(model)), "eos_emt": _eos(EMT()),
               "parameters": model.parameter_count(), "seconds": round(time.perf_counter() - start, 2)}
    atomic_write(out / "summary.json", lambda fh: fh.write(json.dumps(summary, indent=2)))
    print(json.dumps(summary, indent=2))
    print(f"model: {out / 'sus2_cu_ni.mtp'}   summary: {out / 'summary.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
