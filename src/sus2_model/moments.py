"""Moment tensors: basic moments from the ``alpha_index_basic`` table, products from ``alpha_index_times``.

A basic moment (mu, a, b, c) of atom i is  M = sum_j f_mu(r_ij) ux^a uy^b uz^c  with u the unit vector to neighbour
j.  Every monomial ux^a uy^b uz^c up to the tables' degree is computed once per neighbour (1, 4, 10, 20, 35, 56, 84
monomials up to degree 0..6), so with neighbours padded per atom all basic moments of an atom are one matrix
product f^T @ monomials, and the gradient in u follows from lowering each monomial by one exponent.  Each
``alpha_index_times`` row (p, q, m, t) adds ``m * M_p * M_q`` to moment t; the rows are grouped into levels (a row's
level exceeds those of its inputs) so the contraction is a handful of tensor operations on (moments, atoms) arrays.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

MAX_DEGREE = 6


def monomials(degree: int) -> list[tuple[int, int, int]]:
    """Exponents (a, b, c) of all monomials ux^a uy^b uz^c of total degree <= ``degree``, by degree."""
    return [(a, b, d - a - b) for d in range(degree + 1) for a in range(d, -1, -1) for b in range(d - a, -1, -1)]


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


class MomentContraction(nn.Module):
    """Compiled ``alpha_*`` tables: basic moments of each atom and their contraction to scalar descriptors."""

    def __init__(self, basic: np.ndarray, times: np.ndarray, mapping: np.ndarray, n_moments: int) -> None:
        super().__init__()
        basic = np.asarray(basic, dtype=np.int64).reshape(-1, 4)
        times = np.asarray(times, dtype=np.int64).reshape(-1, 4)
        n_basic = len(basic)
        self.degree = int(basic[:, 1:].sum(axis=1).max(initial=0))
        if self.degree > MAX_DEGREE:
            raise ValueError(f"moment tensors of rank {self.degree} > {MAX_DEGREE} are not supported")
        exps = monomials(self.degree)
        column = {e: i for i, e in enumerate(exps)}
        self.width = len(exps)
        # position of each basic moment (mu, monomial) in a flattened (n_mu, width) array
        flat = [int(r[0]) * self.width + column[tuple(int(x) for x in r[1:])] for r in basic]
        self.register_buffer("basic_flat", torch.tensor(flat, dtype=torch.long), persistent=False)
        # monomial of degree d = (monomial of degree d - 1) * u[axis]: lower the first nonzero exponent
        parent, axis = [], []
        for e in exps[1:]:
            ax = next(i for i in range(3) if e[i])
            parent.append(column[tuple(x - (i == ax) for i, x in enumerate(e))])
            axis.append(ax)
        self.register_buffer("parent", torch.tensor(parent, dtype=torch.long), persistent=False)
        self.register_buffer("parent_axis", torch.tensor(axis, dtype=torch.long), persistent=False)
        counts = [len(monomials(d)) for d in range(self.degree + 1)]
        self._degree_rows = [slice(counts[d - 1] - 1, counts[d] - 1) for d in range(1, self.degree + 1)]
        # d/du_x of monomial e = e_x * (e lowered in x): for every monomial l of degree < degree, its raise in x
        lower = exps[: len(monomials(self.degree - 1))] if self.degree else []
        raised = [[column[tuple(x + (i == ax) for i, x in enumerate(e))] for e in lower] for ax in range(3)]
        factor = [[float(e[ax] + 1) for e in lower] for ax in range(3)]
        self.register_buffer("raised", torch.tensor(raised, dtype=torch.long).reshape(-1), persistent=False)
        self.register_buffer("raise_factor", torch.tensor(factor, dtype=torch.float64).reshape(3, -1),
                             persistent=False)
        self.n_lower = len(lower)

        level = _levels(times, n_basic, n_moments)
        undefined = [int(m) for m in mapping if level[m] < 0]
        if undefined:
            raise ValueError(f"alpha_moment_mapping uses moments {undefined[:5]} that no table defines")
        column_of = np.full(n_moments, -1)  # column of every moment in [level 0 | level 1 | ...]
        column_of[:n_basic] = np.arange(n_basic)
        # per level: buffer names (p, q, t), moments defined, (multiplicity, first row, end row) of each group of rows
        self.levels: list[tuple[tuple[str, str, str], int, list[tuple[float, int, int]]]] = []
        width = n_basic
        for lev in range(1, int(level.max(initial=0)) + 1):
            targets = np.flatnonzero(level == lev)
            column_of[targets] = width + np.arange(len(targets))
            rows = times[level[times[:, 3]] == lev]
            rows = rows[np.argsort(rows[:, 2], kind="stable")]  # grouped by multiplicity (see _all_moments)
            local = {int(t): k for k, t in enumerate(targets)}
            names = (f"lv{lev}_p", f"lv{lev}_q", f"lv{lev}_t")
            self.register_buffer(names[0], torch.from_numpy(column_of[rows[:, 0]].copy()), persistent=False)
            self.register_buffer(names[1], torch.from_numpy(column_of[rows[:, 1]].copy()), persistent=False)
            self.register_buffer(names[2], torch.tensor([local[int(t)] for t in rows[:, 3]], dtype=torch.long),
                                 persistent=False)
            values, starts = np.unique(rows[:, 2], return_index=True)
            groups = [(float(v), int(a), int(b)) for v, a, b in zip(values, starts, [*starts[1:], len(rows)])]
            self.levels.append((names, len(targets), groups))
            width += len(targets)
        self.register_buffer("scalar_columns", torch.from_numpy(column_of[np.asarray(mapping)].copy()),
                             persistent=False)
        self.n_basic = n_basic
        self.n_scalar = len(mapping)
        self._plan: list[torch.Tensor] | None = None

    def tensor_powers(self, unit: torch.Tensor) -> torch.Tensor:
        """All monomials of the unit vectors up to the tables' degree: (N, K, 3) -> (N, K, width)."""
        powers = torch.ones_like(unit[..., :1])
        for rows in self._degree_rows:  # degree d from degree d - 1
            new = powers.index_select(-1, self.parent[rows]) * unit.index_select(-1, self.parent_axis[rows])
            powers = torch.cat([powers, new], dim=-1)
        return powers

    def basic_moments(self, radial: torch.Tensor, powers: torch.Tensor) -> torch.Tensor:
        """Basic moments (N, n_basic) from radial functions (N, K, n_mu) and monomials (N, K, width)."""
        full = radial.transpose(1, 2) @ powers  # (N, n_mu, width)
        return full.flatten(1).index_select(1, self.basic_flat)

    def expand(self, grad_basic: torch.Tensor, n_mu: int) -> torch.Tensor:
        """dE/d(basic) (N, n_basic) as an (N, n_mu, width) array: dE/d(f^T @ monomials)."""
        full = grad_basic.new_zeros(len(grad_basic), n_mu * self.width).index_add(1, self.basic_flat, grad_basic)
        return full.view(-1, n_mu, self.width)

    def unit_gradient(self, weights: torch.Tensor, powers: torch.Tensor, unit: torch.Tensor) -> torch.Tensor:
        """d/du of sum_c weights[..., c] powers[..., c]: (N, K, width) -> (N, K, 3)."""
        if not self.degree:
            return torch.zeros_like(unit)
        raised = weights.index_select(-1, self.raised).unflatten(-1, (3, self.n_lower))
        return (raised * self.raise_factor * powers[..., : self.n_lower].unsqueeze(-2)).sum(-1)

    def basic_gradients(self, radial: torch.Tensor, d_radial: torch.Tensor, powers: torch.Tensor,
                        unit: torch.Tensor, dist: torch.Tensor) -> torch.Tensor:
        """d(basic moment)/d(neighbour vector) of every neighbour: (N, K, n_basic, 3), from its radial functions
        (N, K, n_mu), their r-derivatives, monomials (N, K, width), unit vectors and distances (N, K)."""
        d_powers = powers.new_zeros(*powers.shape, 3)  # d(monomial)/du: raise_factor * lower monomial, by axis
        for axis in range(3):
            columns = self.raised.view(3, -1)[axis]
            d_powers[..., columns, axis] = powers[..., : self.n_lower] * self.raise_factor[axis]
        mu, column = self.basic_flat // self.width, self.basic_flat % self.width
        d_powers = d_powers.index_select(-2, column)  # of each basic moment (N, K, n_basic, 3)
        tangential = d_powers - (d_powers * unit.unsqueeze(-2)).sum(-1, keepdim=True) * unit.unsqueeze(-2)
        f, df = radial.index_select(-1, mu), d_radial.index_select(-1, mu)
        along = (df * powers.index_select(-1, column)).unsqueeze(-1) * unit.unsqueeze(-2)
        return along + f.unsqueeze(-1) * tangential / dist.unsqueeze(-1).unsqueeze(-1)

    def _jacobian_plan(self) -> list[torch.Tensor]:
        """Sparse forward-mode plan: every moment depends on a few basic moments only, so its derivative is kept as
        one entry per (moment, basic moment) it depends on; each product row adds M_q dM_p + M_p dM_q entrywise."""
        if self._plan is None:
            entry: dict[tuple[int, int], int] = {(b, b): b for b in range(self.n_basic)}
            support: list[list[int]] = [[b] for b in range(self.n_basic)]
            src, factor, mult, dst, level_end = [], [], [], [], []
            offset = self.n_basic
            for names, n_targets, groups in self.levels:
                p, q, t = (getattr(self, name).tolist() for name in names)
                m = [value for value, start, end in groups for _ in range(start, end)]
                support += [[] for _ in range(n_targets)]
                for row in range(len(p)):
                    target = offset + t[row]
                    for a, other in ((p[row], q[row]), (q[row], p[row])):
                        for b in support[a]:
                            if (target, b) not in entry:
                                entry[target, b] = len(entry)
                                support[target].append(b)
                            src.append(entry[a, b]), factor.append(other), mult.append(m[row])
                            dst.append(entry[target, b])
                level_end.append(len(src))
                offset += n_targets
            picks = [(k, b, entry[int(col), b]) for k, col in enumerate(self.scalar_columns.tolist())
                     for b in support[int(col)]]
            as_long = lambda x: torch.tensor(x, dtype=torch.long)  # noqa: E731
            self._plan = [as_long(src), as_long(factor), torch.tensor(mult, dtype=torch.float64), as_long(dst),
                          as_long(level_end), as_long(len(entry)), *(as_long(list(x)) for x in zip(*picks))]
        return self._plan

    def jacobian(self, basic: torch.Tensor) -> torch.Tensor:
        """d(scalar descriptors)/d(basic moments) (N, n_scalar, n_basic), by the sparse plan of
        :meth:`_jacobian_plan` (moment-major arrays: every gather copies whole rows)."""
        plan = [x.to(basic.device) for x in self._jacobian_plan()]
        src, factor, mult, dst, level_end, n_entries, pick_k, pick_b, pick_e = plan
        moments = self._all_moments(basic)
        tangents = basic.new_zeros(int(n_entries), len(basic))
        tangents[: self.n_basic] = 1.0
        start = 0
        for end in level_end.tolist():
            terms = slice(start, end)
            step = tangents[src[terms]] * moments[factor[terms]] * mult[terms, None].to(basic.dtype)
            tangents.index_add_(0, dst[terms], step)
            start = end
        jac = basic.new_zeros(len(basic), self.n_scalar, self.n_basic)
        jac[:, pick_k, pick_b] = tangents[pick_e].T
        return jac

    def _all_moments(self, basic: torch.Tensor) -> torch.Tensor:
        """Every moment, moment-major (columns: level 0 | level 1 | ..., N), from the basic moments (N, n_basic).

        Moment-major rows make every gather and scatter copy contiguous blocks, and each group of product rows with
        one multiplicity is added in one ``index_add_`` with that multiplicity as ``alpha`` (no extra pass)."""
        moments = basic.T
        for names, n_targets, groups in self.levels:
            p, q, t = (getattr(self, name) for name in names)
            products = moments.index_select(0, p) * moments.index_select(0, q)
            level = moments.new_zeros(n_targets, moments.shape[1])
            parts = products.split([end - start for _, start, end in groups])  # one backward: a cat
            for (value, start, end), part in zip(groups, parts):
                level.index_add_(0, t[start:end], part, alpha=value)
            moments = torch.cat([moments, level])
        return moments

    def contract(self, basic: torch.Tensor) -> torch.Tensor:
        """Scalar descriptors (N, n_scalar) from the basic moments (N, n_basic) of each atom."""
        return self._all_moments(basic).index_select(0, self.scalar_columns).T
