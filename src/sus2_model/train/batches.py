"""Minibatches with their neighbour tables built once, and the training loss."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from ase import Atoms
from ase.stress import voigt_6_to_full_3x3_stress

from ..model import Sus2Potential
from ..neighbors import Batch, build_batch


@dataclass
class Minibatch:
    """A batch of structures with their labels as tensors (virials per atom, eV)."""

    batch: Batch
    energy: torch.Tensor  # (S,)
    n_atoms: torch.Tensor  # (S,)
    forces: torch.Tensor  # (N, 3)
    virial: torch.Tensor  # (S, 3, 3) stress * V / n
    has_virial: torch.Tensor  # (S,)
    weight: torch.Tensor  # (S,)
    images: list[Atoms]

    def to(self, device: str, dtype: torch.dtype) -> "Minibatch":
        """On ``device`` in ``dtype``, except the energies: total energies stay float64 (the model's are)."""
        f = lambda t: t.to(device=device, dtype=dtype)  # noqa: E731
        return Minibatch(self.batch.to(device, dtype), self.energy.to(device), self.n_atoms.to(device), f(self.forces),
                         f(self.virial), f(self.has_virial), f(self.weight), self.images)


def make_minibatch(images: Sequence[Atoms], model: Sus2Potential, task_index: dict[str | None, int]) -> Minibatch:
    """Neighbour tables and label tensors for ``images`` (each carries ``info['task']`` and ``info['weight']``)."""
    images = list(images)
    tasks = [task_index[a.info.get("task")] for a in images]
    batch = build_batch(images, model.r_cut, model.species_index, model.min_distance, tasks=tasks)
    n = np.array([len(a) for a in images], dtype=float)
    virial = np.zeros((len(images), 3, 3))
    has = np.zeros(len(images))
    for k, atoms in enumerate(images):
        results = atoms.calc.results
        if "stress" in results and atoms.pbc.all():
            s = np.asarray(results["stress"], dtype=float)
            full = s if s.shape == (3, 3) else voigt_6_to_full_3x3_stress(s)
            virial[k], has[k] = full * atoms.get_volume() / len(atoms), 1.0
    forces = np.concatenate([a.calc.results.get("forces", np.zeros((len(a), 3))) for a in images])
    t = lambda x: torch.as_tensor(np.asarray(x, dtype=float))  # noqa: E731
    return Minibatch(batch, t([a.get_potential_energy() for a in images]), t(n), t(forces), t(virial), t(has),
                     t([a.info.get("weight", 1.0) for a in images]), images)


def split_minibatches(images: Sequence[Atoms], batch_size: int, rng: np.random.Generator) -> list[list[Atoms]]:
    """Random partition of ``images`` into lists of at most ``batch_size`` structures."""
    order = rng.permutation(len(images))
    return [[images[i] for i in order[s:s + batch_size]] for s in range(0, len(images), batch_size)]


def loss_sums(model: Sus2Potential, mb: Minibatch, want_forces: bool, want_stress: bool, create_graph: bool = True
              ) -> tuple[dict[str, torch.Tensor], dict[str, float], dict[str, torch.Tensor]]:
    """Weighted sums of squared errors (energy per atom, force components, virial per atom), the sums of weights
    that turn them into means, and the model outputs.  Summing over minibatches before dividing makes the loss
    independent of how the data is split (across processes, for instance)."""
    out = model(mb.batch, forces=want_forces, stress=want_stress, create_graph=create_graph)
    w = mb.weight
    sums = {"energy": (w * ((out["energy"] - mb.energy) / mb.n_atoms).square()).sum()}
    norms = {"energy": float(w.sum())}
    if want_forces:
        atom_w = w[mb.batch.structure_of_atom]
        sums["forces"] = (atom_w.unsqueeze(1) * (out["forces"] - mb.forces).square()).sum()
        norms["forces"] = 3.0 * float(atom_w.sum())
    if want_stress and bool(mb.has_virial.any()):
        vol = mb.batch.volumes.reshape(-1, 1, 1)
        pred = out["stress"] * vol / mb.n_atoms.reshape(-1, 1, 1)
        sw = w * mb.has_virial
        sums["stress"] = (sw.reshape(-1, 1, 1) * (pred - mb.virial).square()).sum()
        norms["stress"] = 9.0 * float(sw.sum())
    return sums, norms, out


def loss_terms(model: Sus2Potential, mb: Minibatch, want_forces: bool, want_stress: bool, create_graph: bool = True
               ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Weighted mean-squared errors of one minibatch and the model outputs."""
    sums, norms, out = loss_sums(model, mb, want_forces, want_stress, create_graph)
    return {k: v / norms[k] for k, v in sums.items()}, out
