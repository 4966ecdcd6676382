"""Training step: write the datasets (one file per task), train with ``sus2_model.train`` and describe the model."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from ase import Atoms

from sus2_model import Sus2Potential
from sus2_model.io import write_structures
from sus2_model.predict import error_metrics, predict
from sus2_model.train.config import load_config
from sus2_model.train.trainer import train


def train_model(images: Sequence[Atoms], overrides: dict[str, Any], out: str | Path, task: str | None = None,
                other_tasks: dict[str, tuple[Sequence[Atoms], float]] | None = None) -> dict[str, Any]:
    """Train on ``images`` (as ``task``; None: single domain) plus ``other_tasks`` {name: (images, weight)} in
    ``out``; returns model path, content hash, the trainer's data hash, validation metrics, parameter count and the
    config used.  Without a ``device`` in ``overrides`` it trains on the GPU where the job runs on one (e.g. a
    jobflow-remote GPU worker)."""
    import torch

    overrides = {"device": "cuda" if torch.cuda.is_available() else "cpu", **overrides}
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    entries = []
    for name, (part, weight) in {task: (images, 1.0), **(other_tasks or {})}.items():
        data = out / f"train_{name or 'shared'}.extxyz"
        write_structures(data, part)
        entries.append({"path": str(data), "task": name, "weight": weight})
    config = load_config(None, train=entries, **overrides)
    run = out / "run"  # a killed run resumes from its checkpoint (the folder belongs to one cache key)
    report = train(config, run, resume=(run / "checkpoint.pt").exists(), progress=False)
    path = run / "model.pt"
    return {"model_path": str(path), "model_hash": report["model_hash"],
            "training_data_hash": report["dataset_hash"],
            "training_config": config.to_dict(), "metrics": {k: v for k, v in report.items() if k.startswith("valid")},
            "parameters": report["parameters"]}


def held_out_errors(model: Sus2Potential, images: Sequence[Atoms], task: str | None = None) -> dict[str, float]:
    """Energy/force/stress errors of a trained model on held-out labelled structures (with that task's θ_T)."""
    return error_metrics(images, predict(model, images, task=task))
