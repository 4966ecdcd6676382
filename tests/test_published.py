"""The authors' published models: exact agreement with an independent evaluator; every model loads and runs."""

from __future__ import annotations


import numpy as np
import pytest
from ase.build import bulk

from sus2_model import Sus2Calculator, error_metrics, load_model, predict
from sus2_model.io import read_cfg


def test_alloy_matches_independent_reference(shared_data):
    root = shared_data / "sus2_published" / "Alloy"
    model = load_model(root / "alloy.mtp")  # species.json beside it
    images = read_cfg(root / "test_first200.cfg", model.species)
    predictions = predict(model, images, batch_size=64)
    reference = np.loadtxt(root / "reference_energies_first200.tsv", skiprows=1)
    energies = np.array([p.energy for p in predictions])
    np.testing.assert_allclose(energies, reference[:, 3], atol=1e-6)
    metrics = error_metrics(images, predictions)
    assert metrics["energy_mae_mev_atom"] == pytest.approx(19.34, abs=0.01)
    assert metrics["energy_rmse_mev_atom"] == pytest.approx(27.39, abs=0.01)
    assert metrics["force_mae_ev_a"] == pytest.approx(0.123, abs=0.001)
    assert metrics["force_rmse_ev_a"] == pytest.approx(0.184, abs=0.001)


def test_every_published_model_loads_and_evaluates(shared_data):
    paths = sorted((shared_data / "sus2_published").glob("*/*.mtp"))
    assert len(paths) >= 12
    for path in paths:
        model = load_model(path)
        species = model.species
        atoms = bulk("Cu", "fcc", a=4.2, cubic=True)
        atoms.set_chemical_symbols([species[i % len(species)] for i in range(len(atoms))])
        atoms.rattle(0.02, seed=0)
        atoms.calc = Sus2Calculator(model)
        assert np.isfinite(atoms.get_potential_energy()), path
        assert np.isfinite(atoms.get_forces()).all() and np.isfinite(atoms.get_stress()).all(), path
        assert abs(atoms.get_forces().sum(axis=0)).max() < 1e-8, path
