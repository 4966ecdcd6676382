"""Training engine: outputs, exports, resume after kill -9, multi-task parameters, bad input, DBS selection."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from ase.calculators.singlepoint import SinglePointCalculator

from sus2_model import StructureError, Sus2Calculator, load_model
from sus2_model.cli import main
from sus2_model.demo import emt_dataset
from sus2_model.io import read_structures, write_structures
from sus2_model.train.config import ConfigError, load_config
from sus2_model.train.trainer import train

SMALL = {"max_rank": 2, "n_radial": 2, "max_level": 12, "radial_basis_size": 6, "cutoff": 4.5, "batch_size": 8}


@pytest.fixture
def emt_file(tmp_path) -> Path:
    path = tmp_path / "emt.extxyz"
    write_structures(path, emt_dataset(24, seed=5))
    return path


@pytest.mark.parametrize("optimizer", ["lbfgs", "adam"])
def test_train_writes_models_metrics_and_plots(tmp_path, emt_file, optimizer):
    config = load_config(None, train=[str(emt_file)], epochs=6, optimizer=optimizer, ema_decay=0.9, **SMALL)
    report = train(config, tmp_path / "out", progress=False)
    out = tmp_path / "out"
    for name in ("model.pt", "model.mtp", "metrics.csv", "learning_curve.png", "parity_shared.png", "report.json"):
        assert (out / name).stat().st_size > 0, name
    rows = (out / "metrics.csv").read_text().splitlines()
    assert len(rows) == 7 and rows[0].startswith("epoch,train_loss")
    assert report["valid_shared"]["energy_mae_mev_atom"] < 50
    native = load_model(out / "model.pt")
    exported = load_model(out / "model.mtp", species=native.species)
    assert native.metadata["dataset_hash"] == report["dataset_hash"]
    assert native.metadata["config"]["optimizer"] == optimizer
    atoms = emt_dataset(1, seed=9)[0]
    atoms.calc = Sus2Calculator(native)
    e_native = atoms.get_potential_energy()
    atoms.calc = Sus2Calculator(exported)
    assert atoms.get_potential_energy() == pytest.approx(e_native, abs=1e-9)


def test_linear_refit_keeps_the_models_dtype_and_parameters():
    """The closed-form fit runs in float64 on the CPU but hands the model back as it came (a float32 training
    model keeps its dtype and its Parameter objects, which the optimiser holds), and it lowers the error."""
    from sus2_model.demo import fitted_emt_model
    from sus2_model.predict import error_metrics, predict
    from sus2_model.train import fit_linear

    images = emt_dataset(12, seed=4)
    model = fitted_emt_model(n_train=4).float()
    params = list(model.parameters())
    before = error_metrics(images, predict(model, images, stress=False))["energy_mae_mev_atom"]
    model.float()  # predict evaluates in float64
    fit_linear(model, images, force_weight=0.1)
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert all(a is b for a, b in zip(params, model.parameters()))
    assert error_metrics(images, predict(model, images, stress=False))["energy_mae_mev_atom"] < before


def test_descriptor_jacobian_and_unit_responses_are_exact():
    """The sparse forward-mode Jacobian equals autograd's, and the closed-form fit's per-coefficient forces and
    stresses reproduce the model's own forces and stress for any moment coefficients (ranks up to 4)."""
    from .conftest import random_model

    from sus2_model.neighbors import build_batch
    from sus2_model.train.linear import _unit_responses

    images = emt_dataset(3, seed=7)
    for rank in (2, 4):
        model = random_model(max_rank=rank, max_level=16)
        batch = build_batch(images, model.r_cut, model.species_index)
        with torch.no_grad():
            edges = model.edge_features(batch, slice(0, len(batch.types)))
            basic = model.moments.basic_moments(edges["radial"], edges["powers"])
        reference = torch.autograd.functional.jacobian(lambda b: model.moments.contract(b).sum(0), basic)
        np.testing.assert_allclose(model.moments.jacobian(basic).numpy(), reference.permute(1, 0, 2).numpy(),
                                   atol=1e-10)
        f_k, s_k = _unit_responses(model, batch, len(model.moment_coeffs), stress=True)
        out = model(batch)
        m = model.moment_coeffs.detach().numpy()  # the responses carry the species multipliers c_s
        np.testing.assert_allclose(f_k @ m, out["forces"].detach().numpy().ravel(), atol=1e-9)
        stress = out["stress"].detach().numpy().reshape(-1, 9)[:, [0, 4, 8, 5, 2, 1]]
        np.testing.assert_allclose(s_k @ m, stress, atol=1e-10)


def test_subset_training_and_final_refit(tmp_path, emt_file):
    """Gradient steps on a fixed subset of the structures; the final refit then fits the validated model's linear
    part on every labelled structure (training + validation): radial part unchanged, objective over all the data no
    higher than before."""
    from sus2_model.train.batches import loss_sums, make_minibatch
    from sus2_model.train.data import structure_subset
    from sus2_model.train.trainer import Trainer

    images = read_structures(emt_file)
    subset = structure_subset(images, 40, seed=0)
    assert 40 <= sum(len(a) for a in subset) < 40 + max(len(a) for a in images) and len(subset) < len(images)
    assert structure_subset(images, 0, seed=0) is images
    config = load_config(None, train=[str(emt_file)], epochs=3, subset_atoms=40, final_refit=False, **SMALL)
    trainer = Trainer(config, tmp_path / "out", progress=False)
    assert len(trainer.fit_images) < len(trainer.train_images)
    assert trainer.run()["final_refit"] is False
    validated = load_model(tmp_path / "out" / "model.pt")
    trainer.refit_best(validated)
    refit = trainer.best_model()
    everything = trainer.train_images + trainer.valid_images

    def objective(model):
        mb = make_minibatch(everything, model, {None: -1})
        sums, norms, _ = loss_sums(model.double(), mb, True, True, create_graph=False)
        weights = {"energy": config.energy_weight, "forces": config.force_weight, "stress": config.stress_weight}
        return sum(weights[k] * float(v) / norms[k] for k, v in sums.items())

    torch.testing.assert_close(refit.radial_coeffs.double(), validated.radial_coeffs)
    assert not torch.allclose(refit.moment_coeffs.double(), validated.moment_coeffs)
    assert objective(refit) <= objective(validated) * (1 + 1e-9)
    config = load_config(None, train=[str(emt_file)], epochs=2, **SMALL)
    assert train(config, tmp_path / "again", progress=False)["final_refit"] is True


def test_lbfgs_without_progress_stops_and_says_why(tmp_path, emt_file):
    """Three epochs with the same L-BFGS loss end the loop, and the report says why."""
    from sus2_model.train.trainer import Trainer

    trainer = Trainer(load_config(None, train=[str(emt_file)], epochs=0, **SMALL), tmp_path / "out", progress=False)
    trainer.state.history = [{"train_loss": 1.0}, {"train_loss": 0.5}, {"train_loss": 0.5}]
    assert not trainer._stalled(lbfgs=True)
    trainer.state.history.append({"train_loss": 0.5})
    assert not trainer._stalled(lbfgs=False)
    assert trainer._stalled(lbfgs=True) and "L-BFGS made no progress" in trainer.state.stopped


def test_resume_after_kill_loses_at_most_one_interval(tmp_path, emt_file):
    out = tmp_path / "out"
    config = tmp_path / "c.yaml"
    config.write_text(json.dumps({"train": [str(emt_file)], "epochs": 400, "checkpoint_every": 1,
                                  "optimizer": "adam", **SMALL}))
    cmd = [sys.executable, "-m", "sus2_model.cli", "train", "--config", str(config), "--out", str(out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    checkpoint = out / "checkpoint.pt"
    deadline = time.time() + 120
    epoch_at_kill = 0
    while time.time() < deadline and epoch_at_kill < 3:
        time.sleep(0.5)
        if checkpoint.exists():
            try:
                epoch_at_kill = torch.load(checkpoint, weights_only=True)["state"]["epoch"]
            except Exception:  # noqa: BLE001 - a rename may be in flight
                continue
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert epoch_at_kill >= 3
    saved = torch.load(checkpoint, weights_only=True)["state"]
    assert saved["epoch"] >= epoch_at_kill  # the checkpoint on disk is whole, never half-written
    resumed = load_config(config, epochs=saved["epoch"] + 2)
    train(resumed, out, resume=True, progress=False)
    history = (out / "metrics.csv").read_text().splitlines()[1:]
    assert [int(r.split(",")[0]) for r in history] == list(range(1, saved["epoch"] + 3))


def test_multi_task_parameters_and_task_calculator(tmp_path):
    base = emt_dataset(16, seed=1)
    shifted = []
    for atoms in emt_dataset(6, seed=2):  # domain B: another reference energy and stiffer bonds
        e, f = atoms.get_potential_energy(), atoms.get_forces()
        atoms.calc = SinglePointCalculator(atoms, energy=1.3 * e + 0.5 * len(atoms), forces=1.3 * f)
        shifted.append(atoms)
    write_structures(tmp_path / "a.extxyz", base)
    write_structures(tmp_path / "b.extxyz", shifted)
    config = load_config(None, train=[{"path": str(tmp_path / "a.extxyz"), "task": "A"},
                                      {"path": str(tmp_path / "b.extxyz"), "task": "B", "weight": 2.0}],
                         epochs=8, force_weight=0.01, **SMALL)
    train(config, tmp_path / "out", progress=False)
    model = load_model(tmp_path / "out" / "model.pt")
    assert model.tasks == ["A", "B"] and model.task_r0.abs().max() > 0  # every part of theta_T was trained
    atoms = shifted[0].copy()
    energies = {}
    for task in (None, "A", "B"):
        atoms.calc = Sus2Calculator(model, task=task)
        energies[task] = atoms.get_potential_energy()
    assert abs(energies["B"] - energies["A"]) > 0.1 * len(atoms)  # the task surfaces differ by B's offset
    folded = load_model(tmp_path / "out" / "model_B.mtp", species=model.species)
    atoms.calc = Sus2Calculator(folded)
    assert atoms.get_potential_energy() == pytest.approx(energies["B"], abs=1e-8)
    with pytest.raises(ValueError, match="unknown task 'C'"):
        Sus2Calculator(model, task="C")


def test_bad_training_input_names_the_structure(tmp_path):
    images = emt_dataset(6)
    images[3].calc.results["energy"] = float("nan")
    write_structures(tmp_path / "nan.extxyz", images)
    with pytest.raises(StructureError, match=r"nan\.extxyz:3: energy label is NaN"):
        train(load_config(None, train=[str(tmp_path / "nan.extxyz")], epochs=1, **SMALL), tmp_path / "o1", progress=False)
    images = emt_dataset(6)
    images[2].calc = SinglePointCalculator(images[2], energy=images[2].get_potential_energy())
    write_structures(tmp_path / "noforce.extxyz", images)
    with pytest.raises(StructureError, match=r"noforce\.extxyz:2: no force labels"):
        train(load_config(None, train=[str(tmp_path / "noforce.extxyz")], epochs=1, **SMALL), tmp_path / "o2",
              progress=False)
    images = emt_dataset(6)
    images[4].calc.results["forces"] = images[4].calc.results["forces"][:-1]
    with pytest.raises(StructureError, match=r"emt:0:4: \d+ force rows for \d+ atoms"):
        from sus2_model.train.data import check_labels

        check_labels(images)
    with pytest.raises(ConfigError, match="unknown key 'learning_rate'"):
        load_config(None, train=["x.extxyz"], learning_rate=0.1)
    with pytest.raises(ConfigError, match="optimizer: invalid value 'sgd'"):
        load_config(None, train=["x.extxyz"], optimizer="sgd")


def test_dbs_select_covers_and_records_provenance(tmp_path, emt_file, capsys):
    out = tmp_path / "dbs.extxyz"
    assert main(["dbs", "select", str(emt_file), "--fraction", "0.1", "--min-count", "3", "--out", str(out)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["count"] == 3 and len(set(summary["indices"])) == 3
    chosen = read_structures(out)
    assert [a.info["dbs_index"] for a in chosen] == summary["indices"]
    assert json.loads(Path(str(out) + ".json").read_text())["source_hash"] == summary["source_hash"]
    source = read_structures(emt_file)
    for atoms in chosen:
        np.testing.assert_allclose(atoms.positions, source[atoms.info["dbs_index"]].positions, atol=1e-8)


@pytest.mark.slow
def test_torchrun_two_processes_match_one(tmp_path, emt_file):
    """Data-parallel L-BFGS under torchrun (gloo, 2 processes) reproduces the single-process run bit for bit.

    Exact by construction, because nothing looser holds: the closed-form refit solves normal equations with a condition
    number near 1e9, and with L-BFGS it turned last-bit differences (1e-16 to 1e-13 relative in the first gradient)
    into up to 9e-6 relative in the exported coefficients (27 configurations measured).  So:
    - batch_size 2 gives the same full-batch partition to one process and two, min(4 * 2, ceil(22 / world)) = 8
      structures: batches of 8, 8 and 6, rank 0 taking 0 and 2, rank 1 batch 1;
    - distributed.sum_batches adds the per-batch gradients and losses in batch order on every rank, as one process does;
    - both runs are subprocesses with one BLAS thread: numpy's threaded matmul in the initial fit sums in another order
      (3.4e-9 relative apart in the fitted coefficients with 2 threads vs 1)."""
    config = tmp_path / "c.yaml"
    config.write_text(json.dumps({"train": [str(emt_file)], "epochs": 4, "optimizer": "lbfgs", "threads": 1,
                                  "dtype": "float64", **SMALL, "batch_size": 2}))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    runs = {"single": [], "ddp": ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]}
    for out, launcher in runs.items():
        cmd = [sys.executable, *launcher, "-m", "sus2_model.cli", "train", "--config", str(config),
               "--out", str(tmp_path / out)]
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
    one, two = (load_model(tmp_path / out / "model.pt").state_dict() for out in runs)
    assert one.keys() == two.keys()
    for name in one:  # every parameter and buffer, equal: see the docstring for why no tolerance is safe
        assert torch.equal(two[name], one[name]), name
