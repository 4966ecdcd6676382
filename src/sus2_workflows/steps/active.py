"""Active learning: explore with the current model, grade extrapolation, pick the most informative new structures."""

from __future__ import annotations

from itertools import zip_longest
from typing import Any, Callable, Sequence

import numpy as np
from ase import Atoms, units
from ase.constraints import FixAtoms
from ase.geometry import find_mic
from ase.md.langevin import Langevin
from ase.md.nptberendsen import NPTBerendsen
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution
from ase.optimize import BFGS

from sus2_model import StructureError, Sus2Calculator, Sus2Potential
from sus2_model.selection import farthest_point_selection, structure_descriptors
from sus2_model.uncertainty import Committee, ExtrapolationGrade

from .adsorption import RELAX_FMAX, RELAX_STEPS, anomaly, fixed_bottom

MINIMUM_SHIFT = 0.1  # Å: a training structure this close to a model minimum, atom by atom, already labels it
MINIMUM_SAME_ENERGY = 0.005  # eV: end points of one composition this close in model energy are one minimum

MD_TIMESTEP = 2.0  # fs
NPT_BULK_MODULUS_GPA = 100.0  # the barostat's compressibility is its inverse: a solid's, roughly

UNCERTAINTY_KEY = "uncertainty"  # info key of a frame's value measured during MD

Uncertainty = Callable[[Sequence[Atoms]], np.ndarray]  # structures -> one value each (higher: less certain)


def _snapshot(atoms: Atoms, trajectory: str, step: int) -> Atoms:
    """A copy of ``atoms`` without its calculator or constraints, named by its trajectory and step."""
    frame = atoms.copy()
    frame.calc = None
    frame.set_constraint()
    frame.info = {"source": f"{trajectory}:{step}", "trajectory": trajectory}
    return frame


def _dynamics(atoms: Atoms, temperature_k: float, pressure_gpa: float | None, rng: np.random.Generator) -> Any:
    """Langevin NVT, or with a pressure and a cell periodic in every direction, Berendsen NPT (thermostat and
    barostat; the cell follows the stress)."""
    if pressure_gpa is None or not atoms.pbc.all():
        return Langevin(atoms, MD_TIMESTEP * units.fs, temperature_K=temperature_k, friction=0.02, rng=rng,
                        fixcm=False)
    return NPTBerendsen(atoms, MD_TIMESTEP * units.fs, temperature_K=temperature_k,
                        pressure_au=pressure_gpa * units.GPa, taut=100 * units.fs, taup=1000 * units.fs,
                        compressibility_au=1.0 / (NPT_BULK_MODULUS_GPA * units.GPa))


def explore(model: Sus2Potential, starts: Sequence[Atoms], temperature_k: float | Sequence[float], steps: int,
            sample_every: int, seed: int = 0, task: str | None = None, uncertainty: Uncertainty | None = None,
            upper: float = np.inf, pressures_gpa: Sequence[float] | None = None) -> list[Atoms]:
    """MD from each start with the model (on ``task``'s surface) at each temperature of ``temperature_k`` (one, or a
    schedule) and, with ``pressures_gpa``, each pressure (NPT where the start is periodic in every direction);
    frames every ``sample_every`` steps.  A trajectory that drives atoms closer than the model allows ends there
    (its frames so far are kept); with ``uncertainty``, so does one whose frame reaches ``upper``, the upper trust
    level (that frame is kept too; each frame's value in ``info["uncertainty"]``, for :func:`uncertainties`)."""
    rng = np.random.default_rng(seed)
    temperatures = [float(temperature_k)] if np.isscalar(temperature_k) else [float(t) for t in temperature_k]
    conditions = [(t, p) for t in temperatures for p in (pressures_gpa if pressures_gpa is not None else [None])]
    frames: list[Atoms] = []
    for k, start in enumerate(starts):
        for temperature, pressure in conditions:
            atoms = start.copy()
            atoms.calc = Sus2Calculator(model, task=task)
            MaxwellBoltzmannDistribution(atoms, temperature_K=temperature, rng=rng)
            dyn = _dynamics(atoms, temperature, pressure, rng)
            name = f"md:{start.info.get('source', k)}" + ("" if len(conditions) == 1 else f":{temperature:g}K" + (
                "" if pressure is None else f":{pressure:g}GPa"))
            for n in range(0, steps, sample_every):
                try:
                    dyn.run(sample_every)
                except StructureError:
                    break
                frames.append(_snapshot(atoms, name, n + sample_every))
                if uncertainty is not None:
                    frames[-1].info[UNCERTAINTY_KEY] = float(uncertainty(frames[-1:])[0])
                    if frames[-1].info[UNCERTAINTY_KEY] >= upper:
                        break
    return frames


def _slab_constraint(start: Atoms) -> FixAtoms | None:
    """The fixed bottom layers of a learned placement (``info["n_slab"]``, ``info["fixed_layers"]``), as the screen
    fixes them; None for any other start."""
    n_slab, fixed = start.info.get("n_slab"), start.info.get("fixed_layers", 0)
    if not n_slab or not fixed:
        return None
    return fixed_bottom(start, fixed, range(n_slab))


def relaxation_frames(model: Sus2Potential, starts: Sequence[Atoms], steps: int, sample_every: int,
                      task: str | None = None) -> list[Atoms]:
    """Frames along a BFGS relaxation with the model from each start: every ``sample_every`` steps of its first
    ``steps``, and its end point when it converges within :data:`~.adsorption.RELAX_STEPS` (``info["minimum"]``,
    the model's energy in ``info["model_energy"]``, for a learned placement the screen's anomaly, if any, in
    ``info["anomaly"]``, and ``info["clean_slab"]`` where it is a learned clean slab): the configurations a screen's
    relaxations pass through (an adsorbate sinking from its placement height into a hollow), which MD at the
    placement rarely visits, and the minima it will report.  A learned slab keeps its bottom layers
    fixed, as the screen does.  A relaxation that drives atoms closer than the model allows ends there (its frames
    so far are kept)."""
    frames: list[Atoms] = []
    for k, start in enumerate(starts):
        atoms = start.copy()
        constraint = _slab_constraint(start)
        if constraint is not None:
            atoms.set_constraint(constraint)
        atoms.calc = Sus2Calculator(model, task=task)
        optimizer = BFGS(atoms, logfile=None)
        trajectory, converged = f"relax:{start.info.get('source', k)}", False
        while not converged and optimizer.nsteps < RELAX_STEPS:
            sampling = optimizer.nsteps < steps
            try:
                converged = optimizer.run(fmax=RELAX_FMAX, steps=sample_every if sampling else RELAX_STEPS)
            except StructureError:
                break
            if sampling or converged:
                frame = _snapshot(atoms, trajectory, optimizer.nsteps)
                frames.append(frame)
        if converged:
            frame.info.update(minimum=True, model_energy=float(atoms.get_potential_energy()))
            n_slab = start.info.get("n_slab")
            problem = anomaly(start, frame, n_slab) if n_slab else None
            if problem is not None:
                frame.info["anomaly"] = problem
            if n_slab == len(start):
                frame.info["clean_slab"] = True
    return frames


def new_minima(candidates: Sequence[Atoms], training: Sequence[Atoms], max_new: int, shift: float = MINIMUM_SHIFT,
               same_energy: float = MINIMUM_SAME_ENERGY) -> list[Atoms]:
    """The relaxation end points (``info["minimum"]``) worth labelling, at most ``max_new``: clean slabs
    (``info["clean_slab"]``, changed or not) first, then, lowest model energy first, the end points the screen would
    keep and those its anomaly filter would reject (``info["anomaly"]``) in turn; one per distinct minimum (end points of one
    composition with model energies within ``same_energy`` eV are one minimum, as symmetry-equivalent sites are), and
    none that a training structure of the same atoms already matches to within ``shift`` Å per atom.

    The extrapolation grade does not see a model that interpolates badly: after three iterations of a Quantum ESPRESSO
    Cu(111)+O campaign that labelled uncertain frames only, the model's adsorption energies on its own minima were
    0.26-0.57 eV below DFT's.  Labelling the minima the screen will report is the check (and the correction) that
    the grade lacks.  An end point is labelled even when the way there had uncertain frames: in that campaign every
    relaxation had one for two iterations, so a rule that waited for certain trajectories labelled no minimum at
    all.  A relaxed clean slab comes first because every adsorption energy on its surface uses it.  The rejected
    end points take turns with the kept ones because they are where the model's landscape is wrong: in a later run
    of that campaign, which labelled kept end points only, 5 of the screen's 8 placements ended as "surface changed"
    and the hollows it kept were still bound 0.4-0.5 eV too strongly."""
    ends = [c for c in candidates if c.info.get("minimum")]
    by_energy = sorted(ends, key=lambda c: c.info["model_energy"])
    clean = [c for c in by_energy if c.info.get("clean_slab")]
    kept = [c for c in by_energy if not c.info.get("clean_slab") and "anomaly" not in c.info]
    rejected = [c for c in by_energy if not c.info.get("clean_slab") and "anomaly" in c.info]
    turns = [c for pair in zip_longest(kept, rejected) for c in pair if c is not None]
    chosen: list[Atoms] = []
    for end in clean + turns:
        formula, energy = end.get_chemical_formula(), end.info["model_energy"]
        if any(c.get_chemical_formula() == formula and abs(c.info["model_energy"] - energy) < same_energy
               for c in chosen):
            continue
        if not any(_matches(end, t, shift) for t in training):
            chosen.append(end)
            if len(chosen) == max_new:
                break
    return chosen


def _matches(atoms: Atoms, other: Atoms, shift: float) -> bool:
    """Whether ``other`` holds the same atoms, in the same order and cell, each within ``shift`` Å of its place in
    ``atoms`` (minimum image)."""
    if len(atoms) != len(other) or atoms.get_chemical_symbols() != other.get_chemical_symbols() or \
            not np.allclose(atoms.cell.array, other.cell.array, atol=1e-6):
        return False
    _, lengths = find_mic(atoms.positions - other.positions, atoms.cell, atoms.pbc)
    return bool(lengths.max() < shift)


def select_uncertain(model: Sus2Potential, candidates: Sequence[Atoms], values: np.ndarray, lower: float,
                     upper: float, max_new: int, first_per_trajectory: bool = True) -> list[Atoms]:
    """Candidates whose uncertainty ``values`` lie between the trust levels ``lower`` and ``upper`` (and, with
    ``first_per_trajectory``, only a trajectory's first, as MLIP-2's active learning breaks a trajectory there); of a
    trajectory's frames none after its first at or above ``upper``, which is a candidate itself where the trajectory
    had none before it (a model so uncertain that its first frames are beyond the upper level still learns there);
    at most ``max_new``, spread out by farthest-point selection in descriptor space.

    The frames after a trajectory's first uncertain one were reached with forces the model could not be trusted
    for: in a Quantum ESPRESSO Cu(111)+O campaign, the highest-graded frames of the model's relaxations had O driven
    into the slab, DFT forces of 110 to 19,724 eV/Å (dropped by curation) or no converged SCF at all, so the model
    never saw the O–Cu repulsion its relaxations lacked.  Frames without a ``trajectory`` each count as their own
    (beyond ``upper``, never a candidate)."""
    pool: list[Atoms] = []
    ended, picked = set(), set()
    for candidate, value in zip(candidates, values):
        trajectory = candidate.info.get("trajectory")
        if trajectory in ended:
            continue
        beyond = value >= upper
        if lower < value and (not beyond or (trajectory is not None and trajectory not in picked)):
            pool.append(candidate)
            picked.add(trajectory)
        if trajectory is not None and (beyond or (value > lower and first_per_trajectory)):
            ended.add(trajectory)
    if len(pool) > max_new:
        chosen = farthest_point_selection(structure_descriptors(model, pool), max_new)
        pool = [pool[i] for i in chosen]
    return pool


def uncertainties(frames: Sequence[Atoms], measure: Uncertainty) -> np.ndarray:
    """Each frame's uncertainty: the value :func:`explore` already measured (taken out of ``info``), else
    ``measure``'s, computed once for all the frames that lack one."""
    values = np.array([f.info.pop(UNCERTAINTY_KEY, np.nan) for f in frames], dtype=float)
    missing = np.flatnonzero(np.isnan(values))
    if len(missing):
        values[missing] = measure([frames[i] for i in missing])
    return values


def uncertainty_measure(model: Sus2Potential, training: Sequence[Atoms], method: str, committee_size: int,
                        seed: int = 0) -> Uncertainty:
    """The uncertainty of structures under ``model`` trained on ``training``: the extrapolation grade
    (``grade``) or a committee's largest force deviation in eV/Å (``committee``, refit with ``seed``)."""
    if method == "committee":
        return Committee(model, training, committee_size, seed).force_deviation
    return ExtrapolationGrade(model, training)
