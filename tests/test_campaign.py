"""Campaigns end to end (jobflow + embedded store): results, rerun without recomputation, resume after a kill."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from sus2_workflows.cache import cache_store
from sus2_workflows.cli import main, run_campaign
from sus2_workflows.errors import SpecError
from sus2_workflows.spec import load_spec

ROOT = Path(__file__).resolve().parents[1]
SPEC = {
    "name": "emt-cu",
    "seeds": [{"element": "Cu", "prototype": "fcc", "supercell": [1, 1, 2], "strains": [-0.03, 0.0, 0.03],
               "rattle": 0.05, "copies": 2}],
    "labeler": {"type": "ase", "module": "tests.counting_emt", "callable": "CountingEMT"},
    "training": {"max_rank": 2, "n_radial": 2, "max_level": 12, "radial_basis_size": 6, "cutoff": 4.5, "epochs": 10,
                 "valid_fraction": 0.0},  # epochs, not a time budget, end training: the models do not vary with load
    "active_learning": {"iterations": 2, "md_steps": 20, "sample_every": 5, "grade_threshold": 1.5,
                        "max_new_per_iteration": 2},
    "screening": {"eos": [{"element": "Cu", "prototype": "fcc"}]},
}


def _counts(folder: Path) -> dict[str, int]:
    store = cache_store(None, folder)
    store.connect()
    kinds: dict[str, int] = {}
    for doc in store.query({}, properties=["kind"]):
        kinds[doc["kind"]] = kinds.get(doc["kind"], 0) + 1
    return kinds


@pytest.fixture
def spec_file(tmp_path, monkeypatch):
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(SPEC))
    monkeypatch.setenv("SUS2_TEST_COUNTER", str(tmp_path / "calls.txt"))
    monkeypatch.syspath_prepend(str(ROOT))
    return path


def _calls(tmp_path: Path) -> int:
    counter = tmp_path / "calls.txt"
    return len(counter.read_text().splitlines()) if counter.exists() else 0


@pytest.mark.slow
def test_campaign_runs_and_a_rerun_recomputes_nothing(tmp_path, spec_file):
    summary = run_campaign(spec_file, tmp_path / "camp")
    assert summary["eos"][0]["formula"] == "Cu4" and 8 < summary["eos"][0]["v0"] < 15
    assert summary["eos"][0]["extrapolation"] is None  # the seeds' strains span the grid
    first = _counts(tmp_path / "camp")
    assert first["label"] >= 6 and first["model"] >= 1 and first["eos"] == 1
    calls = _calls(tmp_path)
    again = run_campaign(spec_file, tmp_path / "camp")
    assert again["eos"] == summary["eos"]
    assert _counts(tmp_path / "camp") == first
    assert _calls(tmp_path) == calls  # no labeler call at all


@pytest.mark.slow
def test_killed_campaign_resumes_without_losing_labels(tmp_path, spec_file):
    env = {**os.environ, "SUS2_TEST_DELAY": "0.4", "PYTHONPATH": f"{ROOT}:{ROOT / 'src'}"}
    cmd = [sys.executable, "-m", "sus2_workflows.cli", "campaign", "run", str(spec_file), "--folder",
           str(tmp_path / "camp")]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and _calls(tmp_path) < 3:
        time.sleep(0.1)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before_kill = _calls(tmp_path)
    assert done_before_kill >= 3
    labels_kept = _counts(tmp_path / "camp").get("label", 0)
    assert labels_kept >= done_before_kill - 1  # every finished label was already in the store
    run_campaign(spec_file, tmp_path / "camp")
    total_labels = _counts(tmp_path / "camp")["label"]
    assert _calls(tmp_path) - done_before_kill <= total_labels - labels_kept + 1  # nothing labelled twice


@pytest.mark.slow
def test_a_labeler_failing_30_percent_of_calls_at_random_loses_no_label(tmp_path, spec_file, monkeypatch):
    failures_file = tmp_path / "failures.txt"
    monkeypatch.setenv("SUS2_TEST_FAIL_RATE", "0.3")
    monkeypatch.setenv("SUS2_TEST_FAILURES", str(failures_file))
    random.seed(3)  # the labeler's draws (it runs in this process): a reproducible 30 %
    summary = run_campaign(spec_file, tmp_path / "camp")
    assert summary["eos"][0]["formula"] == "Cu4" and summary["eos"][0]["b0_gpa"] > 0  # the campaign completes
    failed_calls = failures_file.read_text().splitlines()
    succeeded = _calls(tmp_path)
    assert 0.15 < len(failed_calls) / (len(failed_calls) + succeeded) < 0.45
    store = cache_store(None, tmp_path / "camp")
    store.connect()
    recorded = list(store.query({"kind": "label_failed"}))
    assert recorded and all("SCF did not converge (a random failure)" in d["value"]["error"] for d in recorded)
    assert {d["value"]["source"] for d in recorded} <= set(failed_calls)  # each names its structure
    assert _counts(tmp_path / "camp")["label"] == succeeded  # every successful calculation is kept, once
    monkeypatch.setenv("SUS2_TEST_FAIL_RATE", "0")
    run_campaign(spec_file, tmp_path / "camp")  # a rerun retries the failures it still needs, labels nothing twice
    assert _counts(tmp_path / "camp")["label"] == _calls(tmp_path)
    keys = lambda kind: {d["cache_key"].split(":", 1)[1] for d in store.query({"kind": kind})}  # noqa: E731
    assert len(keys("label_failed")) < len(recorded) and not keys("label_failed") & keys("label")


@pytest.mark.slow
def test_committee_learning_stops_by_its_criterion_and_reports_the_validation_history(tmp_path, spec_file, capsys):
    validation = {"element": "Cu", "prototype": "fcc", "supercell": [2, 2, 2], "strains": [-0.02, 0.02],
                  "rattle": 0.1, "copies": 2}  # larger cells and rattles than the seeds', never trained on
    learning = {**SPEC["active_learning"], "uncertainty": "committee", "committee_trust": [0.05, 0.5],
                "accurate_fraction": 0.9, "iterations": 6, "validation": [validation]}
    spec_file.write_text(yaml.safe_dump({**SPEC, "active_learning": learning}))
    assert main(["campaign", "run", str(spec_file), "--folder", str(tmp_path / "camp")]) == 0
    result = run_campaign(spec_file, tmp_path / "camp")["result"]  # a rerun: the same history from the cache
    history = result["history"]
    assert history and all(h["uncertainty"] == "committee" and h["validation"]["n_structures"] == 4 for h in history)
    last = history[-1]
    assert last["converged"] and (last["accurate_fraction"] >= 0.9 or last["n_selected"] == 0)
    assert all(not h["converged"] for h in history[:-1]) and len(history) < 6
    assert result["validation"]["force_mae_ev_a"] <= history[0]["validation"]["force_mae_ev_a"]
    store = cache_store(None, tmp_path / "camp")
    store.connect()
    labels = {d["value"]["info"]["source"] for d in store.query({"kind": "label"})}
    assert sum(s.startswith("validation:") for s in labels) == 4  # labelled once, by the campaign's labeler
    printed = capsys.readouterr().out
    assert "validation F MAE (eV/Å)" in printed and "final model" in printed
    report = (tmp_path / "camp" / "report.md").read_text()
    assert "max force deviation (eV/Å)" in report and report.count("| final model |") == 1


def test_bad_spec_names_the_key(tmp_path, capsys):
    bad = dict(SPEC, labeler={"type": "quantum_espresso", "ecutwfc": -5})
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(bad))
    with pytest.raises(SpecError, match=r"bad\.yaml: labeler\.ecutwfc: Input should be greater than 0"):
        load_spec(path)
    (tmp_path / "Cu.UPF").write_text("Suggested minimum cutoff for wavefunctions:  47. Ry\n")
    low = {"type": "quantum_espresso", "pseudopotentials": {"Cu": "Cu.UPF"}, "pseudo_dir": str(tmp_path), "ecutwfc": 30}
    path.write_text(yaml.safe_dump(dict(SPEC, labeler=low)))
    with pytest.raises(SpecError, match=r"bad\.yaml: labeler: ecutwfc 30 Ry is below the 47 Ry that Cu\.UPF"):
        load_spec(path)  # refused before any label is paid for
    thin = {"bulk": {"element": "Cu", "prototype": "fcc"}, "min_slab": 3.0, "fixed_layers": 1}  # two layers, 2.1 Å
    path.write_text(yaml.safe_dump(dict(SPEC, screening={"adsorption": [thin]})))
    with pytest.raises(SpecError, match=r"screening\.adsorption\.0: Cu\(111\): the slab is 2\.\d+ Å thick, thinner "
                                        r"than the model's cutoff 4\.50 Å"):
        load_spec(path)
    committee = dict(SPEC["active_learning"], uncertainty="committee", committee_trust=[0.5, 0.1])
    path.write_text(yaml.safe_dump(dict(SPEC, active_learning=committee)))
    with pytest.raises(SpecError, match=r"active_learning: Value error, the upper trust level \(0.1\) must lie above"):
        load_spec(path)
    vasp = {"type": "vasp", "pseudopotentials": {}}
    validation = dict(SPEC["active_learning"], validation=[{"element": "Cu", "prototype": "fcc"}])
    path.write_text(yaml.safe_dump(dict(SPEC, labeler=vasp, active_learning=validation)))
    with pytest.raises(SpecError, match="validation is labelled in the campaign's own process: a VASP labeler"):
        load_spec(path)
    path.write_text(yaml.safe_dump(dict(SPEC, colour="blue")))
    with pytest.raises(SpecError, match=r"colour: Extra inputs are not permitted"):
        load_spec(path)
    path.write_text(yaml.safe_dump(dict(SPEC, training={"learning_rate": 1})))
    assert main(["campaign", "run", str(path), "--folder", str(tmp_path / "c")]) == 2
    assert "training: config: unknown key 'learning_rate'" in capsys.readouterr().err
    assert not (tmp_path / "c").exists()  # nothing half-written


def test_quickstart_spec_is_valid():
    spec = load_spec(ROOT / "workflows" / "quickstart.yaml")
    assert spec.labeler.type == "quantum_espresso" and spec.screening.eos


@pytest.mark.parametrize("path", sorted((ROOT / "workflows").glob("*.yaml")), ids=lambda p: p.name)
def test_every_ready_spec_loads(path):
    """The campaign specs shipped in workflows/ pass every check a run makes before its first label."""
    spec = load_spec(path)
    assert spec.seeds and (spec.screening.eos or spec.screening.adsorption)


@pytest.mark.slow
def test_status_report_and_provenance_export(tmp_path, spec_file, capsys):
    folder = tmp_path / "camp"
    assert main(["campaign", "run", str(spec_file), "--folder", str(folder)]) == 0
    assert (folder / "report.md").read_text().count("| Cu4 fcc |") == 1 and (folder / "eos_0.png").stat().st_size
    capsys.readouterr()
    assert main(["campaign", "export", "--json", "--folder", str(folder)]) == 0
    chain = __import__("json").loads(capsys.readouterr().out)
    entry = chain[0]
    assert entry["result"]["formula"] == "Cu4"
    assert len(entry["model"]["model_hash"]) == 64 and len(entry["model"]["dataset_hash"]) == 64
    assert entry["model"]["training_config"]["max_level"] == 12
    # active learning retrains a single-domain model from the closed-form start; the lineage names the models replaced
    assert entry["model"]["init_model_hash"] is None and entry["earlier_models"]
    assert entry["model"]["previous_model_hash"] == entry["earlier_models"][0]
    assert entry["active_learning"] and entry["active_learning"][0]["labeler_settings"]["calculator"].endswith("CountingEMT")
    assert "sus2" in entry["code_versions"] and "torch" in entry["code_versions"]
    assert main(["campaign", "status", "--folder", str(folder)]) == 0
    assert "label" in capsys.readouterr().out
    assert main(["campaign", "status", "--folder", str(tmp_path / "nothing")]) == 2
