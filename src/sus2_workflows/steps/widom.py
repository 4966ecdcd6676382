"""Widom test-particle insertion of a rigid guest into a rigid framework: the Henry coefficient and the heat of
adsorption at infinite dilution, with block-average errors and a convergence rule.

Each trial puts the guest's centre uniformly in the cell (or, given a :class:`~.pores.PoreMap`, in its open
voxels, w then scaled by their volume fraction) with a uniform random orientation; with w = exp(-dU/kT) (0 for an
overlap or a blocked pocket),

    K_H = <w> / (R T rho_framework)            (mol kg^-1 Pa^-1)
    dH_ads = <dU w> / <w> - R T                (the isosteric heat Q_st = -dH_ads)

Any :class:`InsertionEnergy` gives dU: the SUS2 local update (:class:`sus2_model.insertion.LocalInsertion`), a
full-cell model evaluation or a Lennard-Jones framework (:class:`LennardJonesInsertion`, the exact-answer check).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Mapping, Protocol

import numpy as np
from ase import Atoms
from ase.units import kB, kJ, mol
from scipy.constants import atomic_mass, gas_constant
from scipy.spatial.transform import Rotation

from sus2_model.insertion import VDW_CONTACT, FrameworkImages, InsertionBatch, guest_extent, guest_shape, \
    rigid_positions

from ..errors import ScreeningError
from .pores import PoreMap
from .progress import progress_bar

EV_TO_KJ_MOL = mol / kJ  # 96.485 kJ/mol per eV, from ASE's units
HISTOGRAM_EDGES = np.linspace(-1.5, 1.0, 126)  # eV: the insertion energies the report plots (0.02 eV bins)


class InsertionEnergy(Protocol):
    """What the Widom loop needs: the energy change of trial insertions."""

    def energy_change(self, positions: np.ndarray) -> InsertionBatch:
        """dU (eV) of guest atoms at ``positions`` (B, g, 3), +inf where they overlap the framework."""


@dataclass
class WidomSettings:
    """How long to sample: trials in batches of ``batch_size`` until the Henry coefficient's relative error (from
    ``n_blocks`` block averages) is below ``rtol`` with at least ``min_trials`` done, or ``max_trials`` (then the
    result says it did not converge).  A trial below ``-max_binding_ev`` is a failure: no physisorbed guest binds
    that strongly, a model that says so is outside its data."""

    temperature: float = 298.0
    batch_size: int = 2000
    min_trials: int = 20_000
    max_trials: int = 500_000
    rtol: float = 0.05
    n_blocks: int = 10
    keep_lowest: int = 64
    max_binding_ev: float = 3.0
    seed: int = 0


@dataclass
class WidomResult:
    """A Widom run: counts, the Henry coefficient and adsorption enthalpy with their errors (one standard error
    from block averages), the histogram of the evaluated energies and the lowest-energy insertions."""

    temperature: float
    n_trials: int
    n_overlap: int
    n_blocked: int
    henry: float  # mol / kg / Pa
    henry_error: float
    enthalpy_kj_mol: float  # dH_ads; Q_st = -dH_ads
    enthalpy_error: float
    converged: bool
    wall_s: float
    histogram: list[int] = field(default_factory=list)
    lowest_energies: np.ndarray = field(default_factory=lambda: np.zeros(0))
    lowest_positions: np.ndarray = field(default_factory=lambda: np.zeros((0, 1, 3)))
    open_fraction: float = 1.0  # the share of the cell trials were drawn from (a PoreMap's; 1: all of it)
    pocket_fraction: float = 0.0  # the share of the cell in pockets the map blocked (weight 0)

    @property
    def n_evaluated(self) -> int:
        """Trials whose energy was computed (neither overlapping nor blocked)."""
        return self.n_trials - self.n_overlap - self.n_blocked


def framework_density(framework: Atoms) -> float:
    """Mass density (kg/m^3) of a periodic framework."""
    return float(framework.get_masses().sum()) * atomic_mass / (abs(framework.cell.volume) * 1e-30)


def _block_statistics(counts: np.ndarray, weights: np.ndarray, weighted: np.ndarray, n_blocks: int, rt: float
                      ) -> tuple[float, float, float, float]:
    """<w>, its standard error, dH (eV) and its standard error from per-batch sums split into ``n_blocks``
    consecutive blocks."""
    mean_w = weights.sum() / counts.sum()
    enthalpy = weighted.sum() / weights.sum() - rt if weights.sum() > 0 else float("nan")
    if len(counts) < n_blocks:
        return mean_w, float("inf"), enthalpy, float("inf")
    blocks = np.array_split(np.arange(len(counts)), n_blocks)
    w = np.array([weights[b].sum() / counts[b].sum() for b in blocks])
    h = np.array([weighted[b].sum() / weights[b].sum() - rt if weights[b].sum() > 0 else np.nan for b in blocks])
    return (mean_w, float(w.std(ddof=1) / np.sqrt(n_blocks)), enthalpy,
            float(np.nanstd(h, ddof=1) / np.sqrt(np.isfinite(h).sum())) if np.isfinite(h).sum() > 1 else float("inf"))


def widom(energy: InsertionEnergy, framework: Atoms, guest: Atoms, settings: WidomSettings | None = None,
          blocked: Callable[[np.ndarray], np.ndarray] | None = None, name: str = "framework",
          progress: bool = False, pores: PoreMap | None = None) -> WidomResult:
    """Widom insertions of the rigid ``guest`` into ``framework`` (the cell ``energy`` was built on).

    ``blocked(centres)`` (B, 3) -> bool (B,) marks centres in pockets the guest cannot reach (their weight is 0,
    no energy is computed).  ``pores`` (:func:`~.pores.pore_map` of the same cell and contact rule): centres are
    drawn only where the guest can be without overlapping, the weights scaled by that volume fraction.  ``name``
    labels errors.  Raises :class:`ScreeningError` if no trial could be evaluated or one lies below
    ``-max_binding_ev``."""
    settings = settings or WidomSettings()
    rng = np.random.default_rng(settings.seed)
    beta = 1.0 / (kB * settings.temperature)
    rt = kB * settings.temperature
    cell = framework.cell.array
    shape = guest_shape(guest)
    counts, weights, weighted = [], [], []
    n_overlap = n_blocked = 0
    histogram = np.zeros(len(HISTOGRAM_EDGES) - 1, dtype=np.int64)
    lowest_e, lowest_p = np.zeros(0), np.zeros((0, len(guest), 3))
    start = time.perf_counter()
    converged = False
    fraction = pores.fraction if pores is not None else 1.0
    if fraction == 0.0:
        where = "has room only in pockets no guest from outside reaches (pockets blocked)" \
            if pores.pocket_voxels else "overlaps the framework wherever its centre is"
        raise ScreeningError(f"{name}: {guest.get_chemical_formula()} {where}: no accessible pore for this guest")
    with progress_bar(f"Widom {name}", settings.max_trials, progress) as advance:
        step = min(settings.batch_size, max(1, settings.min_trials // settings.n_blocks))  # blocks by min_trials
        while sum(counts) < settings.max_trials:
            n = min(step, settings.max_trials - sum(counts))
            centres = pores.sample(rng, n) if pores is not None else rng.random((n, 3)) @ cell
            rotations = Rotation.random(n, random_state=rng).as_matrix()
            positions = rigid_positions(shape, centres, rotations)
            du = np.full(n, np.inf)
            free = np.ones(n, dtype=bool) if blocked is None else ~blocked(centres)
            n_blocked += int(n - free.sum())
            if free.any():
                result = energy.energy_change(positions[free])
                du[free] = result.energy
                n_overlap += int(result.overlap.sum())
            finite = np.isfinite(du)
            if finite.any() and du[finite].min() < -settings.max_binding_ev:
                k = int(np.argmin(np.where(finite, du, np.inf)))
                raise ScreeningError(f"{name}: an insertion at {np.round(centres[k], 2).tolist()} Å has dU = "
                                     f"{du[k]:.2f} eV, below -{settings.max_binding_ev} eV: the model is outside its "
                                     "data there (atoms too close for its training set?)")
            u = np.where(finite, du, 0.0)
            w = np.where(finite, np.exp(-beta * u), 0.0) * fraction
            counts.append(n)
            weights.append(w.sum())
            weighted.append((w * u).sum())
            histogram += np.histogram(np.clip(du[finite], HISTOGRAM_EDGES[0], HISTOGRAM_EDGES[-1] - 1e-9),
                                      HISTOGRAM_EDGES)[0]
            lowest_e = np.concatenate([lowest_e, du[finite]])
            lowest_p = np.concatenate([lowest_p, positions[finite]])
            order = np.argsort(lowest_e)[: settings.keep_lowest]
            lowest_e, lowest_p = lowest_e[order], lowest_p[order]
            mean_w, error_w, _, _ = _block_statistics(np.array(counts), np.array(weights), np.array(weighted),
                                                      settings.n_blocks, rt)
            advance(n)
            if sum(counts) >= settings.min_trials and mean_w > 0 and error_w / mean_w < settings.rtol:
                converged = True
                break
    if not np.any(np.array(weights) > 0):
        raise ScreeningError(f"{name}: none of {sum(counts)} insertions of {guest.get_chemical_formula()} found room "
                             f"({n_overlap} overlapped the framework, {n_blocked} fell in blocked pockets): no "
                             "accessible pore for this guest")
    mean_w, error_w, enthalpy, error_h = _block_statistics(np.array(counts), np.array(weights), np.array(weighted),
                                                           settings.n_blocks, rt)
    to_henry = 1.0 / (gas_constant * settings.temperature * framework_density(framework))
    return WidomResult(settings.temperature, int(sum(counts)), n_overlap, n_blocked, mean_w * to_henry,
                       error_w * to_henry, enthalpy * EV_TO_KJ_MOL, error_h * EV_TO_KJ_MOL, converged,
                       time.perf_counter() - start, histogram.tolist(), lowest_e, lowest_p, fraction,
                       pores.pocket_fraction if pores is not None else 0.0)


class LennardJonesInsertion:
    """dU of a rigid guest in a rigid framework from truncated and shifted Lennard-Jones pairs (Lorentz-Berthelot
    mixing of per-element ``epsilon`` (eV) and ``sigma`` (Å)): a pair potential whose Henry coefficient a
    quadrature can give exactly, to check the Widom statistics."""

    def __init__(self, framework: Atoms, guest: Atoms, epsilon: Mapping[str, float], sigma: Mapping[str, float],
                 cutoff: float = 6.0, vdw_factor: float = VDW_CONTACT, name: str = "framework") -> None:
        self.cutoff = cutoff
        self.images = FrameworkImages(framework, guest, cutoff + guest_extent(guest), vdw_factor, name)
        fw, gs = framework.get_chemical_symbols(), guest.get_chemical_symbols()
        eps = np.sqrt(np.outer([epsilon[s] for s in gs], [epsilon[s] for s in fw]))
        sig = 0.5 * np.add.outer([sigma[s] for s in gs], [sigma[s] for s in fw])
        self.eps, self.sig = eps, sig  # (g, N)

    def pair(self, r: np.ndarray, eps: np.ndarray, sig: np.ndarray) -> np.ndarray:
        """Truncated and shifted LJ energies (eV) at distances ``r`` (Å)."""
        lj = lambda x: 4.0 * eps * ((sig / x) ** 12 - (sig / x) ** 6)  # noqa: E731
        return np.where(r < self.cutoff, lj(r) - lj(self.cutoff), 0.0)

    def energy_change(self, positions: np.ndarray) -> InsertionBatch:
        """dU (eV) of guest atoms at ``positions`` (B, g, 3)."""
        positions = self.images.wrap(positions)
        dist, idx, overlap = self.images.near(positions, self.cutoff)
        owner = self.images.owner[np.maximum(idx, 0)]
        atom = np.broadcast_to(np.arange(positions.shape[1])[None, :, None], idx.shape)
        pair = self.pair(np.where(idx >= 0, dist, self.cutoff), self.eps[atom, owner], self.sig[atom, owner])
        energy = np.where(overlap, np.inf, pair.sum(axis=(1, 2)))
        return InsertionBatch(energy, overlap)
