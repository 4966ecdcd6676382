"""jobflow-remote on clusters: a project file with a CPU worker (labelling, screening) and a GPU worker (training),
and the routing of every training job, including those active learning creates at run time, to the GPU worker."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from jobflow import Flow

from sus2_model.io.atomic import atomic_write

from ...errors import Sus2WorkflowError
from .makers import TrainSus2Maker


def route_training_to_gpu(flow: Flow, gpu_worker: str, resources: dict[str, Any] | None = None,
                          exec_config: str | None = None) -> Flow:
    """Send the training and fine-tuning jobs of ``flow`` (and the ones created dynamically) to ``gpu_worker`` with
    jobflow-remote's ``set_run_config``; other jobs stay on the worker given at submission."""
    from jobflow_remote import set_run_config

    for training in (TrainSus2Maker.make, TrainSus2Maker.fine_tune):
        flow = set_run_config(flow, function_filter=training, worker=gpu_worker, resources=resources or {},
                              exec_config=exec_config, dynamic=True)
    return flow


def project_config(name: str, host: str, user: str, work_dir: str, mongodb_uri: str, gpu_partition: str = "gpu",
                   cpu_partition: str = "standard", database: str = "sus2", scheduler: str = "slurm",
                   pre_run: str = "source ~/sus2/.venv/bin/activate") -> dict[str, Any]:
    """A jobflow-remote project (checked against jobflow-remote's own schema): workers ``cpu`` and ``gpu`` on one
    cluster, the job queue and the output store (MongoDB + GridFS for the ``data`` store) on ``mongodb_uri``."""
    from jobflow_remote.config.base import Project

    def worker(partition: str, extra: dict[str, Any]) -> dict[str, Any]:
        return {"type": "remote", "scheduler_type": scheduler, "host": host, "user": user,
                "work_dir": f"{work_dir}/{partition}", "pre_run": pre_run,
                "resources": {"partition": partition, "nodes": 1, **extra}}

    config = {
        "name": name,
        "workers": {"cpu": worker(cpu_partition, {"ntasks": 16, "time": "04:00:00"}),
                    "gpu": worker(gpu_partition, {"ntasks": 1, "gres": "gpu:1", "time": "12:00:00"})},
        "queue": {"store": {"type": "MongoStore", "host": mongodb_uri, "database": database,
                            "collection_name": "jf_jobs"}},
        "jobstore": {"docs_store": {"type": "MongoURIStore", "uri": mongodb_uri, "database": database,
                                    "collection_name": "outputs"},
                     "additional_stores": {"data": {"type": "GridFSURIStore", "uri": mongodb_uri,
                                                    "database": database, "collection_name": "data"}}},
    }
    try:
        Project.model_validate(config)
    except Exception as exc:  # pydantic ValidationError from jobflow-remote
        raise Sus2WorkflowError(f"jobflow-remote project {name!r}: {exc}") from None
    return config


def write_project(config: dict[str, Any], path: str | Path) -> Path:
    """Write a project to YAML (jobflow-remote reads ``~/.jfremote/<name>.yaml``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = yaml.safe_dump(config, sort_keys=False)
    atomic_write(path, lambda fh: fh.write(text))
    return path
