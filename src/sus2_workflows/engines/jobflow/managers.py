"""jobflow managers of a campaign flow: in this process (jobflow ``run_locally``), on FireWorks (an embedded LaunchPad
persisted by mongomock-persistence, or a real one from a LaunchPad file), or on jobflow-remote (submission only)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from jobflow import Flow, JobStore

from ...errors import Sus2WorkflowError


def run_local(flow: Flow, store: JobStore, folder: Path) -> Any:
    """Run the flow here with jobflow; returns the flow's output.  A job that fails where the campaign records the
    failure (an engine-run DFT calculation) does not stop it; one the campaign cannot do without does."""
    from jobflow import run_locally

    responses = run_locally(flow, store=store, root_dir=folder / "jobs", create_folders=True, ensure_success=False,
                            log=False)
    if flow.output.uuid not in responses:
        raise Sus2WorkflowError(f"the campaign flow {flow.name!r} did not finish: a job failed (its error is logged "
                                f"above; job folders in {folder / 'jobs'})")
    return responses[flow.output.uuid][max(responses[flow.output.uuid])].output


def _embedded_launchpad(folder: Path):
    """A LaunchPad on mongomock with persistence in ``<folder>/launchpad.json`` (FireWorks' own embedded mode)."""
    path = folder / "launchpad.json"
    if not path.exists():
        path.write_text("{}")
    os.environ["MONGOMOCK_SERVERSTORE_FILE"] = str(path)
    import fireworks.core.launchpad as launchpad_module
    import fireworks.fw_config as fw_config

    fw_config.override_user_settings()  # picks up MONGOMOCK_SERVERSTORE_FILE even if FireWorks was imported before
    launchpad_module.MongoClient = fw_config.MongoClient
    launchpad = launchpad_module.LaunchPad(name="sus2_fireworks")
    if launchpad.fw_id_assigner.count_documents({}) == 0:  # a new embedded LaunchPad: initialise it
        launchpad.reset("", require_password=False)
    return launchpad


def run_fireworks(flow: Flow, store: JobStore, folder: Path, launchpad_file: str | None = None,
                  launch: bool = True) -> Any:
    """Convert the flow with ``flow_to_workflow``, add it to the LaunchPad and (``launch``) run it with
    ``rapidfire`` here; returns the flow's output, or None when only submitted (workers run it: ``qlaunch``)."""
    from fireworks import FWorker
    from fireworks.core.launchpad import LaunchPad
    from fireworks.core.rocket_launcher import rapidfire
    from jobflow.managers.fireworks import flow_to_workflow

    if launchpad_file is None:
        launchpad = _embedded_launchpad(folder)
    else:
        try:
            launchpad = LaunchPad.from_file(launchpad_file)
        except Exception as exc:
            raise Sus2WorkflowError(f"{launchpad_file}: cannot load the LaunchPad: {exc}") from None
    workflow = flow_to_workflow(flow, store=store)
    ids = launchpad.add_wf(workflow)
    if not launch:
        return None
    launch_dir = folder / "fireworks"
    launch_dir.mkdir(parents=True, exist_ok=True)
    rapidfire(launchpad, FWorker(name="sus2-local"), m_dir=str(launch_dir), nlaunches=0, strm_lvl="WARNING")
    state = launchpad.get_wf_by_fw_id(next(iter(ids.values())))
    store.connect()
    try:  # fizzled DFT runs are recorded against their structures; the campaign ends when its result exists
        return store.get_output(flow.output.uuid, which="last", load=True)
    except ValueError:
        fizzled = [fw.name for fw in state.fws if fw.state == "FIZZLED"]
        raise Sus2WorkflowError(f"FireWorks workflow {state.name!r} ended {state.state} without a result; fizzled: "
                                f"{fizzled} (see {launch_dir})") from None


def submit_jobflow_remote(flow: Flow, project: str, worker: str, gpu_worker: str | None) -> list[Any]:
    """Submit to a jobflow-remote project: training jobs go to ``gpu_worker``, all others to ``worker``."""
    from jobflow_remote import submit_flow

    from .remote import route_training_to_gpu

    if gpu_worker:
        route_training_to_gpu(flow, gpu_worker)
    return submit_flow(flow, worker=worker, project=project)
