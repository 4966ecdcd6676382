"""Where a rigid guest's centre can be in a framework: a grid of voxels over the cell, without the voxels where the
guest overlaps the framework in every orientation (by the insertion energy's own contact rule, so nothing else is
assumed).  Widom draws its trial centres from the remaining voxels only and scales the mean Boltzmann factor by their
volume fraction: every excluded trial would have weighed 0, so the estimate is the same and no trial is spent there.
In a dense framework (CALF-20) most of the cell is such volume.  :func:`without_pockets` also takes away the open
regions that do not reach through the crystal (closed cavities), and :func:`without_probe_pockets` the pockets a
probe of the guest's size cannot reach (:mod:`.zeopp`): there a guest's weight is 0 by choice."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from sus2_model.insertion import FrameworkImages

from .periodic import periodic_components

VOXEL_EDGE = 0.2  # Å: the grid's spacing along each lattice vector (at most)
QUERY_CHUNK = 100_000  # voxel centres per k-d tree query (memory)
NEAREST = 8  # framework atoms a voxel centre's first query looks at (more where they are all in reach)
NEAREST_NODES = 32  # Voronoi nodes (nearest centres) among which a voxel's nearest sphere surface is sought


@dataclass
class PoreMap:
    """The voxels (flat indices into a ``shape`` grid over ``cell``) where a guest's centre may sit without
    overlapping the framework in every orientation (``pocket_voxels``: those of them :func:`without_pockets` and
    :func:`without_probe_pockets` took away)."""

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
        """The share of the cell's volume in blocked pockets."""
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


def without_pockets(pores: PoreMap) -> PoreMap:
    """``pores`` without the open regions that do not reach through the crystal: closed cavities a guest from outside
    never enters (the pockets RASPA blocks with Zeo++'s analysis).  Open voxels are connected through their faces
    only: an edge or a corner between two open voxels also bounds closed ones, every point of which overlaps."""
    from scipy import ndimage

    grid = np.zeros(int(np.prod(pores.shape)), dtype=bool)
    grid[pores.open_voxels] = True
    labels, count = ndimage.label(grid.reshape(pores.shape))
    first, second, shifts = [], [], []
    for axis in range(3):  # from the last layer along ``axis`` to the first layer of the next cell
        last, next_first = np.take(labels, -1, axis=axis).ravel(), np.take(labels, 0, axis=axis).ravel()
        both = (last > 0) & (next_first > 0)
        pairs = np.unique(np.stack([last[both], next_first[both]], axis=1), axis=0)
        first.append(pairs[:, 0])
        second.append(pairs[:, 1])
        shifts.append(np.tile(np.eye(3, dtype=int)[axis], (len(pairs), 1)))
    extends = periodic_components(count + 1, np.concatenate(first), np.concatenate(second), np.concatenate(shifts))
    reach = extends[labels.ravel()[pores.open_voxels]]
    return PoreMap(pores.cell, pores.shape, pores.open_voxels[reach], int((~reach).sum()))


def without_probe_pockets(pores: PoreMap, nodes: np.ndarray, pocket: np.ndarray) -> PoreMap:
    """``pores`` without the open voxels that belong to pockets: each voxel belongs to the node of ``nodes`` (k, 4:
    centre in Å, radius; :func:`.zeopp.probe_nodes`) whose sphere's surface is nearest its centre (periodic images
    included; inside a sphere counts as nearest), and is blocked where that node is a ``pocket``."""
    from scipy.spatial import cKDTree

    if not pocket.any():
        return pores
    shifts = np.array(list(itertools.product((-1, 0, 1), repeat=3))) @ pores.cell
    centres = (nodes[None, :, :3] + shifts[:, None]).reshape(-1, 3)
    radii, blocked_node = np.tile(nodes[:, 3], len(shifts)), np.tile(pocket, len(shifts))
    tree = cKDTree(centres)
    in_pocket = np.zeros(len(pores.open_voxels), dtype=bool)
    k = min(NEAREST_NODES, len(centres))
    for start in range(0, len(in_pocket), QUERY_CHUNK):
        voxels = pores.open_voxels[start:start + QUERY_CHUNK]
        corner = np.stack(np.unravel_index(voxels, pores.shape), axis=1)
        dist, idx = tree.query(((corner + 0.5) / np.array(pores.shape)) @ pores.cell, k=k)
        dist, idx = dist.reshape(len(voxels), k), idx.reshape(len(voxels), k)
        nearest = idx[np.arange(len(voxels)), np.argmin(dist - radii[idx], axis=1)]
        in_pocket[start:start + len(voxels)] = blocked_node[nearest]
    return PoreMap(pores.cell, pores.shape, pores.open_voxels[~in_pocket], pores.pocket_voxels + int(in_pocket.sum()))
