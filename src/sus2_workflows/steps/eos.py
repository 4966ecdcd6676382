"""Equation-of-state screening: E(V) on a volume grid around a structure and ASE's Birch-Murnaghan fit (V0, E0, B0,
B1) — the same fit :mod:`sus2_model.demo` uses."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ase import Atoms, units
from ase.calculators.calculator import Calculator
from ase.eos import EquationOfState, birchmurnaghan


def birch_murnaghan(v: np.ndarray, e0: float, v0: float, b0: float, b1: float) -> np.ndarray:
    """Third-order Birch-Murnaghan energy (B0 in eV/Å³), ASE's form with the arguments in this module's order."""
    return birchmurnaghan(v, e0, b0, b1, v0)


@dataclass
class EosFit:
    """Per-atom Birch-Murnaghan parameters and the points they were fitted to."""

    volumes: list[float]  # Å³/atom
    energies: list[float]  # eV/atom
    v0: float
    e0: float
    b0_gpa: float
    b1: float
    rms_residual_mev: float


def fit_birch_murnaghan(volumes, energies) -> EosFit:
    """Fit E(V) (per atom) with :class:`ase.eos.EquationOfState` (it starts from a parabola through the points)."""
    v, e = np.asarray(volumes, float), np.asarray(energies, float)
    eos = EquationOfState(v, e, eos="birchmurnaghan")
    eos.fit(warn=False)
    e0, b0, b1, v0 = (float(p) for p in eos.eos_parameters)
    residual = e - birchmurnaghan(v, e0, b0, b1, v0)
    return EosFit(v.tolist(), e.tolist(), v0, e0, b0 / units.GPa, b1, float(np.sqrt(np.mean(residual**2)) * 1000))


def eos_points(atoms: Atoms, calculator: Calculator, window: float = 0.06, points: int = 7) -> tuple[list, list]:
    """Energies per atom at volumes scaled by 1-window .. 1+window (cell scaled, fractional positions kept)."""
    volumes, energies = [], []
    for scale in np.linspace(1 - window, 1 + window, points):
        strained = atoms.copy()
        strained.set_cell(atoms.cell.array * scale ** (1 / 3), scale_atoms=True)
        strained.calc = calculator
        volumes.append(strained.get_volume() / len(strained))
        energies.append(strained.get_potential_energy() / len(strained))
    return volumes, energies


def screen_eos(atoms: Atoms, calculator: Calculator, window: float = 0.06, points: int = 7) -> EosFit:
    """E(V) on ``points`` volumes within ±``window`` and its Birch-Murnaghan fit."""
    return fit_birch_murnaghan(*eos_points(atoms, calculator, window, points))
