"""Active learning: explore with the current model, grade extrapolation, pick the most informative new structures."""

from __future__ import annotations

from typing import Sequence

import numpy as np
from ase import Atoms, units
from ase.md.langevin import Langevin
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution
from ase.optimize import BFGS

from sus2_model import StructureError, Sus2Calculator, Sus2Potential
from sus2_model.selection import farthest_point_selection, structure_descriptors
from sus2_model.uncertainty import ExtrapolationGrade

from .adsorption import RELAX_FMAX


def _snapshot(atoms: Atoms, trajectory: str, step: int) -> Atoms:
    """A copy of ``atoms`` without its calculator, named by its trajectory and step."""
    frame = atoms.copy()
    frame.calc = None
    frame.info = {"source": f"{trajectory}:{step}", "trajectory": trajectory}
    return frame


def explore(model: Sus2Potential, starts: Sequence[Atoms], temperature_k: float, steps: int, sample_every: int,
            seed: int = 0, task: str | None = None) -> list[Atoms]:
    """Langevin MD from each start with the model (on ``task``'s surface); frames every ``sample_every`` steps.
    A trajectory that drives atoms closer than the model allows ends there (its frames so far are kept)."""
    rng = np.random.default_rng(seed)
    frames: list[Atoms] = []
    for k, start in enumerate(starts):
        atoms = start.copy()
        atoms.calc = Sus2Calculator(model, task=task)
        MaxwellBoltzmannDistribution(atoms, temperature_K=temperature_k, rng=rng)
        dyn = Langevin(atoms, 2.0 * units.fs, temperature_K=temperature_k, friction=0.02, rng=rng, fixcm=False)
        for n in range(0, steps, sample_every):
            try:
                dyn.run(sample_every)
            except StructureError:
                break
            frames.append(_snapshot(atoms, f"md:{start.info.get('source', k)}", n + sample_every))
    return frames


def relaxation_frames(model: Sus2Potential, starts: Sequence[Atoms], steps: int, sample_every: int,
                      task: str | None = None) -> list[Atoms]:
    """Frames along a BFGS relaxation with the model from each start, every ``sample_every`` steps until it
    converges: the configurations a screen's relaxations pass through (an adsorbate sinking from its placement height
    into a hollow), which MD at the placement rarely visits.  A relaxation that drives atoms closer than the model
    allows ends there (its frames so far are kept)."""
    frames: list[Atoms] = []
    for k, start in enumerate(starts):
        atoms = start.copy()
        atoms.calc = Sus2Calculator(model, task=task)
        optimizer = BFGS(atoms, logfile=None)
        for n in range(0, steps, sample_every):
            try:
                converged = optimizer.run(fmax=RELAX_FMAX, steps=sample_every)
            except StructureError:
                break
            frames.append(_snapshot(atoms, f"relax:{start.info.get('source', k)}", n + sample_every))
            if converged:
                break
    return frames


def select_uncertain(model: Sus2Potential, training: Sequence[Atoms], candidates: Sequence[Atoms], threshold: float,
                     max_new: int) -> tuple[list[Atoms], np.ndarray]:
    """Candidates whose extrapolation grade exceeds ``threshold`` — of a trajectory's frames only the first that does
    (as MLIP-2's active learning breaks a trajectory there) — at most ``max_new``, spread out by farthest-point
    selection in descriptor space.  Returns the selection and every candidate's grade.

    The frames after a trajectory's first uncertain one were reached with forces the model could not be trusted
    for: in a Quantum ESPRESSO Cu(111)+O campaign, the highest-graded frames of the model's relaxations had O driven
    into the slab, DFT forces of 110 to 19,724 eV/Å (dropped by curation) or no converged SCF at all, so the model
    never saw the O–Cu repulsion its relaxations lacked.  Frames without a ``trajectory`` each count as their own."""
    if not candidates:
        return [], np.zeros(0)
    grades = ExtrapolationGrade(model, training)(candidates)
    pool: list[Atoms] = []
    broken: set[str] = set()
    for candidate, grade in zip(candidates, grades):
        trajectory = candidate.info.get("trajectory")
        if grade > threshold and trajectory not in broken:
            pool.append(candidate)
            if trajectory is not None:
                broken.add(trajectory)
    if len(pool) > max_new:
        chosen = farthest_point_selection(structure_descriptors(model, pool), max_new)
        pool = [pool[i] for i in chosen]
    return pool, grades
