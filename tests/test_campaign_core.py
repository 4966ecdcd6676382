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
                  "binding_sites": 1, "max_binding_ev": 10.0,  # an O atom chemisorbs: about -4 eV
                  "block_pockets": False}  # its pore is a closed cavity
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


def test_labels_move_to_another_campaign_and_are_never_computed_again(tmp_path, capsys):
    """``sus2 campaign export-labels`` writes a campaign's labels of its spec's labeler (.json or .json.gz);
    ``import-labels`` loads them into another campaign folder, whose plan then holds them all, labels intact, and
    where an earlier failure of one is no longer a failure; labels of other settings, files that are not exports and
    labels without finite energies are refused by name and nothing is loaded."""
    import gzip

    from sus2_model.train.data import structure_hash
    from sus2_workflows.cache import store_workspace
    from sus2_workflows.cli import main
    from sus2_workflows.errors import LabelingError

    emt = {"type": "ase", "module": "ase.calculators.emt", "callable": "EMT"}
    other = {**emt, "kwargs": {"asap_cutoff": True}}
    files = {}
    for name, labeler_spec in (("emt", emt), ("other", other)):
        files[name] = tmp_path / f"{name}.yaml"
        files[name].write_text(yaml.safe_dump({**SPEC, "labeler": labeler_spec}))
    labeler = make_labeler(emt)
    seeds = campaign.seed_structures(CampaignSpec(**SPEC))[:3]
    source, target = store_workspace(tmp_path / "a"), store_workspace(tmp_path / "b")
    campaign.label(seeds, labeler, CurationSpec(), source)
    campaign.label(seeds[:1], make_labeler(other), CurationSpec(), source)
    failed_key = campaign.plan_labels(seeds, labeler, target).todo_keys[2]
    target.cache.put("label_failed", failed_key, {"source": "seed:2", "error": "SCF did not converge"})

    def cli(command: str, spec: str, path: Path, folder: str) -> tuple[int, str]:
        rc = main(["campaign", command, str(files[spec]), str(path), "--folder", str(tmp_path / folder)])
        out, err = capsys.readouterr()
        return rc, out + err

    assert "3 ase labels" in cli("export-labels", "emt", tmp_path / "labels.json.gz", "a")[1]
    assert "1 of other labeler settings" in cli("export-labels", "emt", tmp_path / "labels.json", "a")[1]
    assert json.loads(gzip.decompress((tmp_path / "labels.json.gz").read_bytes())) == \
        json.loads((tmp_path / "labels.json").read_text())
    rc, text = cli("import-labels", "other", tmp_path / "labels.json.gz", "b")  # would never be used
    assert rc == 2 and "labels.json.gz: labels of other labeler settings" in text and "differing: kwargs" in text
    assert not list(target.cache.items("label"))
    for expected in ("3 new labels", "0 new labels"):
        assert expected in cli("import-labels", "emt", tmp_path / "labels.json.gz", "b")[1]
    before = campaign.plan_labels(seeds, labeler, source).cached
    after = campaign.plan_labels(seeds, labeler, target)
    assert not after.todo and {k: structure_hash(a) for k, a in after.cached.items()} == \
        {k: structure_hash(a) for k, a in before.items()}  # the same keys, positions and labels
    assert target.cache.get("label_failed", failed_key) is None

    (tmp_path / "cut.json.gz").write_bytes((tmp_path / "labels.json.gz").read_bytes()[:-20])
    rc, text = cli("import-labels", "emt", tmp_path / "cut.json.gz", "c")
    assert rc == 2 and "cut.json.gz: cannot read labels" in text
    broken = json.loads((tmp_path / "labels.json").read_text())
    broken["labels"][1]["label"]["energy"] = float("nan")
    (tmp_path / "nan.json").write_text(json.dumps(broken))
    rc, text = cli("import-labels", "emt", tmp_path / "nan.json", "c")
    assert rc == 2 and "nan.json: label 1: seed:" in text and "NaN or infinite" in text
    broken["labels"][1]["label"] = {"energy": 1.0}
    with pytest.raises(LabelingError, match="labels: label 1 is malformed"):
        campaign.import_labels(broken, labeler, campaign.Workspace(tmp_path, campaign.MemoryCache()))
    with pytest.raises(LabelingError, match="not a label export"):
        campaign.import_labels({"labels": []}, labeler, campaign.Workspace(tmp_path, campaign.MemoryCache()))
    assert not list(store_workspace(tmp_path / "c").cache.items("label"))


def test_the_shipped_quantum_espresso_labels_hold_every_seed_of_their_spec(tmp_path):
    """``workflows/labels/adsorption-qe-cu-o.json.gz`` imports into its spec's campaign (same labeler settings), and
    that campaign then has a label for every seed structure: the spec and its labels have not drifted apart."""
    import gzip

    spec = load_spec(ROOT / "workflows" / "adsorption-qe-cu-o.yaml")
    labeler = make_labeler(spec.labeler)
    exported = json.loads(gzip.decompress((ROOT / "workflows" / "labels" / "adsorption-qe-cu-o.json.gz").read_bytes()))
    ws = campaign.Workspace(tmp_path, campaign.MemoryCache())
    assert campaign.import_labels(exported, labeler, ws) == len(exported["labels"])
    plan = campaign.plan_labels(campaign.seed_structures(spec), labeler, ws)
    assert not plan.todo and len(plan.cached) == len(plan.keys) == 20
