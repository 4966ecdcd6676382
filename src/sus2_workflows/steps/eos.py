"""Equation-of-state screening: relax (cell and positions), E(V) on a volume grid around the relaxed cell, fits by
pymatgen's ``EOS`` (Birch-Murnaghan and Vinet), and the checks that turn a fit into a result or a named failure
(minimum not bracketed -> re-centred and re-run; B0 <= 0, B1 <= 0, non-convex data or a large residual -> failure).
ν and ε compare two equations of state as the ACWF verification does."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
from ase import Atoms, units
from ase.calculators.calculator import Calculator
from ase.calculators.singlepoint import SinglePointCalculator
from ase.eos import birchmurnaghan
from ase.filters import FrechetCellFilter
from ase.optimize import BFGS
from threadpoolctl import threadpool_limits

from sus2_model import Sus2Calculator, Sus2ModelError
from sus2_model.predict import Prediction

from ..errors import ScreeningError
from .progress import progress_bar

WINDOW = 0.06  # ± relative volume around the relaxed cell (the ACWF window)
POINTS = 7
MAX_RESIDUAL_MEV = 5.0  # rms misfit (meV/atom) above which a fit is not a result
RECENTRE_TRIES = 4
FITS = ("birch_murnaghan", "vinet")
RELAX_FMAX = 0.01  # eV/Å (and the filter's stress equivalent)
RELAX_STEPS = 200
BATCH_SIZE = 64  # structures per batched model call
MAX_VOLUME_CHANGE = 2.0  # a relaxation that changes the volume more than this factor has exploded or collapsed
TRAINING_MARGIN = 0.01  # a grid volume within this fraction of the training volumes counts as covered
SETTINGS = {"window": WINDOW, "points": POINTS, "max_residual_mev": MAX_RESIDUAL_MEV, "recentre_tries": RECENTRE_TRIES,
            "fits": FITS, "relax": {"filter": "FrechetCellFilter", "optimizer": "BFGS", "fmax": RELAX_FMAX,
                                    "steps": RELAX_STEPS, "max_volume_change": MAX_VOLUME_CHANGE}}


class UnbracketedError(ScreeningError):
    """The grid's lowest energy lies at one of its ends: the minimum is outside it (``guess``: where to look)."""

    def __init__(self, message: str, guess: float) -> None:
        super().__init__(message)
        self.guess = guess


def birch_murnaghan(v: np.ndarray, e0: float, v0: float, b0: float, b1: float) -> np.ndarray:
    """Third-order Birch-Murnaghan energy (B0 in eV/Å³), ASE's form with the arguments in this module's order."""
    return birchmurnaghan(v, e0, b0, b1, v0)


@dataclass
class EosFit:
    """Per-atom parameters of one fit and the points they were fitted to."""

    volumes: list[float]  # Å³/atom
    energies: list[float]  # eV/atom
    v0: float
    e0: float
    b0_gpa: float
    b1: float
    rms_residual_mev: float
    others: dict[str, dict[str, float]] = field(default_factory=dict)  # the other fits: kind -> v0, b0_gpa, b1
    structure: Atoms | None = None  # the (relaxed) cell the grid strains


def fit_eos(volumes: Sequence[float], energies: Sequence[float], kind: str = FITS[0]) -> EosFit:
    """Fit E(V) per atom with pymatgen's ``EOS(kind)``; :class:`ScreeningError` where it is no result: too few
    points, non-convex data, B0 <= 0, B1 <= 0 (a bulk modulus that falls under compression), a minimum outside the
    sampled volumes or an rms misfit above ``MAX_RESIDUAL_MEV``."""
    from pymatgen.analysis.eos import EOS

    v, e = np.asarray(volumes, float), np.asarray(energies, float)
    if len(v) < 5 or not np.all(np.isfinite(e)):
        raise ScreeningError(f"EOS: need at least 5 finite energies, got {np.isfinite(e).sum()}")
    curvature, slope, _ = np.polyfit(v, e, 2)
    if curvature <= 0:
        raise ScreeningError("EOS: the energies are not convex in volume")
    if int(np.argmin(e)) in (0, len(v) - 1):  # look where the parabola through the points has its minimum
        guess = float(np.clip(-slope / (2 * curvature), v.min() / 1.5, v.max() * 1.5))
        raise UnbracketedError(f"EOS: the lowest energy lies at the end of the sampled {v.min():.3f}-{v.max():.3f} "
                               "Å³/atom: the minimum is outside the grid", guess)
    try:
        fit = EOS(kind).fit(v, e)
    except Exception as exc:  # pymatgen raises EOSError and scipy's errors
        raise ScreeningError(f"EOS: the {kind} fit failed: {exc}") from None
    residual = float(np.sqrt(np.mean((e - fit.func(v)) ** 2)) * 1000)
    result = EosFit(v.tolist(), e.tolist(), float(fit.v0), float(fit.e0), float(fit.b0) / units.GPa, float(fit.b1),
                    residual)
    if not result.b0_gpa > 0:
        raise ScreeningError(f"EOS: {kind} B0 = {result.b0_gpa:.3g} GPa is not positive")
    if not result.b1 > 0:
        raise ScreeningError(f"EOS: {kind} B1 = {result.b1:.3g} is not positive (B0 would fall under compression)")
    if not v.min() < result.v0 < v.max():
        raise UnbracketedError(f"EOS: the {kind} minimum V0 = {result.v0:.3f} Å³/atom lies outside the sampled "
                               f"{v.min():.3f}-{v.max():.3f} Å³/atom", result.v0)
    if residual > MAX_RESIDUAL_MEV:
        raise ScreeningError(f"EOS: {kind} rms misfit {residual:.2f} meV/atom > {MAX_RESIDUAL_MEV} meV/atom")
    return result


def relax(atoms: Atoms, calculator: Calculator, fmax: float = RELAX_FMAX, steps: int = RELAX_STEPS) -> Atoms:
    """Cell and positions relaxed with ASE's ``FrechetCellFilter`` and BFGS (a copy; the input is kept); a
    relaxation that does not converge, or changes the volume by more than ``MAX_VOLUME_CHANGE``, is a failure."""
    if not atoms.pbc.all():
        raise ScreeningError("EOS: the structure is not periodic in all three directions")
    relaxed = atoms.copy()
    relaxed.calc = calculator
    with threadpool_limits(limits=1, user_api="blas"):  # see relax_all
        converged = BFGS(FrechetCellFilter(relaxed), logfile=None).run(fmax=fmax, steps=steps)
    if not converged:
        raise ScreeningError(f"EOS: the relaxation did not converge to {fmax} eV/Å in {steps} steps")
    return _volume_checked(atoms, relaxed)


def relax_all(structures: Sequence[Atoms], calculator: Calculator, fmax: float = RELAX_FMAX,
              steps: int = RELAX_STEPS, progress: bool = False) -> list[Atoms | Exception]:
    """:func:`relax` of every structure, each a relaxed copy or the error that stopped it (the others go on).  With a
    SUS2 calculator all of them step in lockstep: one batched model call per BFGS step for every structure still
    relaxing, the same optimizer and convergence test as :func:`relax`, so the same relaxed cells."""
    if not isinstance(calculator, Sus2Calculator):
        return [_attempt(relax, atoms, calculator, fmax, steps) for atoms in structures]
    results: list[Atoms | Exception | None] = [None] * len(structures)
    running = []
    for k, atoms in enumerate(structures):
        if not atoms.pbc.all():
            results[k] = ScreeningError("EOS: the structure is not periodic in all three directions")
            continue
        relaxed = atoms.copy()
        relaxed.calc = None
        running.append((k, relaxed, BFGS(FrechetCellFilter(relaxed), logfile=None)))
    # the filter's 3x3 matrix functions run fastest without BLAS threads (3x on 2 busy cores); the model keeps torch's
    with progress_bar("relaxing", len(running), progress) as advance, threadpool_limits(limits=1, user_api="blas"):
        for step in range(steps + 1):
            still = []
            for (k, relaxed, optimizer), prediction in zip(running, _predictions([r[1] for r in running], calculator)):
                if isinstance(prediction, Exception):
                    results[k] = prediction
                elif optimizer.optimizable.converged(_gradient(optimizer, relaxed, prediction), fmax):
                    results[k] = _attempt(_volume_checked, structures[k], relaxed)
                elif step == steps:
                    results[k] = ScreeningError(f"EOS: the relaxation did not converge to {fmax} eV/Å in {steps} steps")
                else:
                    optimizer.step()  # reads the forces and stress just attached
                    still.append((k, relaxed, optimizer))
                    continue
                advance()
            running = still
    return results


def _attempt(function: Callable, *args: Any) -> Any:
    """``function(*args)``, or the screening or model error it raised."""
    try:
        return function(*args)
    except (ScreeningError, Sus2ModelError) as exc:
        return exc


def _gradient(optimizer: BFGS, atoms: Atoms, prediction: Prediction) -> np.ndarray:
    """Give ``atoms`` the model's labels at its current geometry; the optimizer's gradient from them."""
    atoms.calc = SinglePointCalculator(atoms, energy=prediction.energy, forces=prediction.forces,
                                       stress=prediction.stress)
    return optimizer.optimizable.get_gradient()


def _predictions(images: list[Atoms], calculator: Sus2Calculator) -> list[Prediction | Exception]:
    """One batched model call for ``images``; where it fails (a structure the model cannot take), one call each, so
    the failure is that structure's alone."""
    if not images:
        return []
    try:
        return calculator.predict(images, batch_size=BATCH_SIZE)
    except Sus2ModelError:
        return [_attempt(lambda a: calculator.predict([a])[0], atoms) for atoms in images]


def _volume_checked(original: Atoms, relaxed: Atoms) -> Atoms:
    """``relaxed`` without its calculator, unless its volume left ``MAX_VOLUME_CHANGE`` of the original's."""
    change = relaxed.get_volume() / original.get_volume()
    if not 1 / MAX_VOLUME_CHANGE < change < MAX_VOLUME_CHANGE:
        raise ScreeningError(f"EOS: the relaxation changed the volume {change:.2f}-fold (exploded or collapsed)")
    relaxed.calc = None
    return relaxed


def volume_grid(atoms: Atoms, centre: float = 1.0, window: float = WINDOW, points: int = POINTS) -> list[Atoms]:
    """Copies of ``atoms`` at volumes ``centre`` x (1 - window .. 1 + window), fractional positions kept."""
    grid = []
    for scale in centre * np.linspace(1 - window, 1 + window, points):
        strained = atoms.copy()
        strained.set_cell(atoms.cell.array * scale ** (1 / 3), scale_atoms=True)
        grid.append(strained)
    return grid


def energies_per_atom(images: Sequence[Atoms], calculator: Calculator) -> list[float]:
    """Energy per atom of every image: one batched model call for a SUS2 calculator, one call each otherwise."""
    if isinstance(calculator, Sus2Calculator):
        return [p.energy / len(a) for a, p in zip(images, calculator.predict(list(images), batch_size=BATCH_SIZE))]
    return energies_one_by_one(images, calculator)


def energies_one_by_one(images: Sequence[Atoms], calculator: Calculator) -> list[float]:
    """Energy per atom of every image, one ASE calculator call each."""
    energies = []
    for atoms in images:
        atoms = atoms.copy()
        atoms.calc = calculator
        energies.append(atoms.get_potential_energy() / len(atoms))
    return energies


def eos_of(atoms: Atoms, energies: Callable[[Sequence[Atoms]], list[float]], window: float = WINDOW,
           points: int = POINTS) -> EosFit:
    """The EOS of (relaxed) ``atoms``: the grid, its energies and the fits.  A minimum outside the grid re-centres
    it on the best guess and tries again, at most ``RECENTRE_TRIES`` times; then it is a failure that says so."""
    per_atom = atoms.get_volume() / len(atoms)
    centre = 1.0
    for attempt in range(RECENTRE_TRIES + 1):
        grid = volume_grid(atoms, centre, window, points)
        volumes, values = [g.get_volume() / len(g) for g in grid], energies(grid)
        try:
            fit = fit_eos(volumes, values)
        except UnbracketedError as exc:
            if attempt == RECENTRE_TRIES:
                raise UnbracketedError(f"{exc} (after {attempt} re-centrings)", exc.guess) from None
            centre = exc.guess / per_atom
            continue
        for kind in FITS[1:]:
            try:
                other = fit_eos(volumes, values, kind)
                fit.others[kind] = {"v0": other.v0, "b0_gpa": other.b0_gpa, "b1": other.b1}
            except ScreeningError as exc:  # the main fit stands; the other one says why it is missing
                fit.others[kind] = {"error": str(exc)}
        fit.structure = atoms
        return fit
    raise UnbracketedError("EOS: no grid tried", per_atom)  # RECENTRE_TRIES < 0


def screen_eos(atoms: Atoms, calculator: Calculator,
               energies: Callable[[Sequence[Atoms], Calculator], list[float]] = energies_per_atom) -> EosFit:
    """Relax ``atoms``, then its E(V) on the grid (``energies`` of the images with ``calculator``) and the fits, with
    the settings of :data:`SETTINGS`."""
    return eos_of(relax(atoms, calculator), lambda images: energies(images, calculator))


def beyond_training(grid: Sequence[float], training: Sequence[float], margin: float = TRAINING_MARGIN) -> str | None:
    """Where an EOS grid (Å³/atom) leaves the volumes a model was trained on (Å³/atom of the training structures of
    the same composition), by more than ``margin``: a message, or None where the training volumes span the grid.
    The extrapolation grade does not see this: on a QE-trained Ge model, grid points 3 % beyond the largest training
    volume graded 0.17 (interpolation), while its B0 came out 11 % low against QE."""
    if not training:
        return f"no training structure of this composition (grid {min(grid):.2f}-{max(grid):.2f} Å³/atom)"
    low, high = min(training), max(training)
    if min(grid) >= low * (1 - margin) and max(grid) <= high * (1 + margin):
        return None
    return (f"the grid ({min(grid):.2f}-{max(grid):.2f} Å³/atom) leaves the training volumes of this composition "
            f"({low:.2f}-{high:.2f} Å³/atom): the model extrapolates there")


def delta_metrics(a: tuple[float, float, float], b: tuple[float, float, float],
                  window: float = WINDOW) -> dict[str, float]:
    """ACWF's ν and ε between two equations of state given per atom as (V0 Å³, B0 GPa, B1): ν = 100·√(δV0² +
    (δB0/20)² + (δB1/400)²) with δX = 2(Xa - Xb)/(Xa + Xb); ε = the rms energy difference of the two
    Birch-Murnaghan curves over ±``window`` around their mean V0, normalised by their spread."""
    delta = [2 * (x - y) / (x + y) for x, y in zip(a, b)]
    nu = 100 * float(np.sqrt(delta[0] ** 2 + (delta[1] / 20) ** 2 + (delta[2] / 400) ** 2))
    v = 0.5 * (a[0] + b[0]) * np.linspace(1 - window, 1 + window, 1001)
    ea = birch_murnaghan(v, 0.0, a[0], a[1] * units.GPa, a[2])
    eb = birch_murnaghan(v, 0.0, b[0], b[1] * units.GPa, b[2])
    spread = np.sqrt(np.mean((ea - ea.mean()) ** 2) * np.mean((eb - eb.mean()) ** 2))
    return {"nu": nu, "epsilon": float(np.sqrt(np.mean((ea - eb) ** 2) / spread))}
