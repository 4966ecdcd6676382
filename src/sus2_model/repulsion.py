"""A short-range repulsive prior: the ZBL universal screened nuclear repulsion, switched on below the shortest
distance at which each species pair was seen in training.

The SUS2 basis saturates below its scaling centre (tanh -> -1), so alone the model meets a pair closer than its data
with a bounded energy that is as often attractive as repulsive: a relaxation that strays there can go downhill into
a collapsed structure (O on Cu(111) with QE labels: a "minimum" the model bound by 9 eV that DFT does not bind).
The prior adds, for every pair of atoms i, j of species I, J at distance r,

    V(r) = ZBL(r; Z_I, Z_J) s((r_IJ - r) / w),  ZBL = k_e Z_I Z_J phi(r / a) / r,  a = 0.8854 a_0 / (Z_I^.23 + Z_J^.23)

with phi the universal screening function (Ziegler, Biersack and Littmark 1985), s the smoothstep
t^3 (10 - 15 t + 6 t^2) (0 at t <= 0, 1 at t >= 1, two continuous derivatives) and r_IJ the pair's onset.  Set at
the shortest training distance of each pair (:func:`repulsion_onsets`), the prior is zero on every training
structure: the moment part fits the labels as before and the prior only acts where the model would extrapolate.
"""

from __future__ import annotations

import numpy as np
import torch
from ase.data import atomic_numbers, covalent_radii
from ase.units import Bohr, Hartree
from torch import nn

SWITCH_WIDTH = 0.3  # Å: from zero at a pair's onset to the full ZBL energy
COULOMB = Hartree * Bohr  # e^2 / (4 pi eps0) in eV Å
SCREENING_LENGTH = 0.8854 * Bohr  # Å
PHI_COEFFS = (0.18175, 0.50986, 0.28022, 0.02817)
PHI_EXPONENTS = (3.19980, 0.94229, 0.40290, 0.20162)


def repulsion_onsets(species: list[str], shortest: dict[tuple[int, int], float],
                     previous: np.ndarray | None = None) -> np.ndarray:
    """Onsets r_IJ (Å, (c, c), symmetric) for ``species``: the shortest distance of each pair in ``shortest``
    (pair of species indices -> Å, either order), never above the sum of covalent radii (a pair the data only holds
    farther apart is repelled below a bond length) and never above ``previous`` onsets (fine-tuning on new data never
    lifts the wall)."""
    z = [atomic_numbers[s] for s in species]
    c = len(species)
    onset = np.empty((c, c))
    for a in range(c):
        for b in range(c):
            seen = [shortest[p] for p in ((a, b), (b, a)) if p in shortest]
            onset[a, b] = min([covalent_radii[z[a]] + covalent_radii[z[b]], *seen])
    if previous is not None:
        onset = np.minimum(onset, previous)
    return onset


class PairRepulsion(nn.Module):
    """The ZBL pair prior of a :class:`~sus2_model.model.Sus2Potential`: atomic numbers (c,) and onsets (c, c)."""

    def __init__(self, numbers: torch.Tensor, onsets: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("numbers", torch.as_tensor(numbers, dtype=torch.float64))
        self.register_buffer("onsets", torch.as_tensor(onsets, dtype=torch.float64))

    @classmethod
    def for_species(cls, species: list[str], onsets: np.ndarray) -> "PairRepulsion":
        """The prior for a species list and its onsets (Å, (c, c))."""
        return cls(torch.tensor([float(atomic_numbers[s]) for s in species]), torch.as_tensor(onsets))

    def pair_energy(self, dist: torch.Tensor, ti: torch.Tensor, tj: torch.Tensor
                    ) -> tuple[torch.Tensor, torch.Tensor]:
        """V (eV) and dV/dr (eV/Å) of pairs at ``dist`` (any shape) with species indices ``ti``, ``tj``."""
        zi, zj = self.numbers[ti], self.numbers[tj]
        length = SCREENING_LENGTH / (zi.pow(0.23) + zj.pow(0.23))
        x = dist / length
        phi, d_phi = torch.zeros_like(dist), torch.zeros_like(dist)
        for c, b in zip(PHI_COEFFS, PHI_EXPONENTS):
            term = c * torch.exp(-b * x)
            phi, d_phi = phi + term, d_phi - b * term
        charge = COULOMB * zi * zj
        zbl = charge * phi / dist
        d_zbl = charge * (d_phi / length - phi / dist) / dist
        t = ((self.onsets[ti, tj] - dist) / SWITCH_WIDTH).clamp(0.0, 1.0)
        switch = t**3 * (10.0 - 15.0 * t + 6.0 * t**2)
        d_switch = -30.0 * t**2 * (1.0 - t) ** 2 / SWITCH_WIDTH
        return zbl * switch, d_zbl * switch + zbl * d_switch

    def forward(self, batch, forces: bool = True, stress: bool = True) -> dict[str, torch.Tensor]:
        """Site energies (N,) (half of each pair), and on request forces (N, 3) and stress (S, 3, 3) of the prior
        on a :class:`~sus2_model.neighbors.Batch` (full neighbour lists: each pair appears twice).  Only the pairs
        closer than their onset are evaluated: in structures like the training data there are none."""
        vectors = batch.edge_vectors()
        dist = vectors.norm(dim=-1)
        ti, tj = batch.types.unsqueeze(1).expand_as(batch.nbr_j), batch.types[batch.nbr_j]
        rows, cols = ((dist < self.onsets[ti, tj]) & (batch.nbr_mask > 0)).nonzero(as_tuple=True)
        vectors, dist = vectors[rows, cols], dist[rows, cols]
        energy, d_energy = self.pair_energy(dist, ti[rows, cols], tj[rows, cols])
        out = {"energies": dist.new_zeros(len(batch.types)).index_add(0, rows, 0.5 * energy)}
        grad = (0.5 * d_energy / dist).unsqueeze(-1) * vectors  # dE/d(neighbour vector)
        if forces:
            out["forces"] = (torch.zeros_like(batch.positions).index_add(0, rows, grad)
                             .index_add(0, batch.nbr_j[rows, cols], -grad))
        if stress:
            virial = vectors.unsqueeze(-1) * grad.unsqueeze(-2)
            total = virial.new_zeros(batch.n_structures, 3, 3).index_add(0, batch.structure_of_atom[rows], virial)
            out["stress"] = batch.stress(total)
        return out
