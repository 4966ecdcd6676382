"""D3(BJ) dispersion for gas adsorption: the ``dftd3`` library's ASE calculator for relaxations, and the dispersion
energy change of a rigid guest insertion by local update, for Widom.

The two-body D3(BJ) energy (Grimme et al. 2010/2011; no three-body term, as the ``dftd3`` calculator by method name)
is a sum over pairs,

    E = -sum_{i<j} C6_ij(CN_i, CN_j) h_ij(r_ij),   h_ij(r) = s6 / (r^6 + R0^6) + s8 q_ij / (r^8 + R0^8),

with C6_ij = w_i . C6ref(Z_i, Z_j) . w_j, the weights w of each atom's reference systems a function of its
coordination number CN, q_ij = 3 r4r2_i r4r2_j and R0 = a1 sqrt(q_ij) + a2 (independent of CN).  A guest changes
the CN of the framework atoms within the CN cutoff of it, so with the framework's field F_j = sum_l C6ref(Z_j, Z_l)
w_l h_jl(r_jl) computed once,

    dE = -[ sum_{guest a, framework j} w'_a . C6ref . w'_j h_aj + (guest pairs, CN' minus isolated)
            + sum_j dw_j . F_j + sum_{j<l near} dw_j . C6ref . dw_l h_jl ],

where dw = w' - w.  A framework atom's weights are recomputed where its CN moved by more than :data:`CN_LINEAR`
(within some 10 Å of the guest) and taken to first order in dCN farther out (where dCN is 1e-7 to 1e-5); the last
sum (second order in dw) runs over the atoms whose CN moved by more than :data:`CN_SECOND_ORDER`.  Against full-cell
``dftd3`` calls the result agrees to 2e-8 eV (measured on Mg-MOF-74 and CALF-20, tests/test_mof.py).  Each framework
image near the guest is its own atom (infinite dilution: the guest meets no image of itself).  Reference C6, CN,
radii and damping parameters come from ``tad-dftd3``; the full-cell ``dftd3`` library is the check.
"""

from __future__ import annotations

import numpy as np
import torch
from ase import Atoms
from ase.calculators.calculator import Calculator
from ase.units import Bohr, Hartree
from scipy.spatial import cKDTree

from sus2_model.insertion import VDW_CONTACT, FrameworkImages, InsertionBatch, guest_extent, guest_shape

from ..errors import ScreeningError
from .widom import InsertionEnergy

DISPERSION_METHOD = "PBE"  # D3(BJ) parameters of the functional the published universal model was fitted to
PAIR_CUTOFF = 60.0 * Bohr  # Å: the dftd3 library's two-body cutoff
CN_CUTOFF = 40.0 * Bohr  # Å: the dftd3 library's coordination-number cutoff
TRIALS_PER_CHUNK = 64
CN_LINEAR = 1e-5  # a framework atom's weights are recomputed where its CN moved by more than this, else linearised
CN_SECOND_ORDER = 1e-4  # second-order terms in dw are summed over framework atoms whose CN moved by more than this


def dispersion_calculator(method: str = DISPERSION_METHOD) -> Calculator:
    """D3(BJ) dispersion (two-body) for ``method``'s damping parameters, from the ``dftd3`` library (simple-dftd3)."""
    try:
        from dftd3.ase import DFTD3
    except ImportError as exc:
        raise ScreeningError(f"dispersion needs the dftd3 package (pip install dftd3): {exc}") from None
    return DFTD3(method=method, damping="d3bj")


def with_dispersion(calculator: Calculator, method: str = DISPERSION_METHOD) -> Calculator:
    """The model plus D3(BJ) dispersion, one ASE calculator."""
    from ase.calculators.mixing import SumCalculator

    return SumCalculator([calculator, dispersion_calculator(method)])


class _D3Data:
    """D3 reference data from tad-dftd3 (atomic units, float64) and ``method``'s rational damping parameters."""

    def __init__(self, method: str) -> None:
        try:
            import tad_dftd3
            from tad_dftd3.param.functional import get_functional_params
            from tad_mctc.data.radii import COV_D3
        except ImportError as exc:
            raise ScreeningError(f"Widom with dispersion needs the tad-dftd3 package: {exc}") from None
        dd = {"dtype": torch.float64}
        self.reference = tad_dftd3.reference.Reference(**dd)
        self.weights = tad_dftd3.model.weight_references
        self.count = tad_dftd3.ncoord.exp_count
        self.rcov = COV_D3(**dd).numpy()
        self.r4r2 = tad_dftd3.data.R4R2(**dd).numpy()
        try:
            param = get_functional_params(method.lower(), damping="bj", **dd)
        except (KeyError, ValueError) as exc:
            raise ScreeningError(f"no D3(BJ) parameters for {method!r}: {exc}") from None
        self.s6, self.s8, self.a1, self.a2 = (float(param.get(k, 1.0)) for k in ("s6", "s8", "a1", "a2"))

    def h(self, r: np.ndarray, zi: np.ndarray, zj: np.ndarray) -> np.ndarray:
        """The damped pair kernel h_ij(r) (r in bohr, Hartree per C6 unit)."""
        qq = 3.0 * self.r4r2[zi] * self.r4r2[zj]
        r0 = self.a1 * np.sqrt(qq) + self.a2
        return self.s6 / (r**6 + r0**6) + self.s8 * qq / (r**8 + r0**8)

    def counting(self, r: np.ndarray, zi: np.ndarray, zj: np.ndarray) -> np.ndarray:
        """D3 coordination-number contributions of pairs at ``r`` (bohr)."""
        r0 = torch.as_tensor(self.rcov[zi] + self.rcov[zj])
        return self.count(torch.as_tensor(r), r0).numpy()

    def weights_of(self, z: np.ndarray, cn: np.ndarray) -> np.ndarray:
        """Reference weights (n, n_ref) of atoms with numbers ``z`` at coordination numbers ``cn``."""
        return self.weights(torch.as_tensor(z), torch.as_tensor(cn), self.reference).numpy()

    def weights_slope(self, z: np.ndarray, cn: np.ndarray) -> np.ndarray:
        """d(weights)/dCN (n, n_ref) at ``cn``, by automatic differentiation (each atom's weights depend on its own
        CN only)."""
        cn_ = torch.as_tensor(cn).clone().requires_grad_(True)
        w = self.weights(torch.as_tensor(z), cn_, self.reference)
        return np.stack([torch.autograd.grad(w[:, a].sum(), cn_, retain_graph=True)[0].numpy()
                         for a in range(w.shape[1])], axis=1)

    def contract(self, zi: np.ndarray, zj: np.ndarray, vec: np.ndarray) -> np.ndarray:
        """C6ref(zi_p, zj_p) . vec_p for every p (vec and result (p, n_ref)), one matrix product per element pair."""
        out = np.zeros_like(vec)
        c6 = self.reference.c6.numpy()
        pair = zi.astype(np.int64) * 1000 + zj
        for key in np.unique(pair):
            sel = pair == key
            out[sel] = vec[sel] @ c6[key // 1000, key % 1000].T
        return out


def _pairs(tree_a: cKDTree, tree_b: cKDTree, cutoff: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every pair of points of ``tree_a`` and ``tree_b`` closer than ``cutoff``: indices and distances."""
    found = tree_a.sparse_distance_matrix(tree_b, cutoff, output_type="ndarray")
    return found["i"].astype(np.int64), found["j"].astype(np.int64), found["v"]


class LocalDispersion:
    """D3(BJ) energy change (eV) of inserting the rigid ``guest`` into the periodic ``framework``, by local update
    (see the module docstring); cutoffs in Å default to the ``dftd3`` library's.  Overlaps follow
    :func:`sus2_model.insertion.contact_distances` (``vdw_factor``), as for the model."""

    def __init__(self, framework: Atoms, guest: Atoms, method: str = DISPERSION_METHOD,
                 pair_cutoff: float = PAIR_CUTOFF, cn_cutoff: float = CN_CUTOFF, vdw_factor: float = VDW_CONTACT,
                 name: str = "framework") -> None:
        self.d3 = _D3Data(method)
        self.pair_cutoff, self.cn_cutoff = pair_cutoff / Bohr, cn_cutoff / Bohr  # bohr from here on
        self.images = FrameworkImages(framework, guest, max(pair_cutoff, cn_cutoff) + guest_extent(guest) / 2,
                                      vdw_factor, name)
        self.z = framework.numbers
        self.z_guest = guest.numbers
        self.image_z = self.z[self.images.owner]
        self.image_bohr = self.images.positions / Bohr
        self.image_tree = cKDTree(self.image_bohr)
        self._framework_field(framework)
        g = guest_shape(guest) / Bohr
        self.guest_pairs = np.array(np.triu_indices(len(g), 1))
        self.guest_r = np.linalg.norm(g[self.guest_pairs[0]] - g[self.guest_pairs[1]], axis=-1)
        self.guest_cn = self._guest_internal_cn(self.guest_r)
        self.isolated = self._guest_internal(self.d3.weights_of(self.z_guest, self.guest_cn)[None])[0]

    def _framework_field(self, framework: Atoms) -> None:
        """Coordination numbers, weights w (N, n_ref), fields F (N, n_ref) of the empty framework, and each
        framework atom's C6 vector toward each guest element, G (N, g, n_ref)."""
        d3 = self.d3
        own = framework.positions / Bohr
        j, l, r = _pairs(cKDTree(own), self.image_tree, self.pair_cutoff)
        keep = r > 1e-8  # not the atom itself
        j, l, r = j[keep], l[keep], r[keep]
        zj, zl = self.z[j], self.image_z[l]
        n = len(own)
        inside = r < self.cn_cutoff
        self.cn = np.bincount(j[inside], d3.counting(r[inside], zj[inside], zl[inside]), minlength=n)
        self.w = d3.weights_of(self.z, self.cn)
        term = d3.contract(zj, zl, self.w[self.images.owner[l]]) * d3.h(r, zj, zl)[:, None]
        self.field = np.stack([np.bincount(j, t, n) for t in term.T], axis=1)
        self.dw_dcn = d3.weights_slope(self.z, self.cn)
        self.toward_guest = np.stack([d3.contract(np.full(n, z), self.z, self.w) for z in self.z_guest], axis=1)
        self.toward_slope = np.stack([d3.contract(np.full(n, z), self.z, self.dw_dcn) for z in self.z_guest], axis=1)

    def _guest_internal_cn(self, r: np.ndarray) -> np.ndarray:
        """Coordination numbers of the guest's atoms from its own bonds."""
        i, j = self.guest_pairs
        count = self.d3.counting(r, self.z_guest[i], self.z_guest[j])
        return np.bincount(i, count, len(self.z_guest)) + np.bincount(j, count, len(self.z_guest))

    def _guest_internal(self, w: np.ndarray) -> np.ndarray:
        """Dispersion sum (Hartree, positive) of the guest's own pairs with weights ``w`` (B, g, n_ref)."""
        i, j = self.guest_pairs
        if not len(i):
            return np.zeros(len(w))
        b, p = len(w), len(i)
        zi, zj = np.tile(self.z_guest[i], b), np.tile(self.z_guest[j], b)
        c6 = np.einsum("pa,pa->p", w[:, i].reshape(b * p, -1), self.d3.contract(zi, zj, w[:, j].reshape(b * p, -1)))
        return (c6.reshape(b, p) * self.d3.h(self.guest_r, self.z_guest[i], self.z_guest[j])).sum(axis=1)

    def energy_change(self, positions: np.ndarray) -> InsertionBatch:
        """dE_D3 (eV) of guest atoms at ``positions`` (B, g, 3) (Cartesian, Å), +inf where they overlap."""
        positions = self.images.wrap(positions)
        _, _, overlap = self.images.near(positions, float(self.images.closest.max()))
        energy = np.full(len(positions), np.inf)
        keep = np.flatnonzero(~overlap)
        if len(keep):
            energy[keep] = self.evaluate(positions[keep])
        return InsertionBatch(energy, overlap)

    def evaluate(self, positions: np.ndarray) -> np.ndarray:
        """dE_D3 (eV) of trials whose guest atoms, wrapped into the cell, are at ``positions`` (B, g, 3) (Å), in
        chunks of :data:`TRIALS_PER_CHUNK` (each holds thousands of pairs per guest atom)."""
        return np.concatenate([self._evaluate(positions[k:k + TRIALS_PER_CHUNK])
                               for k in range(0, len(positions), TRIALS_PER_CHUNK)])

    def _evaluate(self, positions: np.ndarray) -> np.ndarray:
        d3 = self.d3
        b, g, _ = positions.shape
        guest = positions.reshape(-1, 3) / Bohr
        row, image, r = _pairs(cKDTree(guest), self.image_tree, self.pair_cutoff)
        trial, atom = row // g, row % g
        za, zj = self.z_guest[atom], self.image_z[image]
        owner = self.images.owner[image]
        inside = r < self.cn_cutoff
        count = d3.counting(r[inside], za[inside], zj[inside])
        # the guest's coordination numbers and weights in place
        cn_guest = np.tile(self.guest_cn, b) + np.bincount(row[inside], count, b * g)
        w_guest = d3.weights_of(np.tile(self.z_guest, b), cn_guest).reshape(b, g, -1)
        # framework images near each trial: their coordination numbers and weights move
        groups, inverse = np.unique(trial * len(self.image_z) + image, return_inverse=True)
        g_trial, g_image = groups // len(self.image_z), groups % len(self.image_z)
        g_owner = self.images.owner[g_image]
        d_cn = np.bincount(inverse[inside], count, len(groups))
        # weights to first order in dCN, exactly where dCN > CN_LINEAR (a few Å from the guest)
        dw = d_cn[:, None] * self.dw_dcn[g_owner]
        exact = np.flatnonzero(d_cn > CN_LINEAR)
        dw[exact] = d3.weights_of(self.z[g_owner[exact]], self.cn[g_owner[exact]] + d_cn[exact]) - self.w[
            g_owner[exact]]
        total = np.bincount(g_trial, np.einsum("pa,pa->p", dw, self.field[g_owner]), b)
        # guest-framework pairs with both sides' new weights
        toward = self.toward_guest[owner, atom]
        entry_dcn = d_cn[inverse]
        far = entry_dcn <= CN_LINEAR
        toward[far] += entry_dcn[far, None] * self.toward_slope[owner[far], atom[far]]
        near = ~far
        toward[near] += d3.contract(za[near], zj[near], dw[inverse[near]])
        c6 = np.einsum("pa,pa->p", w_guest[trial, atom], toward)
        total += np.bincount(trial, c6 * d3.h(r, za, zj), b)
        total += self._guest_internal(w_guest) - self.isolated
        total += self._second_order(dw, d_cn, g_trial, g_image, b)
        return -total * Hartree

    def _second_order(self, dw: np.ndarray, d_cn: np.ndarray, g_trial: np.ndarray, g_image: np.ndarray, b: int
                      ) -> np.ndarray:
        """sum_{j<l} dw_j . C6ref . dw_l h_jl over the framework images of one trial whose CN moved by more than
        :data:`CN_SECOND_ORDER`."""
        big = np.flatnonzero(d_cn > CN_SECOND_ORDER)
        out = np.zeros(b)
        if len(big) < 2:
            return out
        tree = cKDTree(np.column_stack([self.image_bohr[g_image[big]], g_trial[big] * 1e6]))  # trials far apart
        i, j, r = _pairs(tree, tree, self.pair_cutoff)
        pair = i < j
        i, j, r = big[i[pair]], big[j[pair]], r[pair]
        zi, zj = self.image_z[g_image[i]], self.image_z[g_image[j]]
        c6 = np.einsum("pa,pa->p", dw[i], self.d3.contract(zi, zj, dw[j]))
        return np.bincount(g_trial[i], c6 * self.d3.h(r, zi, zj), b)


class DispersedInsertion:
    """dU of a trial insertion with the model plus D3(BJ): ``model`` (an insertion energy, e.g.
    :class:`sus2_model.insertion.LocalInsertion`) decides the overlaps; the dispersion change is added to every
    trial it evaluated."""

    def __init__(self, model: InsertionEnergy, dispersion: LocalDispersion) -> None:
        self.model, self.dispersion = model, dispersion

    def energy_change(self, positions: np.ndarray) -> InsertionBatch:
        """dU (eV) of guest atoms at ``positions`` (B, g, 3), +inf where they overlap the framework."""
        result = self.model.energy_change(positions)
        keep = np.flatnonzero(np.isfinite(result.energy))
        if len(keep):
            result.energy[keep] += self.dispersion.evaluate(self.dispersion.images.wrap(positions[keep]))
        return result
