"""Untrained SUS2 models: moment-contraction tables generated from the tensor algebra, and initial coefficients.

Radial function mu = k (L + 1) + nu carries tensor rank nu = 0..L (the layout of the published models).  Basic
moments M_{k,nu} are symmetric rank-nu tensors; scalar descriptors are their complete contractions:

* degree 1:  M_{k,0}
* degree 2:  M_{a,nu} . M_{b,nu}                      (all ranks)
* degree 3:  M1 M2 M3 contracted pairwise (n12, n13, n23 indices shared; e.g. v.A.w, tr(ABC))
* degree 4:  products of two degree-2 invariants

Each candidate has an MTP-style level, sum over its moments of 2 + 4k + nu; those with level <= ``max_level`` are
kept.  Intermediate tensor components that are the same sum of products share one moment index.
"""

from __future__ import annotations

from collections import Counter
from itertools import combinations_with_replacement, product

import numpy as np

from .io.mtp import MtpFile
from .moments import MAX_DEGREE

Tensor = dict[tuple[int, ...], int]


class _TableBuilder:
    def __init__(self) -> None:
        self.basic: list[tuple[int, int, int, int]] = []
        self.times: list[tuple[int, int, int, int]] = []
        self.count = 0
        self._components: dict[tuple, int] = {}

    def basic_tensor(self, mu: int, rank: int) -> Tensor:
        tensor: Tensor = {}
        for index in product(range(3), repeat=rank):
            exps = (index.count(0), index.count(1), index.count(2))
            key = ("basic", mu, exps)
            if key not in self._components:
                self._components[key] = len(self.basic)
                self.basic.append((mu, *exps))
            tensor[index] = self._components[key]
        return tensor

    def _component(self, terms: Counter) -> int:
        key = tuple(sorted(terms.items()))
        if key not in self._components:
            self._components[key] = self.count
            self.times += [(p, q, m, self.count) for (p, q), m in sorted(terms.items())]
            self.count += 1
        return self._components[key]

    def contract(self, a: Tensor, rank_a: int, b: Tensor, rank_b: int, n: int) -> Tensor:
        """Contract the last ``n`` indices of ``a`` with the first ``n`` of ``b``."""
        out: Tensor = {}
        for free_a in product(range(3), repeat=rank_a - n):
            for free_b in product(range(3), repeat=rank_b - n):
                terms: Counter = Counter()
                for c in product(range(3), repeat=n):
                    p, q = a[free_a + c], b[c + free_b]
                    terms[(min(p, q), max(p, q))] += 1
                out[free_a + free_b] = self._component(terms)
        return out


def moment_tables(n_radial: int, max_rank: int, max_level: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Generate ``alpha_index_basic``, ``alpha_index_times``, ``alpha_moment_mapping`` and ``alpha_moments_count``.

    ``n_radial`` radial functions per rank (K), tensors up to rank ``max_rank`` (L), invariants up to ``max_level``.
    """
    if not 0 <= max_rank <= MAX_DEGREE:
        raise ValueError(f"max_rank (L) must be 0..{MAX_DEGREE}")
    builder = _TableBuilder()
    moments = {(k, nu): builder.basic_tensor(k * (max_rank + 1) + nu, nu)
               for k in range(n_radial) for nu in range(max_rank + 1)}
    builder.count = len(builder.basic)
    level = {key: 2 + 4 * key[0] + key[1] for key in moments}
    scalars: list[int] = []

    def keep(i: int) -> None:
        if i not in scalars:
            scalars.append(i)

    for key in sorted(moments, key=level.get):
        if key[1] == 0 and level[key] <= max_level:
            keep(moments[key][()])
    pairs: list[tuple[int, int]] = []  # (level, scalar id) of degree-2 invariants
    for a, b in combinations_with_replacement(sorted(moments), 2):
        if a[1] == b[1] and level[a] + level[b] <= max_level:
            s = builder.contract(moments[a], a[1], moments[b], b[1], a[1])[()]
            keep(s)
            pairs.append((level[a] + level[b], s))
    for a, b, c in combinations_with_replacement(sorted(moments), 3):
        ra, rb, rc = a[1], b[1], c[1]
        n_ab, n_ac, n_bc = (ra + rb - rc), (ra + rc - rb), (rb + rc - ra)
        if min(n_ab, n_ac, n_bc) < 0 or n_ab % 2 or level[a] + level[b] + level[c] > max_level:
            continue
        ab = builder.contract(moments[a], ra, moments[b], rb, n_ab // 2)
        keep(builder.contract(ab, ra + rb - n_ab, moments[c], rc, rc)[()])
    for (la, sa), (lb, sb) in combinations_with_replacement(pairs, 2):
        if la + lb <= max_level:
            keep(builder._component(Counter({(min(sa, sb), max(sa, sb)): 1})))
    basic = np.array(builder.basic, dtype=np.int64)
    times = np.array(builder.times, dtype=np.int64).reshape(-1, 4)
    return basic, times, np.array(scalars, dtype=np.int64), builder.count


def untrained_mtp(species_count: int, max_rank: int = 2, n_radial: int = 3, max_level: int = 16,
                  radial_basis_size: int = 8, min_dist: float = 1.5, max_dist: float = 5.0,
                  scaling_map: str = "K", seed: int = 0) -> MtpFile:
    """A fresh model: generated tables, unit species weights, zero moment coefficients, random radial coefficients.

    The pair scaling starts at alpha = 6.6 / (max_dist - min_dist), r0 = min_dist (as the authors' initialiser);
    training re-initialises it from the data's nearest-neighbour distances.
    """
    basic, times, mapping, n_moments = moment_tables(n_radial, max_rank, max_level)
    rng = np.random.default_rng(seed)
    levels = max_rank + 1
    mtp = MtpFile(
        species_count=species_count, L=max_rank, scaling_map=scaling_map, min_dist=min_dist, max_dist=max_dist,
        radial_basis_size=radial_basis_size, radial_funcs_count=n_radial * levels, alpha_moments_count=n_moments,
        alpha_index_basic=basic, alpha_index_times=times, alpha_moment_mapping=mapping,
        potential_name=f"sus2_l{max_rank}k{n_radial}", scaling=1.0 / (max_dist - min_dist) ** 2,
    )
    c, k = species_count, mtp.n_channels
    alpha = np.full((k, c, c), 6.6 / (max_dist - min_dist))
    r0 = np.full((k, c, c), float(min_dist))
    mtp.scal_coeffs = np.stack([alpha, r0], axis=1).reshape(-1)
    mtp.shift_coeffs = np.zeros(c)
    mtp.radial_coeffs = np.concatenate([rng.normal(0.0, 1.0 / radial_basis_size, (n_radial * levels, radial_basis_size)),
                                        np.ones((n_radial * levels, c))], axis=1)
    mtp.species_coeffs = np.ones(c)
    mtp.moment_coeffs = np.zeros(len(mapping))
    return mtp
