"""Training step: write the dataset, train with ``sus2_model.train`` and describe the model."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from ase import Atoms

from sus2_model.io import write_structures
from sus2_model.train.config import load_config
from sus2_model.train.trainer import train

from ..forcefield import model_hash


def train_model(images: Sequence[Atoms], overrides: dict[str, Any], out: str | Path) -> dict[str, Any]:
    """Train on ``images`` in ``out``; returns model path, hash, metrics, parameter count and the config used."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    data = out / "train.extxyz"
    write_structures(data, images)
    config = load_config(None, train=[str(data)], **overrides)
    report = train(config, out / "run", progress=False)
    path = out / "run" / "model.pt"
    return {"model_path": str(path), "model_hash": model_hash(path), "dataset_hash": report["dataset_hash"],
            "training_config": config.to_dict(), "metrics": {k: v for k, v in report.items() if k.startswith("valid")},
            "parameters": report["parameters"]}
