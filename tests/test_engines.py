"""Engines: FireWorks (embedded LaunchPad) runs a campaign; jobflow-remote gets a project file and GPU routing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from sus2_workflows.cli import main, run_campaign
from sus2_workflows.errors import Sus2WorkflowError
from sus2_workflows.engines.jobflow import Sus2CampaignMaker
from sus2_workflows.engines.jobflow.remote import project_config, route_training_to_gpu
from sus2_workflows.spec import CampaignSpec

from .test_campaign import ROOT, SPEC, _calls


@pytest.mark.slow
def test_fireworks_engine_runs_the_campaign_and_reruns_from_the_cache(tmp_path):
    spec = json.loads(json.dumps(SPEC))
    spec["active_learning"]["iterations"] = 1
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    env = {**os.environ, "SUS2_TEST_COUNTER": str(tmp_path / "calls.txt"), "PYTHONPATH": f"{ROOT}:{ROOT / 'src'}"}
    cmd = [sys.executable, "-m", "sus2_workflows.cli", "campaign", "run", str(path), "--engine", "fireworks",
           "--folder", str(tmp_path / "camp")]
    first = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr[-2000:]
    assert "Cu4" in first.stdout and "report:" in first.stdout
    calls = _calls(tmp_path)
    summary = json.loads((tmp_path / "camp" / "summary.json").read_text())
    assert summary["engine"] == "fireworks" and 8 < summary["eos"][0]["v0"] < 15
    launchpad = (tmp_path / "camp" / "launchpad.json").read_text()
    assert "JobFiretask" in launchpad and "COMPLETED" in launchpad  # the embedded LaunchPad persisted its state
    again = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    assert _calls(tmp_path) == calls  # the second workflow found every label in the store
    assert json.loads((tmp_path / "camp" / "summary.json").read_text())["eos"] == summary["eos"]


def _flow(tmp_path):
    spec = CampaignSpec(**SPEC)
    return Sus2CampaignMaker.from_spec(spec, str(tmp_path), "mongodb://db:27017").make(spec)


def test_training_jobs_are_routed_to_the_gpu_worker(tmp_path):
    flow = route_training_to_gpu(_flow(tmp_path), "gpu", resources={"gres": "gpu:1"})
    workers = {job.name: job.config.manager_config.get("worker") for job in flow.jobs}
    assert workers["sus2 train"] == "gpu"
    assert workers["sus2 label"] is None and workers["sus2 eos"] is None
    learner = next(job for job in flow.jobs if job.name == "sus2 active learning")
    assert any(update["config"]["_set"]["manager_config->worker"] == "gpu" and update["function_filter"]
               for update in learner.config_updates), "training jobs created by active learning must be routed too"


def test_remote_project_file_is_valid_jobflow_remote(tmp_path, capsys):
    out = tmp_path / "hpc.yaml"
    assert main(["campaign", "remote-project", "--name", "hpc", "--host", "login.hpc", "--user", "me", "--work-dir",
                 "/scratch/me/sus2", "--mongodb", "mongodb://db.hpc:27017", "--out", str(out)]) == 0
    config = yaml.safe_load(out.read_text())
    from jobflow_remote.config.base import Project

    project = Project.model_validate(config)
    assert set(project.workers) == {"cpu", "gpu"} and project.workers["gpu"].resources["gres"] == "gpu:1"
    store = project.get_jobstore()
    assert "data" in store.additional_stores  # blobs in GridFS, not in the documents
    with pytest.raises(Sus2WorkflowError, match="(?s)jobflow-remote project 'bad'.*Unknown scheduler type pbs-pro"):
        project_config("bad", "h", "u", "/w", "mongodb://x", scheduler="pbs-pro")


def test_jobflow_remote_submission_routes_and_needs_a_shared_store(tmp_path, monkeypatch):
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(SPEC))
    with pytest.raises(Sus2WorkflowError, match="shared --store mongodb"):
        run_campaign(path, tmp_path / "c", engine="jobflow-remote", project="hpc")
    submitted = {}

    def fake_submit(flow, worker, project):
        submitted.update(flow=flow, worker=worker, project=project)
        return [1]

    import jobflow_remote

    import sus2_workflows.stores as stores

    monkeypatch.setattr(jobflow_remote, "submit_flow", fake_submit)
    monkeypatch.setattr(stores, "check_store", lambda store: None)  # no MongoDB server here
    summary = run_campaign(path, tmp_path / "c", store_uri="mongodb://db:27017", engine="jobflow-remote",
                           project="hpc", gpu_worker="gpu")
    assert summary["submitted"] == [1] and submitted["project"] == "hpc" and submitted["worker"] == "cpu"
    train = next(j for j in submitted["flow"].jobs if j.name == "sus2 train")
    assert train.config.manager_config["worker"] == "gpu"
    assert not Path(tmp_path / "c" / "store").exists()  # nothing embedded was written for a remote campaign
