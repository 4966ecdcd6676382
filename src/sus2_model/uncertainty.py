"""Uncertainty of a model's predictions for active learning.

Extrapolation grade (D-optimality, as MTP's active learning): how far an atom's descriptors lie outside the
span of the training set's.

For each species, with B the training atoms' (normalised) scalar descriptors and G = B^T B / n, the grade of an atom
with descriptors b is  gamma = b^T G^{-1} b / d  (d = descriptor count): about 1 inside the training distribution,
large where the model extrapolates.  A structure's grade is the maximum over its atoms.

Committee (as DP-GEN): the spread of the forces of models fitted to resamples of the training set.
"""

from __future__ import annotations

import copy
from typing import Sequence

import numpy as np
import torch
from ase import Atoms

from .model import Sus2Potential
from .neighbors import build_batch

COMMITTEE_SIZE = 4  # models in a committee


class ExtrapolationGrade:
    """Per-species descriptor covariance of a training set, and grades of new structures against it."""

    def __init__(self, model: Sus2Potential, training: Sequence[Atoms], ridge: float = 1e-3) -> None:
        self.model = model
        b, types = self._descriptors(training)
        self.inverse: dict[int, np.ndarray] = {}
        for s in np.unique(types):
            rows = b[types == s]
            gram = rows.T @ rows / len(rows)
            self.inverse[int(s)] = np.linalg.pinv(gram + ridge * np.trace(gram) / len(gram) * np.eye(len(gram)))

    @torch.no_grad()
    def _descriptors(self, images: Sequence[Atoms]) -> tuple[np.ndarray, np.ndarray]:
        model = self.model
        batch = build_batch(list(images), model.r_cut, model.species_index).to("cpu", model.shift.dtype)
        b = (model.descriptors(batch) * model.moment_scale).double().numpy()
        b = np.concatenate([b, np.ones((len(b), 1))], axis=1)  # the constant (site-energy shift) direction
        return b, batch.types.numpy()

    def atom_grades(self, images: Sequence[Atoms]) -> list[np.ndarray]:
        """Grade of every atom of every structure (inf for a species the training set lacks)."""
        b, types = self._descriptors(images)
        grades = np.full(len(b), np.inf)
        for s, inverse in self.inverse.items():
            rows = types == s
            grades[rows] = np.einsum("ij,jk,ik->i", b[rows], inverse, b[rows]) / b.shape[1]
        sizes = np.cumsum([len(a) for a in images])[:-1]
        return np.split(grades, sizes)

    def __call__(self, images: Sequence[Atoms]) -> np.ndarray:
        """Grade of each structure: the largest grade of its atoms."""
        return np.array([g.max(initial=0.0) for g in self.atom_grades(images)])


class Committee:
    """A committee of SUS2 models that share ``model``'s radial part and species multipliers and differ in their
    linear parameters, each refit in closed form (:func:`~.train.linear.fit_linear`, the training loss's default
    weights) on a bootstrap resample of the training structures.  Their spread in forces is the uncertainty, as
    DP-GEN's maximal force deviation: the models are tiny, so a committee costs ``size`` closed-form fits and
    ``size`` model calls per structure.  Single-task models only (the refit has no task-specific parameters)."""

    def __init__(self, model: Sus2Potential, training: Sequence[Atoms], size: int = COMMITTEE_SIZE,
                 seed: int = 0) -> None:
        from .train.linear import fit_linear

        if model.tasks:
            raise ValueError("a committee refits single-task models only: this model has tasks "
                             f"{', '.join(model.tasks)}")
        rng = np.random.default_rng(seed)
        training = list(training)
        self.members: list[Sus2Potential] = []
        for k in range(size):
            member = copy.deepcopy(model)
            fit_linear(member, [training[i] for i in rng.integers(len(training), size=len(training))], seed=seed + k)
            self.members.append(member)

    def force_deviation(self, images: Sequence[Atoms]) -> np.ndarray:
        """Each structure's largest force deviation over its atoms (eV/Å): max_i sqrt(<|F_i - <F_i>|^2>), the
        average over the committee's members."""
        from .predict import predict

        forces = np.stack([np.concatenate([p.forces for p in predict(m, list(images), stress=False)])
                           for m in self.members])  # (members, atoms, 3)
        spread = np.sqrt(((forces - forces.mean(axis=0)) ** 2).sum(axis=2).mean(axis=0))
        return np.array([part.max(initial=0.0) for part in np.split(spread, np.cumsum([len(a) for a in images])[:-1])])
