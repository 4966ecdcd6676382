"""Closed-form ridge fit of the linear parameters (per-species shifts and moment coefficients), like ``--do-lin``.

With the radial part and the species multipliers c_s fixed, every label is linear in (shift, m):

    E  = sum_i shift_{s_i} + c_{s_i} (1 + sum_k m_k B_k(i)),      F = sum_k m_k F^{(k)},   sigma = sum_k m_k sigma^{(k)}

where F^{(k)} and sigma^{(k)} are the forces and stress of the model with m = e_k; the labels are fitted less the
model's repulsive prior (:mod:`sus2_model.repulsion`), which has no linear parameters.  Rows are weighted as the
training loss weighs them and the least-squares problem is solved with a ridge term.  Energy rows use every
structure; force and stress rows a random subset of at most ``max_force_atoms`` atoms.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from ase import Atoms
from ase.stress import full_3x3_to_voigt_6_stress

from ..model import Sus2Potential
from ..neighbors import build_batch
from .data import structure_subset

MAX_FORCE_ATOMS = 25000  # force rows of a fit: the atoms of a random subset of the structures


def _unit_responses(model: Sus2Potential, batch, n_scalar: int, stress: bool, block: int = 256, chunk: int = 128
                    ) -> tuple[np.ndarray, np.ndarray | None]:
    """Forces (3N, n_scalar) and stresses (S, 6, n_scalar) of the model with m = e_k and no shifts, for every k at
    once: per block of atoms, the Jacobian of the descriptors in the basic moments, and per chunk of those, its
    product with the basic moments' gradients in each neighbour vector."""
    moments, n = model.moments, len(batch.types)
    c = model.species_coeffs.detach()[batch.types].reshape(-1, 1, 1) * model.moment_scale.reshape(1, -1, 1)
    forces = c.new_zeros(n, 3, n_scalar)
    virial = c.new_zeros(batch.n_structures, 3, 3, n_scalar)
    for b_start in range(0, n, block):
        chunks = [slice(s, min(s + chunk, n)) for s in range(b_start, min(b_start + block, n), chunk)]
        with torch.no_grad():
            edges = [model.edge_features(batch, rows) for rows in chunks]
            basic = torch.cat([moments.basic_moments(e["radial"], e["powers"]) for e in edges])
        jac = moments.jacobian(basic) * c[b_start: b_start + len(basic)]  # (n, n_scalar, n_basic)
        with torch.no_grad():
            for rows, e in zip(chunks, edges):
                d_basic = moments.basic_gradients(e["radial"], e["d_radial"], e["powers"], e["unit"], e["dist"])
                grad = torch.einsum("nkbx,nsb->nkxs", d_basic, jac[rows.start - b_start: rows.stop - b_start])
                forces.index_add_(0, torch.arange(rows.start, rows.stop), grad.sum(1))  # dE_k/d(neighbour vector)
                forces.index_add_(0, batch.nbr_j[rows].reshape(-1), -grad.flatten(0, 1))
                if stress:
                    per_atom = torch.einsum("nka,nkbs->nabs", e["vectors"], grad)
                    virial.index_add_(0, batch.structure_of_atom[rows], per_atom)
    f_k = forces.reshape(-1, n_scalar).numpy()
    if not stress:
        return f_k, None
    s_k = batch.stress(virial)
    return f_k, s_k.reshape(len(s_k), 9, n_scalar)[:, [0, 4, 8, 5, 2, 1]].numpy()


def _prior(model: Sus2Potential, batch, key: str) -> np.ndarray | float:
    """The repulsive prior's ``energy`` (S,), ``forces`` (3N,) or ``stress`` (S, 3, 3) on ``batch`` (0 without one)."""
    if model.repulsion is None:
        return 0.0
    with torch.no_grad():
        out = model.repulsion(batch, forces=key == "forces", stress=key == "stress")
    if key == "energy":
        return np.bincount(batch.structure_of_atom.numpy(), out["energies"].numpy(), batch.n_structures)
    return out[key].numpy().reshape(-1) if key == "forces" else out[key].numpy()


def fit_linear(model: Sus2Potential, images: Sequence[Atoms], energy_weight: float = 1.0, force_weight: float = 0.02,
               stress_weight: float = 0.0, ridge: float = 1e-8, max_force_atoms: int = MAX_FORCE_ATOMS, seed: int = 0
               ) -> dict[str, float]:
    """Refit ``model.shift`` and ``model.moment_coeffs`` in place on labelled structures; returns training RMSEs.

    The fit runs on the CPU in float64 whatever the model's device and dtype, which it leaves as they were.

    The weights mean what they mean in the training loss (:func:`loss_sums`): mean squared error of the per-atom
    energy, of the force components and of the virial per atom, each averaged with the structures' ``weight``, so
    the refit minimises the objective that training minimises (over the force subset)."""
    images = list(images)
    batch = build_batch(images, model.r_cut, model.species_index, model.min_distance)
    weight = np.array([a.info.get("weight", 1.0) for a in images], dtype=float)
    subset = structure_subset(images, max_force_atoms, seed)
    sub_w = np.array([a.info.get("weight", 1.0) for a in subset], dtype=float)
    force_batch = batch if subset is images else build_batch(subset, model.r_cut, model.species_index,
                                                             model.min_distance)
    device, dtype = model.shift.device, model.shift.dtype
    model = model.to(device="cpu", dtype=torch.float64)
    n_species, n_scalar = model.species_count, len(model.moment_coeffs)
    with torch.no_grad():
        b = (model.descriptors(batch) * model.moment_scale).numpy()  # the model's scaled descriptors
    types = batch.types.numpy()
    owner = batch.structure_of_atom.numpy()
    c = model.species_coeffs.detach().numpy()[types]
    n_atoms = np.bincount(owner, minlength=len(images)).astype(float)

    a_e = np.zeros((len(images), n_species + n_scalar))
    np.add.at(a_e, (owner, types), 1.0)
    np.add.at(a_e[:, n_species:], owner, c[:, None] * b)
    y_e = np.array([a.get_potential_energy() for a in images]) - np.bincount(owner, c, len(images))
    y_e -= _prior(model, batch, "energy")
    row_e = np.sqrt(energy_weight * weight / weight.sum()) / n_atoms
    rows, rhs = [a_e * row_e[:, None]], [y_e * row_e]

    has_stress = stress_weight > 0 and all("stress" in (a.calc.results if a.calc else {}) for a in subset)
    if force_weight > 0 or has_stress:
        f_k, s_k = _unit_responses(model, force_batch, n_scalar, has_stress)
        if force_weight > 0:
            atom_w = np.repeat(sub_w, [len(a) for a in subset])
            row_f = np.repeat(np.sqrt(force_weight * atom_w / (3.0 * atom_w.sum())), 3)
            rows.append(np.hstack([np.zeros((len(f_k), n_species)), f_k]) * row_f[:, None])
            forces = np.concatenate([a.get_forces().ravel() for a in subset]) - _prior(model, force_batch, "forces")
            rhs.append(forces * row_f)
        if has_stress:  # virial per atom; the off-diagonal components stand for two entries each
            per_atom = np.array([a.get_volume() / len(a) for a in subset])
            row_s = np.sqrt(stress_weight * sub_w / (9.0 * sub_w.sum())) * per_atom
            row_s = row_s[:, None] * np.sqrt([1.0, 1.0, 1.0, 2.0, 2.0, 2.0])
            s_rows = (s_k * row_s[:, :, None]).reshape(-1, n_scalar)
            rows.append(np.hstack([np.zeros((len(s_rows), n_species)), s_rows]))
            prior = full_3x3_to_voigt_6_stress(_prior(model, force_batch, "stress"))
            rhs.append(((np.array([a.get_stress() for a in subset]) - prior) * row_s).ravel())
    a, y = np.vstack(rows), np.concatenate(rhs)
    scale = np.sqrt((a**2).sum(axis=0)) + 1e-30
    lhs = (a / scale).T @ (a / scale) + ridge * np.eye(a.shape[1])
    solution = np.linalg.solve(lhs, (a / scale).T @ y) / scale
    with torch.no_grad():
        model.shift.copy_(torch.from_numpy(solution[:n_species]))
        model.moment_coeffs.copy_(torch.from_numpy(solution[n_species:]))
    model.to(device=device, dtype=dtype)
    e_res = (a_e @ solution - y_e) / n_atoms
    return {"energy_rmse_mev_atom": float(np.sqrt(np.mean(e_res**2)) * 1000)}
