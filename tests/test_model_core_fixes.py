"""Defects fixed in the model core: min_distance after a reload, mixed-pbc neighbour statistics, atomic writes that
reach the disk, one evaluation path for predict and the calculator, and a content hash of a model."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from ase.build import bulk, fcc111

from sus2_model import Sus2Calculator, Sus2Potential, load_model, predict
from sus2_model.demo import emt_dataset
from sus2_model.io import write_cfg, write_mtp, write_structures
from sus2_model.io.native import save_native
from sus2_model.templates import untrained_mtp
from sus2_model.train.config import load_config
from sus2_model.train.data import nearest_neighbour_stats
from sus2_model.train.initialise import init_scaling_from_data
from sus2_model.train.trainer import Trainer, train

from .conftest import random_model

SMALL = {"max_rank": 2, "n_radial": 2, "max_level": 12, "radial_basis_size": 6, "cutoff": 4.5, "batch_size": 8}


# ---------------------------------------------------------------------- min_distance
def test_min_distance_is_the_same_after_save_and_reload(tmp_path):
    """Initialising the scaling from data moves ``min_dist``: the model in memory and its reloaded copies (native
    and .mtp) must then refuse the same close contacts."""
    images = emt_dataset(8, seed=3)
    model = Sus2Potential(untrained_mtp(2, 2, 2, 12, 6, min_dist=0.0, max_dist=4.5), ["Cu", "Ni"])
    init_scaling_from_data(model, images)
    assert model.hyper["min_dist"] > 1.0  # the data moved it: the test is not trivial
    save_native(model, tmp_path / "model.pt")
    write_mtp(model.to_mtp(), tmp_path / "model.mtp")
    native = load_model(tmp_path / "model.pt")
    text = load_model(tmp_path / "model.mtp", species=model.species)
    assert model.min_distance == native.min_distance == text.min_distance
    assert model.min_distance == max(0.5, 0.5 * model.hyper["min_dist"])


def test_trained_model_keeps_its_min_distance_on_disk(tmp_path):
    """The model a training run holds and the one it wrote refuse the same close contacts."""
    write_structures(tmp_path / "emt.extxyz", emt_dataset(12, seed=3))
    trainer = Trainer(load_config(None, train=[str(tmp_path / "emt.extxyz")], epochs=2, **SMALL), tmp_path / "run",
                      progress=False)
    trainer.run()
    assert trainer.model.min_distance > 0.5  # set from the data, not the floor
    assert load_model(tmp_path / "run" / "model.pt").min_distance == trainer.model.min_distance


# ---------------------------------------------------------------------- mixed pbc
def _slab():
    atoms = fcc111("Cu", (2, 2, 3), vacuum=None)
    atoms.symbols[[1, 6]] = "Ni"
    atoms.rattle(0.03, seed=1)
    atoms.center(vacuum=5.0, axis=2)  # 10 Å of vacuum between periodic images: more than the cutoff
    return atoms, [True, True, False]


def _wire():
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True) * (1, 1, 3)
    atoms.symbols[[0, 1]] = "Ni"
    atoms.rattle(0.03, seed=2)
    atoms.center(vacuum=5.0, axis=(0, 1))
    return atoms, [False, False, True]


@pytest.mark.parametrize("build", [_slab, _wire], ids=["slab", "wire"])
def test_nearest_neighbour_stats_honour_mixed_pbc(build):
    """A slab (or wire) keeps its periodic images in its periodic directions: its statistics are exactly those of
    its fully periodic twin whose vacuum is wider than the cutoff."""
    open_cell, pbc = build()
    open_cell.pbc = pbc
    twin = open_cell.copy()
    twin.pbc = True
    cutoff = 4.5
    mixed = nearest_neighbour_stats([open_cell], ["Cu", "Ni"], cutoff)
    periodic = nearest_neighbour_stats([twin], ["Cu", "Ni"], cutoff)
    assert set(periodic) == {(0, 0), (0, 1), (1, 0), (1, 1)}
    assert mixed == periodic


# ---------------------------------------------------------------------- atomic writes
@pytest.fixture
def fsyncs(monkeypatch):
    """Counts calls of os.fsync (every atomic write must reach the disk before its rename)."""
    calls = []
    real = os.fsync

    def counting(fd):
        calls.append(fd)
        real(fd)

    monkeypatch.setattr(os, "fsync", counting)
    return calls


@pytest.mark.parametrize("suffix", [".extxyz", ".db", ".cfg"])
def test_dataset_writes_are_synced_before_the_rename(tmp_path, fsyncs, suffix):
    images = emt_dataset(3, seed=1)
    write_structures(tmp_path / f"data{suffix}", images, species=["Cu", "Ni"])
    assert len(fsyncs) >= 1
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"data{suffix}"]  # no temporary file left


def test_atomic_write_replaces_whole_files_and_cleans_up(tmp_path, fsyncs):
    from sus2_model.io.atomic import atomic_path, atomic_write

    target = tmp_path / "sub" / "out.txt"
    atomic_write(target, lambda fh: fh.write("first"))
    assert target.read_text() == "first" and len(fsyncs) == 1

    def broken(fh):
        fh.write("half")
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError, match="killed"):
        atomic_write(target, broken)
    with pytest.raises(RuntimeError, match="killed"), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert target.read_text() == "first"
    assert [p.name for p in target.parent.iterdir()] == ["out.txt"]
    atomic_write(target, lambda fh: fh.write(b"\x00binary"), mode="wb")
    with atomic_path(tmp_path / "sub" / "other.extxyz") as tmp:
        assert tmp.suffix == ".extxyz" and tmp.parent == target.parent  # readers that go by the suffix still work
        write_structures(tmp, emt_dataset(1))
    assert target.read_bytes() == b"\x00binary" and (tmp_path / "sub" / "other.extxyz").stat().st_size > 0
    assert sorted(p.name for p in target.parent.iterdir()) == ["other.extxyz", "out.txt"]


def test_model_and_metrics_writes_are_synced(tmp_path, fsyncs):
    from sus2_model.train.export import write_metrics_csv

    model = random_model()
    for write in (lambda: save_native(model, tmp_path / "m.pt"), lambda: write_mtp(model.to_mtp(), tmp_path / "m.mtp"),
                  lambda: write_cfg(tmp_path / "d.cfg", emt_dataset(1), ["Cu", "Ni"]),
                  lambda: write_metrics_csv(tmp_path / "metrics.csv", [{"epoch": 1, "train_loss": 0.5}])):
        before = len(fsyncs)
        write()
        assert len(fsyncs) == before + 1
    assert (tmp_path / "metrics.csv").read_text().splitlines() == ["epoch,train_loss", "1,0.5"]


# ---------------------------------------------------------------------- one evaluation path
def test_calculator_results_are_predicts(triclinic_cell, molecule):
    """The calculator goes through predict's code: the same numbers, bit for bit, stress only for periodic cells."""
    model = random_model(max_rank=3)
    calc = Sus2Calculator(model)
    for atoms in (triclinic_cell, molecule):
        (expected,) = predict(model, [atoms])
        atoms.calc = calc
        atoms.get_potential_energy()
        results = calc.results
        assert results["energy"] == results["free_energy"] == expected.energy
        np.testing.assert_array_equal(results["forces"], expected.forces)
        np.testing.assert_array_equal(results["energies"], expected.energies)
        if atoms.pbc.all():
            np.testing.assert_array_equal(results["stress"], expected.stress)
        else:
            assert "stress" not in results and expected.stress is None


# ---------------------------------------------------------------------- content hash
def _task_model() -> Sus2Potential:
    model = random_model()
    model.add_task("T")
    rng = np.random.default_rng(5)
    model.set_moment_scale(torch.as_tensor(rng.uniform(0.5, 2.0, len(model.moment_scale))))
    with torch.no_grad():
        for p in model.task_parameters():
            p.copy_(torch.as_tensor(rng.normal(0, 0.05, p.shape)))
    return model


def test_model_hash_survives_the_native_round_trip(tmp_path):
    from sus2_model.io.native import model_hash

    model = _task_model()
    digest = model_hash(model)
    assert len(digest) == 64 and int(digest, 16) >= 0
    model.metadata = {"created": "now", "path": str(tmp_path)}  # provenance is not content
    save_native(model, tmp_path / "a" / "model.pt", {"created": "later"})
    assert model_hash(load_model(tmp_path / "a" / "model.pt")) == digest
    assert model_hash(model.float()) == model_hash(load_model(tmp_path / "a" / "model.pt").float())


def test_model_hash_changes_with_any_coefficient():
    from sus2_model.io.native import model_hash

    model = _task_model()
    digest = model_hash(model)
    for name, tensor in model.state_dict().items():
        if not tensor.numel():
            continue
        changed = _task_model()
        with torch.no_grad():
            value = changed.state_dict()[name].view(-1)
            value[-1] = torch.nextafter(value[-1], value[-1] + 1)
        assert model_hash(changed) != digest, name
    renamed = _task_model()
    renamed.tasks = ["U"]
    assert model_hash(renamed) != digest
    moved = _task_model()
    moved.hyper["min_dist"] += 0.1
    assert model_hash(moved) != digest
    swapped = _task_model()
    swapped.species = ["Ni", "Cu"]
    assert model_hash(swapped) != digest


def test_model_hash_equal_for_identical_training_in_different_folders(tmp_path):
    from sus2_model.io.native import model_hash

    data = tmp_path / "emt.extxyz"
    write_structures(data, emt_dataset(12, seed=5))
    config = load_config(None, train=[str(data)], epochs=2, **SMALL)
    first = train(config, tmp_path / "one", progress=False)
    second = train(config, tmp_path / "two" / "deeper", progress=False)
    a, b = load_model(tmp_path / "one" / "model.pt"), load_model(tmp_path / "two" / "deeper" / "model.pt")
    assert a.metadata["created"] and model_hash(a) == model_hash(b)
    assert first["model_hash"] == second["model_hash"] == model_hash(a)
