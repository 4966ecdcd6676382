"""``Sus2Potential``: the SUS2-MLIP energy model as a ``torch.nn.Module`` (energy, forces, stress).

Site energy of atom i with species s (the form of the published models):

    E_i = shift_s + c_s * (1 + sum_k m_k B_k(i))

Multi-domain training adds task-specific parameters theta_T for each task T (SevenNet-Omni style: shared theta_C,
small per-task theta_T): a per-species shift, a per-species relative scale, a moment-coefficient correction and a
correction of the per-pair scaling centres r0 (the universal-EOS bond length: where a method's lattice constants
differ, e.g. PBE vs r2SCAN, only this moves),

    E_i^T = (shift_s + dshift_Ts) + c_s (1 + dc_Ts) (1 + sum_k (m_k + dm_Tk) B_k(i; r0 + dr0_T)),

which has the published form, so a task folds exactly into an ``.mtp`` file (:meth:`Sus2Potential.to_mtp`).

where B_k are the scalar moment contractions, m the ``moment_coeffs``, c_s the ``species_coeffs`` and shift_s
the ``shift_coeffs``.  Radial functions f_mu(r) = scaling * w_I * w_J * sum_xi c_{mu,xi} Q_xi(r; alpha, r0) share
their coefficients c over all species pairs; w are per-element weights and (alpha, r0) the per-pair universal
scaling of channel k(mu) chosen by ``scaling_map``.

A model trained here also carries a short-range ZBL pair prior (:mod:`sus2_model.repulsion`), zero wherever the
training data went and repulsive below it; the authors' published models have none and evaluate exactly as theirs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from ase.data import atomic_numbers
from torch import nn

from .basis import chebyshev, cutoff
from .io.mtp import MtpFile, read_mtp
from .moments import MomentContraction
from .neighbors import Batch
from .repulsion import PairRepulsion


def channel_of_radial_function(scaling_map: str, n_funcs: int, levels: int) -> np.ndarray:
    """Scaling channel k(mu) of each radial function: by K index, by tensor level L, or one per function."""
    mu = np.arange(n_funcs)
    return {"K": mu // levels, "L": mu % levels, "LK": mu}[scaling_map]


def _gather(table: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``table[index]`` for an index of any shape, by ``index_select``: its backward (``index_add``) is much faster
    than that of advanced indexing."""
    return table.index_select(0, index.reshape(-1)).view(*index.shape, *table.shape[1:])


class Sus2Potential(nn.Module):
    """SUS2 moment-tensor potential with per-pair universal scaling and a tanh-embedded Chebyshev basis."""

    def __init__(self, mtp: MtpFile, species: Sequence[str] | None = None) -> None:
        super().__init__()
        if not mtp.trained:
            raise ValueError("the .mtp file holds no trained coefficients")
        c, r, n_mu, k = mtp.species_count, mtp.radial_basis_size, mtp.radial_funcs_count, mtp.n_channels
        if species is not None and len(species) != c:
            raise ValueError(f"species list has {len(species)} elements, the model has species_count={c}")
        self.species = list(species) if species is not None else None
        self.hyper = {key: getattr(mtp, key) for key in (
            "potential_name", "potential_tag", "L", "scaling_map", "radial_basis_type", "min_dist",
            "alpha_moments_count")}
        self.species_count, self.radial_basis_size, self.n_channels = c, r, k
        self.r_cut = float(mtp.max_dist)
        self.chunk_atoms = 256  # atoms per chunk of neighbour work: keeps intermediates cache-sized
        f64 = lambda a: torch.as_tensor(np.asarray(a, dtype=np.float64).copy())  # noqa: E731
        scal = np.asarray(mtp.scal_coeffs).reshape(k, 2, c, c)
        self.shift = nn.Parameter(f64(mtp.shift_coeffs))
        self.alpha = nn.Parameter(f64(scal[:, 0]))
        self.r0 = nn.Parameter(f64(scal[:, 1]))
        self.radial_coeffs = nn.Parameter(f64(mtp.radial_coeffs[:, :r]))
        self.species_weights = nn.Parameter(f64(mtp.radial_coeffs[0, r:]))
        self.species_coeffs = nn.Parameter(f64(mtp.species_coeffs))
        self.moment_coeffs = nn.Parameter(f64(mtp.moment_coeffs))
        # weights of rows 1.. are stored by the format but unused by the model: kept for an exact round trip
        self.register_buffer("stored_row_weights", f64(mtp.radial_coeffs[1:, r:]))
        self.register_buffer("scaling", torch.tensor(float(mtp.scaling), dtype=torch.float64))
        # per-descriptor multipliers (the authors' linear_mults): training sets them to 1/std of B_k so the
        # coefficients are well conditioned; exported coefficients are moment_coeffs * moment_scale
        self.register_buffer("moment_scale", torch.ones(len(mtp.alpha_moment_mapping), dtype=torch.float64))
        channel = channel_of_radial_function(mtp.scaling_map, n_mu, mtp.L + 1)
        rows = torch.as_tensor(channel[:, None] * r + np.arange(r)[None, :])  # (n_mu, R) row of the block matrix
        self.register_buffer("block_rows", rows, persistent=False)
        self.register_buffer("block_cols", torch.arange(n_mu)[:, None].expand(n_mu, r).clone(), persistent=False)
        self.moments = MomentContraction(mtp.alpha_index_basic, mtp.alpha_index_times, mtp.alpha_moment_mapping,
                                         mtp.alpha_moments_count)
        self._mtp_tables = (mtp.alpha_index_basic, mtp.alpha_index_times, mtp.alpha_moment_mapping)
        self.metadata: dict = {}
        self.tasks: list[str] = []
        self.task_shift = nn.Parameter(torch.zeros(0, c, dtype=torch.float64))
        self.task_scale = nn.Parameter(torch.zeros(0, c, dtype=torch.float64))
        self.task_moments = nn.Parameter(torch.zeros(0, len(mtp.alpha_moment_mapping), dtype=torch.float64))
        self.task_r0 = nn.Parameter(torch.zeros(0, self.r0.numel(), dtype=torch.float64))
        self.repulsion: PairRepulsion | None = None  # the short-range prior (:meth:`set_repulsion`); None: off

    def set_repulsion(self, onsets: np.ndarray | None) -> None:
        """Switch the ZBL pair prior on below ``onsets`` (Å, (c, c); see :mod:`~sus2_model.repulsion`), or off with
        ``None``.  The authors' ``.mtp`` format has no place for it: :meth:`to_mtp` writes the moment part only."""
        if onsets is None:
            self.repulsion = None
            return
        if self.species is None:
            raise ValueError("a repulsive prior needs the model's species list")
        device, dtype = self.shift.device, self.shift.dtype
        self.repulsion = PairRepulsion.for_species(self.species, np.asarray(onsets)).to(device=device, dtype=dtype)

    # ------------------------------------------------------------------ tasks (theta_T)
    def add_task(self, name: str) -> int:
        """Add a task with zero corrections (the shared surface); returns its index."""
        if name in self.tasks:
            return self.tasks.index(name)
        grow = lambda p: nn.Parameter(torch.cat([p.detach(), p.new_zeros(1, p.shape[1])]))  # noqa: E731
        self.task_shift, self.task_scale, self.task_moments, self.task_r0 = (
            grow(self.task_shift), grow(self.task_scale), grow(self.task_moments), grow(self.task_r0))
        self.tasks.append(name)
        return len(self.tasks) - 1

    def task_index(self, task: str | None) -> int:
        """Index of a task name (-1 for ``None``, the shared surface); a clear error for unknown names."""
        if task is None:
            return -1
        if task not in self.tasks:
            raise ValueError(f"unknown task {task!r}: this model knows {self.tasks or 'no tasks'}")
        return self.tasks.index(task)

    def task_parameters(self) -> list[nn.Parameter]:
        """theta_T: the task-specific parameters (selective L2 applies to all but the shifts)."""
        return [self.task_shift, self.task_scale, self.task_moments, self.task_r0]

    # ------------------------------------------------------------------ construction and export
    @classmethod
    def from_file(cls, path: str | Path, species: Sequence[str] | None = None) -> "Sus2Potential":
        """Load an authors' ``.mtp`` file."""
        return cls(read_mtp(path), species)

    def to_mtp(self, task: str | None = None) -> MtpFile:
        """The model (with ``task``'s corrections folded in) as an ``.mtp`` record, for :func:`write_mtp`."""
        h = self.hyper
        k = self.task_index(task)
        d = lambda t: t.detach().cpu().double().numpy()  # noqa: E731
        radial = np.concatenate([d(self.radial_coeffs),
                                 np.vstack([d(self.species_weights)[None], d(self.stored_row_weights)])], axis=1)
        r0 = d(self.r0) + (d(self.task_r0)[k].reshape(self.r0.shape) if k >= 0 else 0.0)
        scal = np.stack([d(self.alpha), r0], axis=1).reshape(-1)
        basic, times, mapping = self._mtp_tables
        return MtpFile(
            species_count=self.species_count, L=h["L"], scaling_map=h["scaling_map"], min_dist=h["min_dist"],
            max_dist=self.r_cut, radial_basis_size=self.radial_basis_size, radial_funcs_count=len(radial),
            alpha_moments_count=h["alpha_moments_count"], alpha_index_basic=basic, alpha_index_times=times,
            alpha_moment_mapping=mapping, potential_name=h["potential_name"], potential_tag=h["potential_tag"],
            scaling=float(self.scaling), radial_basis_type=h["radial_basis_type"],
            shift_coeffs=d(self.shift) + (d(self.task_shift)[k] if k >= 0 else 0.0),
            scal_coeffs=scal, radial_coeffs=radial,
            species_coeffs=d(self.species_coeffs) * (1.0 + (d(self.task_scale)[k] if k >= 0 else 0.0)),
            moment_coeffs=(d(self.moment_coeffs) + (d(self.task_moments)[k] if k >= 0 else 0.0)) * d(self.moment_scale))

    @property
    def min_distance(self) -> float:
        """Closest approach (Å) accepted at evaluation: half the ``min_dist`` hyperparameter, never below 0.5 Å
        (derived on every use, so it follows ``hyper["min_dist"]`` when initialisation from data moves it)."""
        return max(0.5, 0.5 * float(self.hyper["min_dist"]))

    @property
    def species_index(self) -> dict[int, int]:
        """Atomic number -> species index (requires a species list)."""
        if self.species is None:
            raise ValueError("this model has no species list: pass species=[...] (or species.json next to the .mtp)")
        return {atomic_numbers[s]: i for i, s in enumerate(self.species)}

    def set_moment_scale(self, scale: torch.Tensor) -> None:
        """Change the descriptor multipliers without changing the model's energies."""
        with torch.no_grad():
            scale = torch.as_tensor(scale, dtype=self.moment_scale.dtype, device=self.moment_scale.device)
            ratio = self.moment_scale / scale
            self.moment_coeffs.mul_(ratio)
            self.task_moments.mul_(ratio)
            self.moment_scale.copy_(scale)

    def parameter_count(self) -> int:
        """Number of trainable parameters."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    # ------------------------------------------------------------------ evaluation
    def radial_functions(self, dist: torch.Tensor, ti: torch.Tensor, tj: torch.Tensor, mask: torch.Tensor,
                         derivative: bool = True, task: torch.Tensor | None = None
                         ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Radial functions f_mu (n, K, n_mu) of neighbours at ``dist`` (n, K) and their r-derivatives.

        f_mu = scaling w_I w_J (r - r_cut)^2 sum_n c_{mu,n} T_n(tanh(alpha (r - r0) / 2)), alpha and r0 taken from
        the pair (I, J) = (ti, tj) and the scaling channel of mu (r0 moved by the task of each central atom, ``task``
        (n,), -1 = shared); zero where ``mask`` is 0 (padding).
        """
        c, r = self.species_count, self.radial_basis_size
        pair = ti.unsqueeze(1) * c + tj
        half_alpha = 0.5 * _gather(self.alpha.reshape(self.n_channels, c * c).T, pair)  # (n, K, channels)
        r0 = _gather(self.r0.reshape(self.n_channels, c * c).T, pair)
        if task is not None and len(self.tasks):
            shifts = torch.cat([self.task_r0, self.task_r0.new_zeros(1, self.task_r0.shape[1])])[task]
            shifts = shifts.reshape(-1, self.n_channels, c * c).transpose(1, 2)  # (n, pairs, channels)
            r0 = r0 + torch.gather(shifts, 1, pair.unsqueeze(-1).expand(-1, -1, self.n_channels))
        t, dt, _ = chebyshev(half_alpha * (dist.unsqueeze(-1) - r0), r, derivative)  # (n, K, channels, R)
        block = self.radial_coeffs.new_zeros(self.n_channels * r, self.radial_coeffs.shape[0])
        block = block.index_put((self.block_rows.reshape(-1), self.block_cols.reshape(-1)),
                                self.radial_coeffs.reshape(-1))
        cut, d_cut = cutoff(dist, self.r_cut)
        w = self.species_weights
        weight = self.scaling * _gather(w, ti).unsqueeze(1) * _gather(w, tj) * mask
        poly = t.flatten(-2) @ block  # (n, K, n_mu)
        radial = poly * (weight * cut).unsqueeze(-1)
        if not derivative:
            return radial, None
        d_poly = (dt * half_alpha.unsqueeze(-1)).flatten(-2) @ block
        d_radial = (d_poly * cut.unsqueeze(-1) + poly * d_cut.unsqueeze(-1)) * weight.unsqueeze(-1)
        return radial, d_radial

    def _chunks(self, batch: Batch) -> list[slice]:
        n = len(batch.types)
        return [slice(s, min(s + self.chunk_atoms, n)) for s in range(0, n, self.chunk_atoms)]

    def edge_features(self, batch: Batch, rows: slice, derivative: bool = True, task: torch.Tensor | None = None
                      ) -> dict[str, torch.Tensor]:
        """Geometry, radial functions and unit-vector monomials of the neighbours of atoms ``rows`` (``task`` per
        atom)."""
        nbr = batch.nbr_j[rows]
        vectors = _gather(batch.positions, nbr) - batch.positions[rows].unsqueeze(1) + batch.nbr_shift[rows]
        dist = vectors.norm(dim=-1)
        unit = vectors / dist.unsqueeze(-1)
        radial, d_radial = self.radial_functions(dist, batch.types[rows], batch.types[nbr], batch.nbr_mask[rows],
                                                 derivative, None if task is None else task[rows])
        return {"vectors": vectors, "dist": dist, "unit": unit, "radial": radial, "d_radial": d_radial,
                "powers": self.moments.tensor_powers(unit)}

    def basic_moments(self, batch: Batch, task: torch.Tensor | None = None) -> torch.Tensor:
        """Basic moments (N, n_basic) of every atom (``task`` per atom, -1 = shared): sums over its neighbours."""
        parts = []
        for rows in self._chunks(batch):
            e = self.edge_features(batch, rows, derivative=False, task=task)
            parts.append(self.moments.basic_moments(e["radial"], e["powers"]))
        return torch.cat(parts)

    def pair_moments(self, vectors: torch.Tensor, center_types: torch.Tensor, neighbour_types: torch.Tensor,
                     task: torch.Tensor | None = None) -> torch.Tensor:
        """The contribution (P, n_basic) of single neighbours at ``vectors`` (P, 3) (centre -> neighbour, all
        shorter than the cutoff) to their centres' basic moments.  An atom's basic moments are the sum of its
        neighbours' contributions, so a few neighbours added to a fixed environment are a local update."""
        dist = vectors.norm(dim=-1, keepdim=True)  # (P, 1): one neighbour per row
        radial, _ = self.radial_functions(dist, center_types, neighbour_types.unsqueeze(1), torch.ones_like(dist),
                                          derivative=False, task=task)
        powers = self.moments.tensor_powers((vectors / dist).unsqueeze(1))
        return self.moments.basic_moments(radial, powers)

    def descriptors(self, batch: Batch) -> torch.Tensor:
        """Scalar moment descriptors B (N, n_scalar) of every atom."""
        return self.moments.contract(self.basic_moments(batch))

    def energy_from_basic(self, basic: torch.Tensor, types: torch.Tensor, task_of_atom: torch.Tensor | None = None
                          ) -> torch.Tensor:
        """Site energies (N,) from basic moments (N, n_basic); ``task_of_atom`` (-1 = shared) adds theta_T.

        The last step (shift + c (1 + m . B)) is always done in float64: a site energy near -10 eV is only good to
        1e-6 eV in float32, and that rounding would swamp the energy loss's gradient near a fitted optimum."""
        b = (self.moments.contract(basic) * self.moment_scale).double()
        shift, scale, coeffs = self.shift.double(), self.species_coeffs.double(), self.moment_coeffs.double()
        if task_of_atom is None or not len(self.tasks):
            return shift[types] + scale[types] * (1.0 + b @ coeffs)
        pad = lambda p: torch.cat([p, p.new_zeros(1, p.shape[1])]).double()  # noqa: E731 - row -1: shared surface
        shift = shift[types] + pad(self.task_shift)[task_of_atom, types]
        scale = scale[types] * (1.0 + pad(self.task_scale)[task_of_atom, types])
        moments = ((coeffs + pad(self.task_moments)[task_of_atom]) * b).sum(-1)
        return shift + scale * (1.0 + moments)

    def forward(self, batch: Batch, forces: bool = True, stress: bool = True, create_graph: bool = False
                ) -> dict[str, torch.Tensor]:
        """Energies (S,), and on request forces (N, 3) = -dE/dr and stress (S, 3, 3) = (1/V) dE/d(strain), of the
        moment part plus the repulsive prior where one is set (:meth:`set_repulsion`).

        Atoms are processed in chunks of ``chunk_atoms`` so per-neighbour intermediates stay small.  Forces are
        assembled analytically from dE/d(basic moments), itself a small autograd step per atom, so they stay
        differentiable in the parameters: ``create_graph=True`` lets a loss on forces train the model.
        """
        need_grad = forces or stress
        chunks = self._chunks(batch)
        task = None if batch.task_of_structure is None else batch.task_of_structure[batch.structure_of_atom]
        edges = [self.edge_features(batch, rows, need_grad, task) for rows in chunks]
        basic = torch.cat([self.moments.basic_moments(e["radial"], e["powers"]) for e in edges])
        with torch.enable_grad():
            if not basic.requires_grad or not create_graph:
                basic = basic.detach().requires_grad_(need_grad)
            energy_atoms = self.energy_from_basic(basic, batch.types, task)
            if need_grad:
                (g_basic,) = torch.autograd.grad(energy_atoms.sum(), basic, create_graph=create_graph)
        if not create_graph:
            energy_atoms = energy_atoms.detach()
        prior = None if self.repulsion is None else self.repulsion(batch, forces, stress)
        if prior is not None:
            energy_atoms = energy_atoms + prior["energies"]
        energy = energy_atoms.new_zeros(batch.n_structures).index_add(0, batch.structure_of_atom, energy_atoms)
        out = {"energy": energy, "energies": energy_atoms}
        if need_grad:
            out.update(self.assemble(batch, chunks, edges, g_basic, forces, stress))
            for key in ("forces", "stress"):
                if prior is not None and key in out:
                    out[key] = out[key] + prior[key].to(out[key].dtype)
        return out

    def assemble(self, batch: Batch, chunks: list[slice], edges: list[dict[str, torch.Tensor]], g_basic: torch.Tensor,
                 forces: bool = True, stress: bool = True) -> dict[str, torch.Tensor]:
        """Forces (N, 3) and stress (S, 3, 3) from g_basic = dE/d(basic moments) (N, n_basic), by the chain rule
        through the neighbour data of :meth:`edge_features`."""
        out: dict[str, torch.Tensor] = {}
        force = torch.zeros_like(batch.positions) if forces else None
        virial = []
        for rows, e in zip(chunks, edges):
            g_full = self.moments.expand(g_basic[rows], e["radial"].shape[-1])  # dE/d(f^T @ monomials)
            de_dr = ((e["powers"] @ g_full.transpose(1, 2)) * e["d_radial"]).sum(-1)  # (n, K)
            de_du = self.moments.unit_gradient(e["radial"] @ g_full, e["powers"], e["unit"])  # (n, K, 3)
            unit = e["unit"]
            radial_part = (de_du * unit).sum(-1, keepdim=True)
            grad = de_dr.unsqueeze(-1) * unit + (de_du - radial_part * unit) / e["dist"].unsqueeze(-1)  # dE/d(vec)
            if forces:
                force = force.index_add(0, torch.arange(rows.start, rows.stop, device=force.device), grad.sum(1))
                force = force.index_add(0, batch.nbr_j[rows].reshape(-1), -grad.reshape(-1, 3))
            if stress:
                virial.append(torch.einsum("nka,nkb->nab", e["vectors"], grad))
        if forces:
            out["forces"] = force
        if stress:
            total = g_basic.new_zeros(batch.n_structures, 3, 3).index_add(0, batch.structure_of_atom, torch.cat(virial))
            out["stress"] = batch.stress(total)
        return out
