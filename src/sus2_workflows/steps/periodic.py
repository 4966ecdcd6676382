"""Connected parts of a periodic graph (atoms joined by bonds, or open regions of a grid joined across the cell's
faces) and whether each reaches through the crystal: a part that meets one of its own images in another cell
extends without end (a framework, a channel); one that never does is finite (a molecule, a closed cavity)."""

from __future__ import annotations

import numpy as np


def periodic_components(count: int, first: np.ndarray, second: np.ndarray, shifts: np.ndarray) -> np.ndarray:
    """Whether the component of each of ``count`` nodes extends through the crystal, given edges from node
    ``first[e]`` to the image of node ``second[e]`` in the cell at lattice shift ``shifts[e]`` (3 integers).
    A union-find that carries each node's lattice offset from its root: an edge inside one component whose offsets
    disagree joins the component to its own image.  Returns a bool per node."""
    parent, offset = np.arange(count), np.zeros((count, 3), dtype=int)
    extends = np.zeros(count, dtype=bool)

    def find(x: int) -> tuple[int, np.ndarray]:
        total = np.zeros(3, dtype=int)
        while parent[x] != x:
            total += offset[x]
            x = parent[x]
        return x, total

    for a, b, shift in zip(first.tolist(), second.tolist(), np.asarray(shifts, dtype=int)):
        (root_a, at_a), (root_b, at_b) = find(a), find(b)
        if root_a == root_b:
            extends[root_a] |= bool((at_b - at_a != shift).any())
        else:
            parent[root_b], offset[root_b] = root_a, at_a + shift - at_b
            extends[root_a] |= extends[root_b]
    return np.array([extends[find(x)[0]] for x in range(count)], dtype=bool)
