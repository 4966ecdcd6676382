"""The AiiDA engine: a campaign submitted to a real daemon gives the other engines' documents, with a provenance graph
from the screening result back to every calculation and the training data; run again it computes nothing; a failed
calculation ends its own process with a named exit code and the rest go on; the plugin's entry points are listed."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from aiida import orm
from aiida.engine import run_get_node, submit

from sus2_workflows import campaign
from sus2_workflows.cache import store_workspace
from sus2_workflows.documents import atoms_to_dict
from sus2_workflows.engines.aiida.data import DatasetData, DocumentData, ModelData
from sus2_workflows.engines.aiida.functions import EXIT_CODES
from sus2_workflows.engines.aiida.launch import campaign_inputs, result_of
from sus2_workflows.engines.aiida.workchains import Sus2CampaignWorkChain, Sus2LabelWorkChain
from sus2_workflows.provenance import campaign_status, export_campaign
from sus2_workflows.report import write_report
from sus2_workflows.spec import CampaignSpec

from ..test_campaign_core import DETERMINISTIC


def _ancestor_functions(node: orm.Node) -> set[str]:
    """The names of every process function whose outputs ``node`` derives from."""
    names, seen, todo = set(), set(), [node]
    while todo:
        current = todo.pop()
        if current.pk in seen:
            continue
        seen.add(current.pk)
        for link in current.base.links.get_incoming().all():
            source = link.node
            if isinstance(source, orm.CalcFunctionNode):
                names.add(source.process_label)
            if isinstance(source, (orm.CalcFunctionNode, orm.Data)):
                todo.append(source)
    return names


@pytest.mark.slow
def test_a_campaign_on_the_daemon_equals_the_inline_engine_and_reruns_from_the_cache(tmp_path, submit_and_await,
                                                                                      calculations, inline_result):
    spec, inline = CampaignSpec.model_validate(DETERMINISTIC), inline_result
    before = calculations()
    node = submit_and_await(Sus2CampaignWorkChain, **campaign_inputs(spec, tmp_path / "aiida"), timeout=900)
    result = result_of(node)
    assert (result.spec_hash, result.dataset_hash, result.model_hash, result.result_hashes) == \
           (inline.spec_hash, inline.dataset_hash, inline.model_hash, inline.result_hashes)
    labels = [n for n in node.called_descendants if n.process_label == "label_structure"]
    assert len(labels) == calculations() - before > 0 and all(n.is_finished_ok for n in labels)
    # the graph: the EOS result derives from every stage down to the labels (the DFT) and the trained models
    assert {"seed_structures", "label_structure", "merge_labels", "train_model", "explore_and_select",
            "fine_tune_model", "screen_eos"} <= _ancestor_functions(node.outputs.eos)
    model = node.outputs.model
    assert isinstance(model, ModelData) and model.base.attributes.get("species") == ["Cu"] and \
        model.model_hash == result.model_hash and model.get_content("rb") == Path(model.document().model_path
                                                                                  ).read_bytes()
    assert isinstance(node.outputs.dataset, DatasetData) and node.outputs.dataset.base.attributes.get(
        "n_structures") == len(node.outputs.dataset.document.structures)
    # `sus2 campaign status|report|export` read the AiiDA campaign's folder as any other
    status, chains = campaign_status(tmp_path / "aiida"), export_campaign(tmp_path / "aiida")
    assert status["label"] == len(labels) and status["result"] == 1
    assert {c["result"]["result_hash"] for c in chains} == {e.result_hash for e in result.eos}
    assert all(e.formula in write_report(tmp_path / "aiida").read_text() for e in result.eos)
    # run again: nothing is computed again, and AiiDA's caching reuses the stages it can
    done = calculations()
    again = submit_and_await(Sus2CampaignWorkChain, **campaign_inputs(spec, tmp_path / "aiida"), timeout=900)
    assert result_of(again).result_hashes == result.result_hashes and calculations() == done
    assert not [n for n in again.called_descendants if n.process_label == "label_structure"]
    trained = [n for n in again.called_descendants if n.process_label == "train_model"]
    assert trained and all(n.base.caching.is_created_from_cache for n in trained)


def test_a_failed_calculation_ends_its_process_with_a_named_exit_code_and_the_rest_go_on(tmp_path, monkeypatch,
                                                                                        calculations):
    monkeypatch.setenv("SUS2_TEST_FAIL_SOURCE", "seed:Cu-fcc:1")
    spec = CampaignSpec.model_validate(DETERMINISTIC)
    seeds = DocumentData([atoms_to_dict(a) for a in campaign.seed_structures(spec)])
    inputs = {"structures": seeds, "labeler": orm.Dict(spec.labeler.model_dump(mode="json")),
              "curation": orm.Dict(spec.curation.model_dump(mode="json")), "folder": orm.Str(str(tmp_path))}
    before = calculations()
    _, node = run_get_node(Sus2LabelWorkChain, **inputs)
    assert node.is_finished_ok
    failed = [n for n in node.called if not n.is_finished_ok]
    assert len(failed) == 1 and failed[0].exit_status == EXIT_CODES["ERROR_LABEL_FAILED"][0]
    assert "seed:Cu-fcc:1" in failed[0].exit_message and "SCF did not converge" in failed[0].exit_message
    assert failed[0].process_class.spec().exit_codes.ERROR_LABEL_FAILED.status == failed[0].exit_status
    dataset = node.outputs.dataset.document
    assert dataset.n_structures == len(seeds.value) - 1 and dataset.failed[0]["source"] == "seed:Cu-fcc:1"
    assert calculations() - before == len(seeds.value) - 1  # the failed one raised before it was counted
    # the failure is retried on the next run, and only it
    monkeypatch.delenv("SUS2_TEST_FAIL_SOURCE")
    _, again = run_get_node(Sus2LabelWorkChain, **inputs)
    assert again.outputs.dataset.document.n_structures == len(seeds.value) and len(again.called) == 2  # 1 + merge
    assert calculations() - before == len(seeds.value)


def test_a_bad_spec_is_a_named_exit_code():
    _, node = run_get_node(Sus2CampaignWorkChain, spec=orm.Dict({"name": "x", "seeds": "not a list"}),
                           folder=orm.Str("/nonexistent"))
    assert node.exit_status == EXIT_CODES["ERROR_BAD_INPUT"][0] and "seeds" in node.exit_message


def test_verdi_lists_every_work_chain_and_data_type_of_the_plugin():
    verdi = str(Path(sys.executable).parent / "verdi")
    workflows = subprocess.run([verdi, "plugin", "list", "aiida.workflows"], capture_output=True, text=True).stdout
    data = subprocess.run([verdi, "plugin", "list", "aiida.data"], capture_output=True, text=True).stdout
    calculations = subprocess.run([verdi, "plugin", "list", "aiida.calculations"], capture_output=True,
                                  text=True).stdout
    for name in ("curate", "dbs", "label", "label_structure", "label_pw", "train", "active_learning", "eos",
                 "adsorption", "mof", "campaign"):
        assert f"sus2.{name}\n" in workflows, name
    assert all(f"sus2.{name}\n" in data for name in ("model", "dataset", "document"))
    assert "sus2.train\n" in calculations


def test_documents_keep_every_digit_where_aiida_would_round(tmp_path):
    node = DocumentData({"x": 0.30000000000000004, "e": -123.45678901234567}).store()
    assert orm.load_node(node.pk).value == {"x": 0.30000000000000004, "e": -123.45678901234567}
    assert yaml.safe_load(yaml.safe_dump(orm.load_node(node.pk).value))["x"] != 0.3


@pytest.mark.slow
def test_a_daemon_killed_while_labelling_resumes_after_a_restart_without_relabelling(tmp_path, monkeypatch,
                                                                                     daemon_client, calculations):
    import os
    import signal
    import time

    import psutil

    spec = CampaignSpec.model_validate(DETERMINISTIC)
    seeds = DocumentData([atoms_to_dict(a) for a in campaign.seed_structures(spec)])
    if daemon_client.is_daemon_running:
        daemon_client.stop_daemon(wait=True)
    monkeypatch.setenv("SUS2_TEST_DELAY", "1.5")  # seconds per label: time to kill the daemon midway
    daemon_client.start_daemon(number_workers=1)
    before, ws = calculations(), store_workspace(tmp_path)
    node = submit(Sus2LabelWorkChain, structures=seeds, labeler=orm.Dict(spec.labeler.model_dump(mode="json")),
                  curation=orm.Dict(spec.curation.model_dump(mode="json")), folder=orm.Str(str(tmp_path)))
    try:
        deadline = time.monotonic() + 300
        while len(list(ws.cache.items("label"))) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        arbiter = psutil.Process(daemon_client.get_daemon_pid())
        for process in [arbiter, *arbiter.children(recursive=True)]:
            os.kill(process.pid, signal.SIGKILL)
        stored = len(list(ws.cache.items("label")))
        assert 2 <= stored < len(seeds.value) and not node.is_terminated
        daemon_client.start_daemon(number_workers=1)
        while not node.is_terminated and time.monotonic() < deadline:
            time.sleep(0.5)
        assert node.is_finished_ok and node.outputs.dataset.document.n_structures == len(seeds.value)
        # every label stored before the kill stands; at most the one in flight was computed twice
        assert len(seeds.value) <= calculations() - before <= len(seeds.value) + 1
    finally:
        daemon_client.stop_daemon(wait=True)
        monkeypatch.delenv("SUS2_TEST_DELAY")
        daemon_client.start_daemon(number_workers=1)  # as the other tests found it; the session stops it


def test_the_graph_is_drawn_and_an_archive_round_trips_into_another_profile(tmp_path, aiida_config):
    import shutil

    from aiida.tools.archive import create_archive

    from sus2_workflows.engines.aiida.graph import write_graph
    from sus2_workflows.errors import Sus2WorkflowError

    spec = CampaignSpec.model_validate(DETERMINISTIC)
    seeds = DocumentData([atoms_to_dict(a) for a in campaign.seed_structures(spec)[:3]])
    _, node = run_get_node(Sus2LabelWorkChain, structures=seeds, labeler=orm.Dict(spec.labeler.model_dump(mode="json")),
                           curation=orm.Dict(spec.curation.model_dump(mode="json")), folder=orm.Str(str(tmp_path)))
    dot = write_graph(node.pk, tmp_path / "graph.dot").read_text()
    assert len(re.findall(r"label_structure \(\d+\)", dot)) == 3 and "merge_labels" in dot and "DatasetData" in dot
    if shutil.which("dot"):
        assert "<svg" in write_graph(node.outputs.dataset.pk, tmp_path / "graph.svg").read_text()
    else:
        with pytest.raises(Sus2WorkflowError, match="apt-get install graphviz"):
            write_graph(node.pk, tmp_path / "graph.svg")
    create_archive([node], filename=tmp_path / "labels.aiida")
    code = ("import sys; from aiida import orm; from aiida.tools.archive import import_archive; "
            "from sus2_workflows.engines.aiida.profiles import load_campaign_profile; load_campaign_profile(); "
            "import_archive(sys.argv[1]); n = orm.load_node(sys.argv[2]); "
            "print(n.process_label, n.outputs.dataset.document.dataset_hash)")
    env = {**__import__("os").environ, "AIIDA_PATH": str(tmp_path / "elsewhere")}
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "labels.aiida"), node.uuid], env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.stdout.split() == ["Sus2LabelWorkChain", node.outputs.dataset.document.dataset_hash], out.stderr
