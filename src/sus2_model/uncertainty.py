"""Extrapolation grade (D-optimality, as MTP's active learning): how far an atom's descriptors lie outside the
span of the training set's.

For each species, with B the training atoms' (normalised) scalar descriptors and G = B^T B / n, the grade of an atom
with descriptors b is  gamma = b^T G^{-1} b / d  (d = descriptor count): about 1 inside the training distribution,
large where the model extrapolates.  A structure's grade is the maximum over its atoms.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from ase import Atoms

from .model import Sus2Potential
from .neighbors import build_batch


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
