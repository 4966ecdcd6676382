"""The engine-neutral campaign layer: every engine gives the same documents; the spec's curation and task weights
reach the campaign's own labels and the training loss; importing the layer imports no engine."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml
from ase.io import write

from sus2_workflows import campaign
from sus2_workflows.cli import run_campaign
from sus2_workflows.documents import atoms_to_dict
from sus2_workflows.labelers import make_labeler
from sus2_workflows.report import write_report
from sus2_workflows.spec import CampaignSpec, CurationSpec, load_spec

from .test_campaign import ROOT, SPEC
from .test_mof import _porous_copper
from .test_multidomain_campaign import shifted_emt_dataset

# epochs (not max_time) end every training run here, so the models depend on the data alone
DETERMINISTIC = {**SPEC, "training": {**SPEC["training"], "epochs": 4, "max_time": 600},
                 "active_learning": {**SPEC["active_learning"], "iterations": 1}}


def test_importing_the_layer_imports_no_engine_or_database():
    code = ("import sys, sus2_workflows.campaign; "
            "print([m for m in sys.modules if m.split('.')[0] in ('jobflow', 'maggma', 'aiida', 'fireworks')])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.slow
def test_every_engine_gives_the_same_documents(tmp_path, monkeypatch):
    monkeypatch.setenv("SUS2_TEST_COUNTER", str(tmp_path / "calls.txt"))
    monkeypatch.delenv("MONGOMOCK_SERVERSTORE_FILE", raising=False)  # the embedded LaunchPad sets it: undone after
    monkeypatch.syspath_prepend(str(ROOT))
    path = tmp_path / "spec.yaml"
    adsorption = {"bulk": {"element": "Cu", "prototype": "fcc"}, "adsorbates": ["O"], "random_placements": 1,
                  "references": "labeler", "dft_top_k": 1, "learn": True}
    write(tmp_path / "porous.cif", _porous_copper())  # a framework for the MOF stage: O atoms in a Cu cavity
    frameworks = {"framework": {"path": "porous.cif"}, "guests": ["O"], "min_trials": 200, "max_trials": 400,
                  "binding_sites": 1, "max_binding_ev": 10.0}  # an O atom chemisorbs: about -4 eV
    screening = {**SPEC["screening"], "eos_reference": "labeler", "adsorption": [adsorption], "mof": [frameworks]}
    path.write_text(yaml.safe_dump({**DETERMINISTIC, "screening": screening}))
    results = {engine: run_campaign(path, tmp_path / engine, engine=engine)["result"]
               for engine in ("inline", "local", "fireworks")}
    inline = results["inline"]
    assert inline["failures"] == [] and inline["iterations"] == 1 and len(inline["result_hashes"]) == 3
    assert inline["adsorption"][0]["dft"]["n_checked"] >= 1
    assert inline["mof"][0]["widom"]["n_trials"] >= 200 and inline["mof"][0]["sites"]
    reference = inline["eos"][0]["reference"]
    assert reference["error"] is None and reference["nu"] >= 0 and reference["method"] == "ase"
    assert min(reference["volumes"]) < reference["v0"] < max(reference["volumes"])
    for engine, result in results.items():
        assert (result["dataset_hash"], result["model_hash"], result["result_hashes"]) == \
               (inline["dataset_hash"], inline["model_hash"], inline["result_hashes"]), engine
        assert [result["eos"][0][k] for k in ("v0", "b0_gpa")] == [inline["eos"][0][k] for k in ("v0", "b0_gpa")]
        assert result["eos"][0]["reference"]["v0"] == reference["v0"], engine
        assert result["eos"][0]["extrapolation"] is None, engine  # every engine hands the training structures on
    report = write_report(tmp_path / "local").read_text()
    assert "![parity](eos_parity.png)" in report and "### Cu(111)+O" in report and "success@1" in report
    assert "## Gas adsorption in frameworks" in report and (tmp_path / "local" / "mof_0.png").stat().st_size
    assert (tmp_path / "local" / "eos_parity.png").stat().st_size and (tmp_path / "local" / "adsorption_0.png").stat().st_size
    command = [sys.executable, "-m", "sus2_workflows.cli", "campaign", "export", "--json", "--folder",
               str(tmp_path / "local")]
    export = json.loads(subprocess.run(command, capture_output=True, text=True, check=True).stdout)
    assert export[0]["result"]["result_hash"] == inline["result_hashes"][0]


def test_spec_hash_names_imported_data_by_content_not_path(tmp_path):
    from sus2_model.io import write_structures

    hashes = []
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        write_structures(tmp_path / folder / "other.extxyz", shifted_emt_dataset(6))
        path = tmp_path / folder / "spec.yaml"
        path.write_text(yaml.safe_dump({**SPEC, "datasets": [{"path": "other.extxyz", "task": "other"}]}))
        hashes.append(load_spec(path).spec_hash())
    assert hashes[0] == hashes[1]
    write_structures(tmp_path / "b" / "other.extxyz", shifted_emt_dataset(7))
    assert load_spec(tmp_path / "b" / "spec.yaml").spec_hash() != hashes[0]


def test_spec_curation_caps_drop_a_campaign_label(tmp_path):
    ws = campaign.Workspace(tmp_path, campaign.MemoryCache())
    spec = CampaignSpec(**SPEC)
    labeler = make_labeler({"type": "ase", "module": "ase.calculators.emt", "callable": "EMT"})
    seeds = campaign.seed_structures(spec)
    loose = campaign.label(seeds, labeler, spec.curation, ws)
    largest = max(max(abs(f) for row in d["forces"] for f in row) for d in loose.structures)
    capped = campaign.label(seeds, labeler, CurationSpec(max_force=0.99 * largest), ws)
    assert loose.n_structures == len(seeds) and loose.n_dropped == 0
    assert capped.n_structures == len(seeds) - 1 and capped.n_dropped == 1 and capped.n_computed == 0


@pytest.mark.slow
def test_spec_weight_of_an_imported_task_changes_the_loss(tmp_path, monkeypatch):
    source = tmp_path / "other.extxyz"
    from sus2_model.io import write_structures

    write_structures(source, shifted_emt_dataset(12))
    spec = {**DETERMINISTIC, "datasets": [{"path": str(source), "task": "other", "weight": 4.0}],
            "curation": {"test_fraction": 0.0}}
    ws = campaign.Workspace(tmp_path, campaign.MemoryCache())
    parsed = CampaignSpec(**spec)
    labeler = make_labeler({"type": "ase", "module": "ase.calculators.emt", "callable": "EMT"})
    dataset = campaign.label(campaign.seed_structures(parsed), labeler, parsed.curation, ws)
    models = {}
    for weight in (1.0, 4.0):
        parsed.datasets[0].weight = weight
        sources = campaign.curate(parsed.datasets, parsed.curation, ws)
        assert sources.tasks[0].weight == weight
        models[weight] = campaign.train(dataset, parsed.training, ws, sources, parsed.target_task)
    weights = {w: {e["task"]: e["weight"] for e in m.training_config["train"]} for w, m in models.items()}
    assert weights == {1.0: {"emt-cu": 1.0, "other": 1.0}, 4.0: {"emt-cu": 1.0, "other": 4.0}}
    assert models[1.0].model_hash != models[4.0].model_hash


def test_a_label_computed_after_a_failure_clears_the_failure(tmp_path):
    from sus2_workflows.cache import store_workspace

    labeler = make_labeler({"type": "ase", "module": "ase.calculators.emt", "callable": "EMT"})
    seeds = campaign.seed_structures(CampaignSpec(**SPEC))[:2]
    for ws in (campaign.Workspace(tmp_path, campaign.MemoryCache()), store_workspace(tmp_path)):
        key = campaign.plan_labels(seeds, labeler, ws).todo_keys[0]
        ws.cache.put("label_failed", key, {"source": "seed:0", "error": "SCF did not converge"})  # an earlier run
        dataset = campaign.label(seeds, labeler, CurationSpec(), ws)
        assert dataset.n_computed == 2 and ws.cache.get("label_failed", key) is None and ws.cache.get("label", key)


def test_memory_cache_round_trips_documents(tmp_path):
    cache = campaign.MemoryCache()
    atoms = shifted_emt_dataset(1)[0]
    cache.put("label", "k", atoms_to_dict(atoms))
    assert cache.get("label", "k") == json.loads(json.dumps(atoms_to_dict(atoms)))
    assert cache.get("label", "other") is None and cache.get("model", "k") is None
