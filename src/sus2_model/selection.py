"""Diverse subsets in SUS2 descriptor space: farthest-point selection of structures (domain-bridging sets)."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from ase import Atoms

from .model import Sus2Potential
from .neighbors import build_batch


@torch.no_grad()
def structure_descriptors(model: Sus2Potential, images: Sequence[Atoms], batch_size: int = 64) -> np.ndarray:
    """One vector per structure: per-species means of the atoms' scalar descriptors, and the composition."""
    rows = []
    c = model.species_count
    for start in range(0, len(images), batch_size):
        chunk = list(images[start:start + batch_size])
        batch = build_batch(chunk, model.r_cut, model.species_index).to("cpu", model.shift.dtype)
        b = model.descriptors(batch).double().numpy()
        owner, types = batch.structure_of_atom.numpy(), batch.types.numpy()
        for k in range(len(chunk)):
            vec = np.zeros((c, b.shape[1] + 1))
            for s in range(c):
                sel = (owner == k) & (types == s)
                if sel.any():
                    vec[s, :-1] = b[sel].mean(axis=0)
                    vec[s, -1] = sel.sum() / (owner == k).sum()
            rows.append(vec.ravel())
    return np.array(rows)


def farthest_point_selection(features: np.ndarray, count: int) -> list[int]:
    """Greedy farthest-point (max-min distance) selection on standardised features; starts at the outlier."""
    x = np.asarray(features, dtype=float)
    x = (x - x.mean(axis=0)) / (x.std(axis=0) + 1e-12)
    count = min(count, len(x))
    chosen = [int(np.argmax(np.linalg.norm(x, axis=1)))]
    distance = np.linalg.norm(x - x[chosen[0]], axis=1)
    while len(chosen) < count:
        nxt = int(np.argmax(distance))
        chosen.append(nxt)
        distance = np.minimum(distance, np.linalg.norm(x - x[nxt], axis=1))
    return chosen
