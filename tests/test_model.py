"""Physics of the potential: forces and stress are energy derivatives; the energy has the right invariances."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase.build import bulk
from ase.calculators.fd import calculate_numerical_forces as numeric_forces
from ase.calculators.fd import calculate_numerical_stress as numeric_stress
from scipy.spatial.transform import Rotation

from sus2_model import Sus2Calculator
from sus2_model.demo import fitted_emt_model
from sus2_model.io.native import model_from_record, model_record
from sus2_model.neighbors import build_batch


def test_forces_equal_finite_differences(model, triclinic_cell):
    atoms = triclinic_cell
    atoms.calc = Sus2Calculator(model)
    analytic = atoms.get_forces()
    numeric = numeric_forces(atoms, eps=1e-5)
    assert np.abs(analytic).max() > 0.1  # a non-trivial test
    np.testing.assert_allclose(analytic, numeric, atol=1e-6 * max(1.0, np.abs(analytic).max()))


def test_stress_equals_strain_derivative(model, triclinic_cell):
    atoms = triclinic_cell
    atoms.calc = Sus2Calculator(model)
    analytic = atoms.get_stress()
    numeric = numeric_stress(atoms, eps=1e-6)
    assert np.abs(analytic).max() > 1e-3
    np.testing.assert_allclose(analytic, numeric, atol=1e-6 * max(1.0, np.abs(analytic).max()))


def test_task_surface_derivatives_and_exact_mtp_fold(triclinic_cell):
    """A task with every theta_T part non-zero (shifted bond centres r0 too): forces and stress are still exact
    derivatives, and the task folds into an .mtp record with the same energy."""
    from .conftest import random_model

    from sus2_model.model import Sus2Potential

    model = random_model()
    model.add_task("T")
    rng = np.random.default_rng(3)
    model.set_moment_scale(torch.as_tensor(rng.uniform(0.5, 2.0, len(model.moment_scale))))  # as training sets them
    with torch.no_grad():
        for p in model.task_parameters():
            p.copy_(torch.as_tensor(rng.normal(0, 0.05, p.shape)))
    atoms = triclinic_cell
    atoms.calc = Sus2Calculator(model, task="T")
    forces, stress = atoms.get_forces(), atoms.get_stress()
    np.testing.assert_allclose(forces, numeric_forces(atoms, eps=1e-5), atol=1e-6 * max(1.0, np.abs(forces).max()))
    np.testing.assert_allclose(stress, numeric_stress(atoms, eps=1e-6), atol=1e-6 * max(1.0, np.abs(stress).max()))
    energy = atoms.get_potential_energy()
    atoms.calc = Sus2Calculator(Sus2Potential(model.to_mtp("T"), model.species))
    assert atoms.get_potential_energy() == pytest.approx(energy, abs=1e-9)
    atoms.calc = Sus2Calculator(model)
    assert abs(atoms.get_potential_energy() - energy) > 1e-3  # the task surface differs from the shared one
    shared = atoms.get_potential_energy()
    record = model_record(model)  # native files and checkpoints: same surfaces, same coordinates, a copy
    saved = [p.detach().clone() for p in model.parameters()]
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1)  # training goes on after the best epoch's record is taken
    restored = model_from_record(record)
    for task, expected in ((None, shared), ("T", energy)):
        atoms.calc = Sus2Calculator(restored, task=task)
        assert atoms.get_potential_energy() == pytest.approx(expected, abs=1e-9)
    for mine, theirs in zip(saved, restored.parameters()):
        torch.testing.assert_close(mine, theirs.detach(), rtol=1e-12, atol=1e-12)


def test_isolated_molecule_forces(model, molecule):
    molecule.calc = Sus2Calculator(model)
    np.testing.assert_allclose(molecule.get_forces(), numeric_forces(molecule, eps=1e-5), atol=1e-6)
    np.testing.assert_allclose(molecule.get_forces().sum(axis=0), 0.0, atol=1e-10)


def test_energy_invariances(model, triclinic_cell):
    atoms = triclinic_cell
    calc = Sus2Calculator(model)
    atoms.calc = calc
    energy, forces = atoms.get_potential_energy(), atoms.get_forces()

    rotation = Rotation.random(random_state=7).as_matrix()
    rotated = atoms.copy()
    rotated.set_cell(atoms.cell.array @ rotation.T, scale_atoms=True)
    rotated.calc = calc
    assert rotated.get_potential_energy() == pytest.approx(energy, abs=1e-9)
    np.testing.assert_allclose(rotated.get_forces(), forces @ rotation.T, atol=1e-9)

    moved = atoms.copy()
    moved.translate([0.7, -1.3, 2.1])
    moved.calc = calc
    assert moved.get_potential_energy() == pytest.approx(energy, abs=1e-9)

    order = np.random.default_rng(0).permutation(len(atoms))
    permuted = atoms[order]
    permuted.calc = calc
    assert permuted.get_potential_energy() == pytest.approx(energy, abs=1e-9)
    np.testing.assert_allclose(permuted.get_forces(), forces[order], atol=1e-9)

    imaged = atoms.copy()  # atoms moved by lattice vectors: the same periodic structure
    imaged.positions[0] += atoms.cell[0] - 2 * atoms.cell[2]
    imaged.calc = calc
    assert imaged.get_potential_energy() == pytest.approx(energy, abs=1e-9)

    supercell = atoms * (2, 1, 3)
    supercell.calc = calc
    assert supercell.get_potential_energy() == pytest.approx(6 * energy, abs=1e-8)


def test_float32_agrees_with_float64(model, triclinic_cell):
    atoms = triclinic_cell
    atoms.calc = Sus2Calculator(model)
    e64, f64 = atoms.get_potential_energy(), atoms.get_forces()
    atoms.calc = Sus2Calculator(model, dtype="float32")
    assert atoms.get_potential_energy() == pytest.approx(e64, rel=1e-5, abs=1e-4)
    np.testing.assert_allclose(atoms.get_forces(), f64, atol=1e-4 * max(1.0, np.abs(f64).max()))


def test_batched_predict_equals_single_calls(model, triclinic_cell, molecule):
    images = [triclinic_cell, molecule, triclinic_cell * (1, 2, 1)]
    calc = Sus2Calculator(model)
    batched = calc.predict(images, batch_size=2)
    for atoms, pred in zip(images, batched):
        atoms.calc = calc
        assert pred.energy == pytest.approx(atoms.get_potential_energy(), abs=1e-10)
        np.testing.assert_allclose(pred.forces, atoms.get_forces(), atol=1e-10)
        if atoms.pbc.all():
            np.testing.assert_allclose(pred.stress, atoms.get_stress(), atol=1e-10)
        else:
            assert pred.stress is None
    assert batched[2].energy == pytest.approx(2 * batched[0].energy, abs=1e-9)


def test_training_graph_reaches_parameters(model, triclinic_cell):
    """Forces built with create_graph=True are differentiable in every parameter (needed to train on forces)."""
    batch = build_batch([triclinic_cell], model.r_cut, model.species_index)
    out = model(batch, forces=True, stress=True, create_graph=True)
    loss = out["forces"].square().sum() + out["stress"].square().sum()
    loss.backward()
    for name in ("radial_coeffs", "alpha", "r0", "moment_coeffs", "species_weights"):
        grad = getattr(model, name).grad
        assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0, name


def test_ase_optimizer_filter_and_md():
    from ase.filters import FrechetCellFilter
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution
    from ase.md.verlet import VelocityVerlet
    from ase.optimize import BFGS
    from ase import units

    model = fitted_emt_model(n_train=24)
    atoms = bulk("Cu", "fcc", a=3.7, cubic=True)
    atoms.symbols[0] = "Ni"
    atoms.rattle(0.05, seed=1)
    atoms.calc = Sus2Calculator(model)
    e0 = atoms.get_potential_energy()
    BFGS(FrechetCellFilter(atoms), logfile=None).run(fmax=0.05, steps=60)
    assert atoms.get_potential_energy() < e0

    md_atoms = atoms * (2, 2, 2)
    md_atoms.calc = Sus2Calculator(model)
    MaxwellBoltzmannDistribution(md_atoms, temperature_K=300, rng=np.random.default_rng(0))
    start = md_atoms.get_total_energy()
    VelocityVerlet(md_atoms, timestep=1.0 * units.fs).run(20)
    assert abs(md_atoms.get_total_energy() - start) < 5e-3 * len(md_atoms)
