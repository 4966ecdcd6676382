"""The short-range repulsive prior: exact derivatives, zero on the training data, a wall below it, kept by the native
format, subtracted by the closed-form fit, and seen by the local insertion update."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk
from ase.calculators.fd import calculate_numerical_forces as numeric_forces
from ase.calculators.fd import calculate_numerical_stress as numeric_stress
from ase.calculators.singlepoint import SinglePointCalculator

from sus2_model import Sus2Calculator, load_model
from sus2_model.io.native import model_from_record, model_hash, model_record
from sus2_model.predict import predict
from sus2_model.demo import emt_dataset
from sus2_model.io import write_structures
from sus2_model.neighbors import build_batch
from sus2_model.repulsion import PHI_COEFFS, PairRepulsion, repulsion_onsets
from sus2_model.train.config import load_config
from sus2_model.train.linear import fit_linear
from sus2_model.train.trainer import train

from .conftest import random_model


def _onsets(value: float) -> np.ndarray:
    return np.full((2, 2), value)


def test_zbl_is_screened_coulomb_and_its_derivative_is_exact():
    prior = PairRepulsion.for_species(["Cu", "O"], _onsets(2.0))
    ti, tj = torch.tensor([0, 0, 1]), torch.tensor([1, 0, 1])
    assert sum(PHI_COEFFS) == pytest.approx(1.0, abs=1e-5)  # phi(0) = 1: bare Coulomb at r -> 0
    tiny = torch.full((3,), 1e-4, dtype=torch.float64)
    energy, _ = prior.pair_energy(tiny, ti, tj)
    coulomb = 14.399645 * torch.tensor([29.0 * 8, 29.0 * 29, 8.0 * 8]) / 1e-4
    np.testing.assert_allclose(energy / coulomb, 1.0, atol=1e-2)
    r = torch.linspace(0.5, 2.2, 60, dtype=torch.float64)
    for a, b in zip(ti, tj):
        e, de = prior.pair_energy(r, a.expand(60), b.expand(60))
        h = 1e-6
        numeric = (prior.pair_energy(r + h, a.expand(60), b.expand(60))[0]
                   - prior.pair_energy(r - h, a.expand(60), b.expand(60))[0]) / (2 * h)
        np.testing.assert_allclose(de, numeric, rtol=1e-6, atol=1e-6)
        assert (e[r >= 2.0] == 0).all() and (e[r < 2.0] > 0).all()
        assert (de[r < 2.0 - 1e-9] < 0).all()  # repulsive all the way in


def test_model_with_prior_has_exact_forces_and_stress(triclinic_cell):
    model = random_model(max_rank=2)
    model.set_repulsion(_onsets(2.6))  # the rattled cell has pairs inside the switch and below it
    atoms = triclinic_cell
    atoms.calc = Sus2Calculator(model)
    forces, stress = atoms.get_forces(), atoms.get_stress()
    np.testing.assert_allclose(forces, numeric_forces(atoms, eps=1e-5), atol=1e-6 * max(1.0, np.abs(forces).max()))
    np.testing.assert_allclose(stress, numeric_stress(atoms, eps=1e-6), atol=1e-6 * max(1.0, np.abs(stress).max()))
    bare = random_model(max_rank=2)
    atoms.calc = Sus2Calculator(bare)
    assert atoms.get_potential_energy() < Sus2Calculator(model).get_potential_energy(atoms) - 1e-3


def test_onsets_follow_the_data_and_never_rise():
    onsets = repulsion_onsets(["Cu", "O"], {(0, 0): 2.3, (1, 0): 1.7})
    np.testing.assert_allclose(onsets, [[2.3, 1.7], [1.7, 1.32]])  # O-O unseen: the sum of covalent radii
    lowered = repulsion_onsets(["Cu", "O"], {(0, 0): 2.5, (0, 1): 1.6}, previous=onsets)
    np.testing.assert_allclose(lowered, [[2.3, 1.6], [1.6, 1.32]])


def test_trained_model_is_unchanged_on_its_data_and_repels_below_it(tmp_path):
    """Training sets the onsets at the data's shortest pairs: the prior adds nothing to any training structure, and
    a dimer pushed below the data's range gets a steep wall (the moment part alone stays bounded there)."""
    path = tmp_path / "emt.extxyz"
    data = emt_dataset(16, seed=5)
    write_structures(path, data)
    config = load_config(None, train=[str(path)], valid_fraction=0.0, epochs=3, max_rank=2, n_radial=2,
                         max_level=12, radial_basis_size=6, cutoff=4.5)
    train(config, tmp_path / "out", progress=False)
    model = load_model(tmp_path / "out" / "model.pt")
    assert model.repulsion is not None
    bare = load_model(tmp_path / "out" / "model.pt")
    bare.set_repulsion(None)
    with_prior = [p.energy for p in predict(model, data)]
    without = [p.energy for p in predict(bare, data)]
    assert with_prior == without
    onset = float(model.repulsion.onsets.min())
    dimers = [Atoms("Cu2", positions=[[0, 0, 0], [0, 0, r]]) for r in np.linspace(onset - 0.8, onset, 9)]
    walled = np.array([p.energy for p in predict(model, dimers)])
    assert (np.diff(walled) < 0).all()  # monotonic: closer is always costlier
    assert walled[0] - walled[-1] > 5.0


def test_native_round_trip_keeps_the_prior_and_the_hash_sees_it(triclinic_cell):
    model = random_model(max_rank=2)
    plain_hash = model_hash(model)
    model.set_repulsion(_onsets(2.6))
    copy = model_from_record(model_record(model))
    assert torch.equal(copy.repulsion.onsets, model.repulsion.onsets)
    assert model_hash(copy) == model_hash(model) != plain_hash
    a = Sus2Calculator(model).get_potential_energy(triclinic_cell)
    assert Sus2Calculator(copy).get_potential_energy(triclinic_cell) == pytest.approx(a, abs=1e-12)


def test_linear_fit_subtracts_the_prior():
    """Labels made by a model whose prior is active on them: the closed-form fit of a perturbed copy recovers the
    labels (it fits the labels less the prior, which has no linear parameters)."""
    teacher = random_model(max_rank=2)
    teacher.set_repulsion(_onsets(2.45))
    images = []
    for k in range(12):
        atoms = bulk("Cu", "fcc", a=3.5, cubic=True)
        atoms.symbols[k % 4] = "Ni"
        atoms.rattle(0.12, seed=k)
        p = predict(teacher, [atoms])[0]
        atoms.calc = SinglePointCalculator(atoms, energy=p.energy, forces=p.forces, stress=p.stress)
        images.append(atoms)
    batch = build_batch(images, teacher.r_cut, teacher.species_index)
    assert float(teacher.repulsion(batch, forces=False, stress=False)["energies"].sum()) > 0.01  # active on the data
    student = model_from_record(model_record(teacher))
    with torch.no_grad():
        student.moment_coeffs.add_(torch.randn_like(student.moment_coeffs) * 0.3)
        student.shift.add_(0.5)
    fit_linear(student, images, stress_weight=0.01, ridge=1e-14)
    got = np.array([p.energy for p in predict(student, images)])
    want = np.array([a.get_potential_energy() for a in images])
    np.testing.assert_allclose(got, want, atol=1e-6)
