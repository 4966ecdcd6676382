"""Equation-of-state screening: E(V) on a volume grid around a structure and a Birch-Murnaghan fit (V0, E0, B0, B1)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator
from scipy.optimize import curve_fit

EV_A3_TO_GPA = 160.21766208


def birch_murnaghan(v: np.ndarray, e0: float, v0: float, b0: float, b1: float) -> np.ndarray:
    """Third-order Birch-Murnaghan energy (B0 in eV/Å³)."""
    eta = (v0 / v) ** (2.0 / 3.0)
    return e0 + 9.0 * v0 * b0 / 16.0 * ((eta - 1.0) ** 3 * b1 + (eta - 1.0) ** 2 * (6.0 - 4.0 * eta))


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
    """Fit E(V) (per atom); starts from a parabola through the points."""
    v, e = np.asarray(volumes, float), np.asarray(energies, float)
    a, b, c = np.polyfit(v, e, 2)
    v_min = -b / (2 * a) if a > 0 else v[np.argmin(e)]
    guess = (float(e.min()), float(v_min), float(max(2 * a * v_min, 1e-3)), 4.0)
    params, _ = curve_fit(birch_murnaghan, v, e, p0=guess, maxfev=20000)
    residual = e - birch_murnaghan(v, *params)
    return EosFit(v.tolist(), e.tolist(), float(params[1]), float(params[0]), float(params[2] * EV_A3_TO_GPA),
                  float(params[3]), float(np.sqrt(np.mean(residual**2)) * 1000))


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
