"""Energy changes of inserting a rigid guest molecule into a fixed framework, by local update of site energies.

SUS2 is strictly local: a site energy depends on the neighbours within one cutoff, through basic moments that are
sums over those neighbours.  Inserting a guest therefore changes only the site energies of the framework atoms
within the cutoff of a guest atom (their moments gain the guest atoms' contributions) and adds the guest's own
site energies.  With the framework's basic moments computed once,

    dE = sum_guest E_a + sum_{framework j near the guest} (E_j(M_j + dM_j) - E_j(M_j)) - E(isolated guest),

which equals E(framework + guest) - E(framework) - E(guest) of full-cell evaluations (to rounding) as long as no
guest atom sees a periodic image of the guest (:func:`supercell_repeats` makes the cell wide enough).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from ase import Atoms
from ase.data import atomic_numbers, covalent_radii
from ase.data.vdw_alvarez import vdw_radii
from scipy.spatial import cKDTree

from .errors import StructureError
from .model import Sus2Potential
from .neighbors import build_batch, species_indices


NON_METALS = frozenset(atomic_numbers[s] for s in "H He B C N O F Ne Si P S Cl Ar As Se Br Kr Te I Xe".split())
# non-overlapping trials per model evaluation: larger chunks cost more per trial (CO2 in CALF-20, l2k3, 2 cores:
# 0.67 ms per trial at ~200, 1.05 ms at ~1,600)
EVALUATION_CHUNK = 256
VDW_CONTACT = 0.6  # closest non-metal contact, as a fraction of the sum of van der Waals radii (Alvarez 2013)


def contact_distances(guest: np.ndarray, framework: np.ndarray, vdw_factor: float = VDW_CONTACT) -> np.ndarray:
    """Closest approach (Å) of each guest atom to each framework atom (atomic numbers in, (g, N) out) that is not an
    overlap: the sum of covalent radii where either atom is a metal (a guest bound at an open metal site, e.g.
    Mg-O 2.07 Å against 2.2-2.4 Å in Mg-MOF-74), else ``vdw_factor`` times the sum of van der Waals radii (C-O
    1.96 Å, H-O 1.62 Å).  Measured with the universal published model on random insertions of CO2 and H2O in
    Mg-MOF-74, CALF-20, HKUST-1 and ZIF-8: closer non-metal contacts (C/N/O-C/N/O at 1.4-1.9 Å, covalent bonds
    forming) gave energies down to -25 eV, outside anything the model was trained on."""
    metal = lambda z: ~np.isin(z, list(NON_METALS))  # noqa: E731
    either = metal(guest)[:, None] | metal(framework)[None, :]
    covalent = covalent_radii[guest][:, None] + covalent_radii[framework][None, :]
    vdw = vdw_radii[guest][:, None] + vdw_radii[framework][None, :]
    return np.where(either | ~np.isfinite(vdw), covalent, vdw_factor * vdw)


def guest_shape(guest: Atoms) -> np.ndarray:
    """A rigid guest's atom positions (g, 3) about its geometric centre: what trials rotate and place."""
    return guest.positions - guest.positions.mean(axis=0)


def guest_extent(guest: Atoms) -> float:
    """Diameter (Å) of the sphere about the guest's centre that holds its atoms."""
    return 2.0 * float(np.linalg.norm(guest_shape(guest), axis=1).max(initial=0.0))


def rigid_positions(shape: np.ndarray, centres: np.ndarray, rotations: np.ndarray) -> np.ndarray:
    """Guest atom positions (B, g, 3) of a rigid ``shape`` (g, 3) at centres (B, 3) with rotation matrices
    (B, 3, 3)."""
    return centres[:, None, :] + np.einsum("bij,aj->bai", rotations, shape)


def perpendicular_widths(cell: np.ndarray) -> np.ndarray:
    """Distances (Å) between opposite faces of a cell, one per lattice vector."""
    return 1.0 / np.linalg.norm(np.linalg.inv(cell).T, axis=1)


def supercell_repeats(cell: np.ndarray, min_width: float) -> tuple[int, int, int]:
    """The fewest repeats of ``cell`` along each vector that make every perpendicular width at least
    ``min_width`` (Å)."""
    return tuple(int(math.ceil(min_width / w - 1e-9)) for w in perpendicular_widths(cell))  # type: ignore[return-value]


@dataclass
class InsertionBatch:
    """Energy changes (eV) of a batch of trial insertions; ``+inf`` where the guest overlaps the framework
    (``overlap`` True: no energy was computed for it)."""

    energy: np.ndarray  # (B,)
    overlap: np.ndarray  # (B,) bool


class FrameworkImages:
    """The atoms of a periodic framework and their images within ``reach`` Å of its cell, in a k-d tree, so the
    framework atoms near any point of the cell are one query away; a ``guest`` atom closer than
    :func:`contact_distances` (``vdw_factor``) to a framework atom overlaps it."""

    def __init__(self, framework: Atoms, guest: Atoms, reach: float, vdw_factor: float, name: str) -> None:
        if not np.asarray(framework.pbc).all():
            raise StructureError(f"{name}: a framework must be periodic in three directions")
        self.cell = framework.cell.array.copy()
        self.inverse = np.linalg.inv(self.cell)
        self.n_atoms = len(framework)
        pad = reach / perpendicular_widths(self.cell)
        frac = framework.get_scaled_positions(wrap=True)
        steps = np.ceil(pad).astype(int)
        shifts = np.array(np.meshgrid(*[np.arange(-n, n + 1) for n in steps], indexing="ij")).reshape(3, -1).T
        images = frac[None, :, :] + shifts[:, None, :]
        keep = np.all((images >= -pad) & (images < 1.0 + pad), axis=-1)
        self.owner = np.broadcast_to(np.arange(len(frac)), keep.shape)[keep]
        self.positions = images[keep] @ self.cell
        self.tree = cKDTree(self.positions)
        self.density = len(frac) / abs(np.linalg.det(self.cell))  # atoms per Å^3
        self.closest = contact_distances(guest.numbers, framework.numbers, vdw_factor)  # (g, N)
        self._k = 16

    def wrap(self, positions: np.ndarray) -> np.ndarray:
        """Guest positions (B, g, 3) moved by lattice vectors so each guest's centre lies in the cell."""
        return positions - (np.floor(positions.mean(axis=1) @ self.inverse) @ self.cell)[:, None, :]

    def near(self, positions: np.ndarray, cutoff: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Framework images within ``cutoff`` of every guest atom of wrapped ``positions`` (B, g, 3): distances and
        image indices (B, g, k) (inf and -1 as padding), and whether each trial overlaps the framework (B,)."""
        b, g, _ = positions.shape
        k = max(self._k, int(4.0 / 3.0 * math.pi * cutoff**3 * self.density * 1.5) + 16)
        while True:
            dist, idx = self.tree.query(positions.reshape(-1, 3), k=k, distance_upper_bound=cutoff)
            if not np.isfinite(dist[:, -1]).any():
                break
            k *= 2
        self._k = k
        idx = np.where(np.isfinite(dist), idx, -1)
        owner = self.owner[np.maximum(idx, 0)]
        limit = np.where(idx >= 0, self.closest[np.tile(np.arange(g), b)[:, None], owner], -1.0)
        overlap = (dist < limit).reshape(b, -1).any(axis=1)
        return dist.reshape(b, g, -1), idx.reshape(b, g, -1), overlap


class LocalInsertion:
    """dE of inserting ``guest`` (rigid, positions relative to any origin) into ``framework`` with ``model``.

    A trial with a guest atom closer to a framework atom than :func:`contact_distances` (``vdw_factor``) is an
    overlap, never evaluated (its Boltzmann factor is taken as 0).  ``task`` selects a
    multi-task model's surface.  The framework must be periodic and wide enough (:func:`supercell_repeats`) that
    the guest meets no image of itself.
    """

    def __init__(self, model: Sus2Potential, framework: Atoms, guest: Atoms, vdw_factor: float = VDW_CONTACT,
                 task: str | None = None, name: str = "framework") -> None:
        self.model = model
        self.device, self.dtype = model.shift.device, model.shift.dtype
        self.r_cut = model.r_cut
        index = model.species_index
        self.framework_types = torch.as_tensor(species_indices(framework, index, name), device=self.device)
        self.guest_types = species_indices(guest, index, f"guest {guest.get_chemical_formula()}")
        self.guest = guest_shape(guest)
        extent = guest_extent(guest)
        width = float(perpendicular_widths(framework.cell.array).min())
        if width < self.r_cut + extent:
            raise StructureError(f"{name}: the cell is {width:.2f} Å wide, narrower than the model's cutoff plus "
                                 f"the guest ({self.r_cut + extent:.2f} Å): use a supercell")
        self.images = FrameworkImages(framework, guest, self.r_cut + extent / 2, vdw_factor, name)
        self.task_index = model.task_index(task)
        with torch.no_grad():
            batch = build_batch([framework], self.r_cut, index, names=[name]).to(self.device, self.dtype)
            task_all = self._task(len(framework))
            self.framework_moments = model.basic_moments(batch, task_all)
            self.framework_energies = model.energy_from_basic(self.framework_moments, batch.types, task_all)
            guest_alone = torch.as_tensor(self.guest[None], device=self.device, dtype=self.dtype)
            self.isolated_guest = float(self._guest_sites(guest_alone, None).sum())

    def _task(self, n: int) -> torch.Tensor | None:
        if self.task_index < 0:
            return None
        return torch.full((n,), self.task_index, dtype=torch.long, device=self.device)

    def _guest_sites(self, guest: torch.Tensor, framework_part: tuple[torch.Tensor, torch.Tensor] | None
                     ) -> torch.Tensor:
        """Site energies (B, g) of the guest atoms at ``guest`` (B, g, 3): their own bonds plus the framework's
        contributions ``framework_part`` (the flat guest-atom row of each and its basic moments)."""
        b, g, _ = guest.shape
        types = torch.as_tensor(np.tile(self.guest_types, b), device=self.device)
        moments = guest.new_zeros(b * g, self.model.moments.n_basic)
        ia, ja = np.nonzero(~np.eye(g, dtype=bool))  # every ordered pair of guest atoms
        if len(ia):
            first = np.arange(b)[:, None] * g
            i_rows = torch.as_tensor((first + ia).reshape(-1), device=self.device)
            j_rows = torch.as_tensor((first + ja).reshape(-1), device=self.device)
            flat = guest.reshape(-1, 3)
            vec = flat[j_rows] - flat[i_rows]
            inside = vec.norm(dim=-1) < self.r_cut
            i_rows, j_rows, vec = i_rows[inside], j_rows[inside], vec[inside]
            moments = moments.index_add(0, i_rows, self.model.pair_moments(vec, types[i_rows], types[j_rows],
                                                                           self._task(len(vec))))
        if framework_part is not None:
            moments = moments.index_add(0, *framework_part)
        return self.model.energy_from_basic(moments, types, self._task(b * g)).view(b, g)

    def positions(self, centers: np.ndarray, rotations: np.ndarray) -> np.ndarray:
        """Guest atom positions (B, g, 3) for centres (B, 3) (Cartesian, Å) and rotation matrices (B, 3, 3)."""
        return rigid_positions(self.guest, centers, rotations)

    @torch.no_grad()
    def energy_change(self, positions: np.ndarray) -> InsertionBatch:
        """dE (eV) of each trial insertion, guest atoms at ``positions`` (B, g, 3) (Cartesian, Å; the guest's
        centre anywhere, it is wrapped into the cell)."""
        positions = self.images.wrap(positions)
        _, idx, overlap = self.images.near(positions, self.r_cut)
        energy = np.full(len(positions), np.inf)
        keep = np.flatnonzero(~overlap)
        for start in range(0, len(keep), EVALUATION_CHUNK):
            part = keep[start:start + EVALUATION_CHUNK]
            energy[part] = self._evaluate(positions[part], idx[part])
        return InsertionBatch(energy, overlap)

    def _evaluate(self, positions: np.ndarray, idx: np.ndarray) -> np.ndarray:
        """dE of non-overlapping trials (B, g, 3) with their neighbour images (B, g, k)."""
        b, g, _ = positions.shape
        n_framework = self.images.n_atoms
        trial, atom, slot = np.nonzero(idx >= 0)
        image = idx[trial, atom, slot]
        t = lambda a: torch.as_tensor(a, device=self.device)  # noqa: E731
        guest = t(positions).to(self.dtype)
        rows = t(trial * g + atom)
        j = t(self.images.owner[image])
        to_framework = t(self.images.positions[image]).to(self.dtype) - guest.view(-1, 3)[rows]
        types_j, types_a = self.framework_types[j], t(self.guest_types[atom])
        task = self._task(len(image))
        guest_energy = self._guest_sites(guest, (rows, self.model.pair_moments(to_framework, types_a, types_j, task)))
        # framework atoms near the guest: their moments gain the guest atoms (one group per trial and atom j)
        groups, inverse = torch.unique(t(trial) * n_framework + j, return_inverse=True)
        members = groups % n_framework
        moments = self.framework_moments[members].index_add(
            0, inverse, self.model.pair_moments(-to_framework, types_j, types_a, task))
        new = self.model.energy_from_basic(moments, self.framework_types[members], self._task(len(groups)))
        change = guest.new_zeros(b).index_add(0, groups // n_framework, new - self.framework_energies[members])
        if self.model.repulsion is not None:  # the pair prior of each guest-framework pair (the guest's own cancel)
            prior, _ = self.model.repulsion.pair_energy(to_framework.norm(dim=-1), types_a, types_j)
            change = change.index_add(0, t(trial), prior.to(change.dtype))
        return (guest_energy.sum(1) + change - self.isolated_guest).cpu().double().numpy()
