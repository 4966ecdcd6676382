"""Moment tensors: basic moments from the ``alpha_index_basic`` table, products from ``alpha_index_times``.

A basic moment (mu, a, b, c) of atom i is  M = sum_j f_mu(r_ij) ux^a uy^b uz^c  with u the unit vector to neighbour
j.  The monomials are taken from the tensor powers [1 | u | u(x)u | u(x)u(x)u] (1 + 3 + 9 + 27 components), so with
neighbours padded per atom all basic moments of an atom are one matrix product f^T @ powers, and the gradient in u
follows from small symmetric contractions instead of per-monomial derivatives.  Each
``alpha_index_times`` row (p, q, m, t) adds ``m * M_p * M_q`` to moment t; the rows are grouped into levels (a row's
level exceeds those of its inputs) so the contraction is a handful of tensor operations on (atoms, moments) arrays.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


def _levels(times: np.ndarray, n_basic: int, n_moments: int) -> np.ndarray:
    """Evaluation level of every moment (-1 where no table defines it); checks the rows are well ordered."""
    level = np.full(n_moments, -1)
    level[:n_basic] = 0
    last_write = np.full(n_moments, -1)
    np.maximum.at(last_write, times[:, 3], np.arange(len(times)))
    for row, (p, q, _, t) in enumerate(times):
        if level[p] < 0 or level[q] < 0:
            raise ValueError(f"alpha_index_times row {row} reads moment {p if level[p] < 0 else q} before it is defined")
        if last_write[p] >= row or last_write[q] >= row:
            raise ValueError(f"alpha_index_times row {row} reads a moment that a later row still adds to")
        level[t] = max(level[t], max(level[p], level[q]) + 1)
    return level


def _tensor_column(exponents: tuple[int, int, int]) -> int:
    """Column of monomial ux^a uy^b uz^c in [1 | u | u(x)u | u(x)u(x)u] (its sorted-index component)."""
    axes = [0] * exponents[0] + [1] * exponents[1] + [2] * exponents[2]
    offset = (0, 1, 4, 13)[len(axes)]
    return offset + sum(axis * 3 ** (len(axes) - 1 - k) for k, axis in enumerate(axes))


def _symmetrizer(degree: int) -> np.ndarray:
    """Matrix spreading a value on each sorted-index column evenly over all its permutations."""
    width = (1, 4, 13, 40)[degree]
    sym = np.zeros((width, width))
    for d in range(degree + 1):
        offset = (0, 1, 4, 13)[d]
        for flat in range(3 ** d):
            axes = np.unravel_index(flat, (3,) * d) if d else ()
            canonical = tuple(sorted(int(a) for a in axes))
            col = offset + (int(np.ravel_multi_index(canonical, (3,) * d)) if d else 0)
            perms = sum(1 for f in range(3 ** d) if tuple(sorted(np.unravel_index(f, (3,) * d))) == canonical) if d else 1
            sym[col, offset + flat] = 1.0 / perms
    return sym


class MomentContraction(nn.Module):
    """Compiled ``alpha_*`` tables: basic moments of each atom and their contraction to scalar descriptors."""

    def __init__(self, basic: np.ndarray, times: np.ndarray, mapping: np.ndarray, n_moments: int) -> None:
        super().__init__()
        basic = np.asarray(basic, dtype=np.int64).reshape(-1, 4)
        times = np.asarray(times, dtype=np.int64).reshape(-1, 4)
        n_basic = len(basic)
        self.degree = int(basic[:, 1:].sum(axis=1).max())
        if self.degree > 3:
            raise ValueError(f"moment tensors of rank {self.degree} > 3 are not supported")
        self.width = (1, 4, 13, 40)[self.degree]
        # position of each basic moment (mu, monomial) in a flattened (n_mu, width) array
        flat = [int(r[0]) * self.width + _tensor_column(tuple(r[1:])) for r in basic]
        self.register_buffer("basic_flat", torch.tensor(flat), persistent=False)
        self.register_buffer("symmetrize", torch.from_numpy(_symmetrizer(self.degree)), persistent=False)

        level = _levels(times, n_basic, n_moments)
        undefined = [int(m) for m in mapping if level[m] < 0]
        if undefined:
            raise ValueError(f"alpha_moment_mapping uses moments {undefined[:5]} that no table defines")
        column = np.full(n_moments, -1)  # column of every moment in [level 0 | level 1 | ...]
        column[:n_basic] = np.arange(n_basic)
        self.levels: list[tuple[tuple[str, str, str, str], int]] = []  # buffer names, moments defined
        width = n_basic
        for lev in range(1, int(level.max(initial=0)) + 1):
            targets = np.flatnonzero(level == lev)
            column[targets] = width + np.arange(len(targets))
            rows = times[level[times[:, 3]] == lev]
            local = {int(t): k for k, t in enumerate(targets)}
            names = (f"lv{lev}_p", f"lv{lev}_q", f"lv{lev}_m", f"lv{lev}_t")
            self.register_buffer(names[0], torch.from_numpy(column[rows[:, 0]].copy()), persistent=False)
            self.register_buffer(names[1], torch.from_numpy(column[rows[:, 1]].copy()), persistent=False)
            self.register_buffer(names[2], torch.from_numpy(rows[:, 2].astype(np.float64)), persistent=False)
            self.register_buffer(names[3], torch.tensor([local[int(t)] for t in rows[:, 3]]), persistent=False)
            self.levels.append((names, len(targets)))
            width += len(targets)
        self.register_buffer("scalar_columns", torch.from_numpy(column[np.asarray(mapping)].copy()), persistent=False)
        self.n_basic = n_basic
        self.n_scalar = len(mapping)

    def tensor_powers(self, unit: torch.Tensor) -> torch.Tensor:
        """[1 | u | u(x)u | u(x)u(x)u] up to the tables' rank: (N, K, 3) -> (N, K, width)."""
        parts = [torch.ones_like(unit[..., :1])]
        power = unit
        for d in range(1, self.degree + 1):
            parts.append(power.flatten(-d))
            if d < self.degree:
                power = power.unsqueeze(-1) * unit.reshape(unit.shape[:-1] + (1,) * d + (3,))
        return torch.cat(parts, dim=-1)

    def basic_moments(self, radial: torch.Tensor, powers: torch.Tensor) -> torch.Tensor:
        """Basic moments (N, n_basic) from radial functions (N, K, n_mu) and tensor powers (N, K, width)."""
        full = radial.transpose(1, 2) @ powers  # (N, n_mu, width)
        return full.flatten(1).index_select(1, self.basic_flat)

    def expand(self, grad_basic: torch.Tensor, n_mu: int) -> torch.Tensor:
        """dE/d(basic) (N, n_basic) as a symmetric (N, n_mu, width) array: dE/d(f^T @ powers)."""
        full = grad_basic.new_zeros(len(grad_basic), n_mu * self.width).index_add(1, self.basic_flat, grad_basic)
        return full.view(-1, n_mu, self.width) @ self.symmetrize

    def unit_gradient(self, weights: torch.Tensor, powers: torch.Tensor, unit: torch.Tensor) -> torch.Tensor:
        """d/du of sum_c weights[..., c] powers[..., c] for symmetric weights (N, K, width) -> (N, K, 3)."""
        grad = weights[..., 1:4].clone() if self.degree >= 1 else torch.zeros_like(unit)
        if self.degree >= 2:
            w2 = weights[..., 4:13].unflatten(-1, (3, 3))
            grad = grad + 2.0 * (w2 * unit.unsqueeze(-2)).sum(-1)
        if self.degree >= 3:
            w3 = weights[..., 13:40].unflatten(-1, (3, 9))
            grad = grad + 3.0 * (w3 * powers[..., 4:13].unsqueeze(-2)).sum(-1)
        return grad

    def contract(self, basic: torch.Tensor) -> torch.Tensor:
        """Scalar descriptors (N, n_scalar) from the basic moments (N, n_basic) of each atom."""
        moments = basic
        for names, n_targets in self.levels:
            p, q, m, t = (getattr(self, name) for name in names)
            products = moments.index_select(1, p) * moments.index_select(1, q) * m
            level = moments.new_zeros(len(moments), n_targets).index_add(1, t, products)
            moments = torch.cat([moments, level], dim=1)
        return moments.index_select(1, self.scalar_columns)
