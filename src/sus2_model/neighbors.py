"""Neighbour lists (vesin, compiled) and batching of many structures into one graph of edges."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from ase import Atoms
from vesin import NeighborList

from .errors import StructureError, UnknownElementError


@dataclass
class Batch:
    """Many structures flattened into atoms, with each atom's neighbours padded to a fixed width.

    Neighbour k of atom i is atom ``nbr_j[i, k]`` seen through the Cartesian image offset ``nbr_shift[i, k]``;
    ``nbr_mask`` is 0 on padding.  The padded layout turns moment sums into batched matrix products.
    """

    positions: torch.Tensor  # (N, 3)
    types: torch.Tensor  # (N,) species index
    structure_of_atom: torch.Tensor  # (N,)
    nbr_j: torch.Tensor  # (N, K) neighbour index (the atom itself on padding)
    nbr_shift: torch.Tensor  # (N, K, 3)
    nbr_mask: torch.Tensor  # (N, K) 1.0 for a real neighbour, 0.0 for padding
    volumes: torch.Tensor  # (S,) 0 for non-periodic structures
    n_structures: int
    task_of_structure: torch.Tensor | None = None  # (S,) task index, -1 = the shared surface

    def to(self, device: torch.device | str, dtype: torch.dtype = torch.float64) -> "Batch":
        """Move to a device; floating tensors take ``dtype``."""
        f = lambda t: t.to(device=device, dtype=dtype)  # noqa: E731
        i = lambda t: t.to(device=device)  # noqa: E731
        task = None if self.task_of_structure is None else i(self.task_of_structure)
        return Batch(f(self.positions), i(self.types), i(self.structure_of_atom), i(self.nbr_j), f(self.nbr_shift),
                     f(self.nbr_mask), f(self.volumes), self.n_structures, task)

    def edge_vectors(self, positions: torch.Tensor | None = None) -> torch.Tensor:
        """Vectors to every neighbour (N, K, 3), differentiable in ``positions``."""
        pos = self.positions if positions is None else positions
        return pos[self.nbr_j] - pos.unsqueeze(1) + self.nbr_shift

    def stress(self, virial: torch.Tensor) -> torch.Tensor:
        """Per-structure virials (S, 3, 3, ...) divided by the cell volumes; zero for non-periodic structures."""
        vol = self.volumes.reshape(-1, *[1] * (virial.dim() - 1))
        return torch.where(vol > 0, virial / vol.clamp(min=1e-12), torch.zeros_like(virial))

    @property
    def n_edges(self) -> int:
        """Number of real (unpadded) neighbour pairs."""
        return int(self.nbr_mask.sum())


def species_indices(atoms: Atoms, species_index: dict[int, int], where: str) -> np.ndarray:
    """Map atomic numbers to the model's species indices, naming the structure on an unknown element."""
    numbers = atoms.numbers
    try:
        return np.fromiter((species_index[int(z)] for z in numbers), dtype=np.int64, count=len(numbers))
    except KeyError:
        from ase.data import chemical_symbols

        known = sorted(chemical_symbols[z] for z in species_index)
        unknown = sorted({chemical_symbols[int(z)] for z in numbers if int(z) not in species_index})
        raise UnknownElementError(f"{where}: element(s) {unknown} not in the model's species {known}") from None


def neighbour_pairs(atoms: Atoms, cutoff: float, where: str
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Full neighbour list of one structure within ``cutoff``, honouring its periodicity per direction (slabs and
    wires keep their periodic images): atom indices i and j, Cartesian image shifts (n, 3) and distances.
    ``where`` names the structure in errors."""
    positions = np.ascontiguousarray(atoms.positions, dtype=np.float64)
    if not np.all(np.isfinite(positions)) or not np.all(np.isfinite(atoms.cell.array)):
        raise StructureError(f"{where}: positions or cell contain NaN or infinite values")
    pbc = np.asarray(atoms.pbc, dtype=bool)
    box = np.ascontiguousarray(atoms.cell.array, dtype=np.float64)
    if pbc.all() and abs(np.linalg.det(box)) < 1e-8:
        raise StructureError(f"{where}: periodic cell has zero volume")
    if not pbc.all():
        box = _open_box(atoms, pbc, cutoff)
    i, j, s, d = NeighborList(cutoff=cutoff, full_list=True).compute(positions, box, pbc, quantities="ijSd")
    shift = s.astype(np.float64) @ box
    return i.astype(np.int64), j.astype(np.int64), shift, d


def _open_box(atoms: Atoms, pbc: np.ndarray, cutoff: float) -> np.ndarray:
    """A cell for vesin where non-periodic directions get a vector long enough never to matter."""
    box = atoms.cell.array.copy()
    span = np.ptp(atoms.positions, axis=0).max(initial=0.0) + 2 * cutoff + 1.0
    for axis in np.flatnonzero(~pbc):
        if np.linalg.norm(box[axis]) < 1e-8:
            box[axis] = 0.0
            box[axis, axis] = span
    if abs(np.linalg.det(box)) < 1e-8:
        box = np.diag([span, span, span])
    return box


def _pad(i: np.ndarray, j: np.ndarray, shift: np.ndarray, n_atoms: int, pad: float
         ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Flat edge lists -> (N, K) padded neighbour tables; padding points at the atom itself, ``pad`` Å away."""
    if np.any(i[1:] < i[:-1]):  # vesin usually returns pairs grouped by i already
        order = np.argsort(i, kind="stable")
        i, j, shift = i[order], j[order], shift[order]
    counts = np.bincount(i, minlength=n_atoms)
    width = max(int(counts.max(initial=0)), 1)
    start = np.concatenate([[0], np.cumsum(counts)[:-1]])
    slot = np.arange(len(i)) - start[i]
    nbr_j = np.repeat(np.arange(n_atoms)[:, None], width, axis=1)
    nbr_shift = np.zeros((n_atoms, width, 3))
    nbr_shift[..., 0] = pad
    mask = np.zeros((n_atoms, width))
    nbr_j[i, slot] = j
    nbr_shift[i, slot] = shift
    mask[i, slot] = 1.0
    return nbr_j, nbr_shift, mask


def build_batch(
    images: Sequence[Atoms],
    cutoff: float,
    species_index: dict[int, int],
    min_distance: float | None = None,
    names: Sequence[str] | None = None,
    tasks: Sequence[int] | None = None,
) -> Batch:
    """Build the padded neighbour tables of many structures at once.

    ``min_distance`` (Å): raise :class:`StructureError` naming the structure if two atoms are closer.
    ``names`` label structures in error messages (default ``atoms.info["source"]`` or ``structure <index>``).
    ``tasks`` gives each structure's task index (-1: the shared surface).
    """
    pos, types, owner, ei, ej, shifts, vols = [], [], [], [], [], [], []
    offset = 0
    for k, atoms in enumerate(images):
        where = names[k] if names is not None else atoms.info.get("source", f"structure {k}")
        t = species_indices(atoms, species_index, where)
        i, j, shift, d = neighbour_pairs(atoms, cutoff, where)
        if min_distance is not None and len(i):
            m = int(np.argmin(d))
            if d[m] < min_distance:
                raise StructureError(
                    f"{where}: atoms {i[m]} and {j[m]} are {d[m]:.3f} Å apart, closer than the model allows "
                    f"({min_distance:.3f} Å)")
        pos.append(atoms.positions)
        types.append(t)
        owner.append(np.full(len(atoms), k, dtype=np.int64))
        ei.append(i + offset)
        ej.append(j + offset)
        shifts.append(shift)
        vols.append(abs(atoms.cell.volume) if bool(np.asarray(atoms.pbc).all()) else 0.0)
        offset += len(atoms)
    nbr_j, nbr_shift, mask = _pad(np.concatenate(ei), np.concatenate(ej), np.concatenate(shifts).reshape(-1, 3),
                                  offset, pad=cutoff + 1.0)
    return Batch(
        positions=torch.from_numpy(np.concatenate(pos).reshape(-1, 3).astype(np.float64)),
        types=torch.from_numpy(np.concatenate(types)),
        structure_of_atom=torch.from_numpy(np.concatenate(owner)),
        nbr_j=torch.from_numpy(nbr_j),
        nbr_shift=torch.from_numpy(nbr_shift),
        nbr_mask=torch.from_numpy(mask),
        volumes=torch.tensor(vols, dtype=torch.float64),
        n_structures=len(images),
        task_of_structure=None if tasks is None else torch.tensor(list(tasks), dtype=torch.long),
    )
