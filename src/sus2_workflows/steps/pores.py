"""Where a rigid guest's centre can be in a framework: a grid of voxels over the cell, without the voxels where the
guest overlaps the framework in every orientation (by the insertion energy's own contact rule, so nothing else is
assumed).  Widom draws its trial centres from the remaining voxels only and scales the mean Boltzmann factor by their
volume fraction: every excluded trial would have weighed 0, so the estimate is the same and no trial is spent there.
In a dense framework (CALF-20) most of the cell is such volume.  :func:`without_pockets` also takes away the open
regions that do not reach through the crystal (closed cavities), where a guest's weight is 0 by choice."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from sus2_model.insertion import FrameworkImages

VOXEL_EDGE = 0.2  # Å: the grid's spacing along each lattice vector (at most)
QUERY_CHUNK = 100_000  # voxel centres per k-d tree query (memory)
NEAREST = 8  # framework atoms a voxel centre's first query looks at (more where they are all in reach)


@dataclass
class PoreMap:
    """The voxels (flat indices into a ``shape`` grid over ``cell``) where a guest's centre may sit without
    overlapping the framework in every orientation (``pocket_voxels``: those of them :func:`without_pockets` took
    away)."""

    cell: np.ndarray
    shape: tuple[int, int, int]
    open_voxels: np.ndarray
    pocket_voxels: int = 0

    @property
    def fraction(self) -> float:
        """The share of the cell's volume the open voxels hold."""
        return len(self.open_voxels) / int(np.prod(self.shape))

    @property
    def pocket_fraction(self) -> float:
        """The share of the cell's volume in closed cavities (:func:`without_pockets`)."""
        return self.pocket_voxels / int(np.prod(self.shape))

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` centres (n, 3), uniform over the open voxels."""
        voxels = self.open_voxels[rng.integers(len(self.open_voxels), size=n)]
        corner = np.stack(np.unravel_index(voxels, self.shape), axis=1)
        return ((corner + rng.random((n, 3))) / np.array(self.shape)) @ self.cell


def _half_diagonal(cell: np.ndarray, shape: np.ndarray) -> float:
    """The largest distance (Å) from a voxel's centre to its corners."""
    edges = cell / shape[:, None]
    return 0.5 * max(float(np.linalg.norm(np.array(signs) @ edges)) for signs in itertools.product((-1, 1), repeat=3))


def pore_map(images: FrameworkImages, guest_shape: np.ndarray, edge: float = VOXEL_EDGE) -> PoreMap:
    """The :class:`PoreMap` of a guest of atom positions ``guest_shape`` (g, 3) about its centre in the framework of
    ``images`` (whose contact distances decide overlaps).  A voxel is closed when, from its centre, some framework
    atom j lies closer than ``closest[i, j] - |r_i| - h`` for some guest atom i (``h``: the voxel's half diagonal):
    then at every point of the voxel and in every orientation that guest atom overlaps j."""
    cell = images.cell
    shape = np.maximum(1, np.ceil(np.linalg.norm(cell, axis=1) / edge)).astype(int)
    reach = (images.closest - np.linalg.norm(guest_shape, axis=1)[:, None]).max(axis=0) \
        - _half_diagonal(cell, shape)  # (N,): closer to framework atom j than this -> overlap in any orientation
    closed = np.zeros(int(np.prod(shape)), dtype=bool)
    if reach.max() <= 0:
        return PoreMap(cell.copy(), tuple(int(k) for k in shape), np.arange(len(closed)))
    axes = [(np.arange(k) + 0.5) / k for k in shape]
    for start in range(0, len(closed), QUERY_CHUNK):
        flat = np.arange(start, min(start + QUERY_CHUNK, len(closed)))
        centres = np.stack([axes[d][i] for d, i in enumerate(np.unravel_index(flat, shape))], axis=1) @ cell
        k = NEAREST
        while len(flat):
            dist, idx = images.tree.query(centres, k=k, distance_upper_bound=reach.max())
            hit = np.isfinite(dist)
            shut = (hit & (dist < reach[images.owner[np.where(hit, idx, 0)]])).any(axis=1)
            closed[flat[shut]] = True
            more = hit[:, -1] & ~shut  # k atoms in reach and none shuts it: a farther one still might
            flat, centres, k = flat[more], centres[more], 2 * k
    return PoreMap(cell.copy(), tuple(int(k) for k in shape), np.flatnonzero(~closed))


def _percolating(labels: np.ndarray, count: int) -> np.ndarray:
    """Which of the ``count`` components of a periodic grid's ``labels`` (0: closed) percolate: joined across the
    cell's faces with the lattice shift each join makes (union-find with offsets), a component that meets its own
    image at a non-zero shift reaches through the crystal.  Returns a bool per label (index 0 unused)."""
    parent, offset = np.arange(count + 1), np.zeros((count + 1, 3), dtype=int)
    percolates = np.zeros(count + 1, dtype=bool)

    def find(x: int) -> tuple[int, np.ndarray]:
        total = np.zeros(3, dtype=int)
        while parent[x] != x:
            total += offset[x]
            x = parent[x]
        return x, total

    for axis in range(3):
        shift = np.eye(3, dtype=int)[axis]  # from the last layer along ``axis`` to the first layer of the next cell
        last, first = np.take(labels, -1, axis=axis).ravel(), np.take(labels, 0, axis=axis).ravel()
        both = (last > 0) & (first > 0)
        for a, b in np.unique(np.stack([last[both], first[both]], axis=1), axis=0):
            (root_a, at_a), (root_b, at_b) = find(a), find(b)
            if root_a == root_b:
                percolates[root_a] |= bool((at_b - at_a != shift).any())
            else:
                parent[root_b], offset[root_b] = root_a, at_a + shift - at_b
                percolates[root_a] |= percolates[root_b]
    return np.array([percolates[find(x)[0]] for x in range(count + 1)])


def without_pockets(pores: PoreMap) -> PoreMap:
    """``pores`` without the open regions that do not reach through the crystal: closed cavities a guest from outside
    never enters (the pockets RASPA blocks with Zeo++'s analysis).  Open voxels are connected through their faces
    only: an edge or a corner between two open voxels also bounds closed ones, every point of which overlaps."""
    from scipy import ndimage

    grid = np.zeros(int(np.prod(pores.shape)), dtype=bool)
    grid[pores.open_voxels] = True
    labels, count = ndimage.label(grid.reshape(pores.shape))
    reach = _percolating(labels, count)[labels.ravel()[pores.open_voxels]]
    return PoreMap(pores.cell, pores.shape, pores.open_voxels[reach], int((~reach).sum()))
