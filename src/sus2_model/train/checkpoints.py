"""Training checkpoints: the loop's state, the model, the best model so far and the optimiser, written atomically
and read with ``weights_only=True`` (through :mod:`sus2_model.io.native`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.optim.lr_scheduler import LRScheduler

from ..io.native import atomic_torch_save, load_record, model_record
from ..model import Sus2Potential

FORMAT = "sus2-checkpoint"


@dataclass
class TrainState:
    """What a checkpoint holds besides the model and the optimiser."""

    epoch: int = 0
    elapsed: float = 0.0
    best_loss: float = float("inf")
    bad_epochs: int = 0
    fit_seconds_per_atom: float = 0.0  # cost of the closed-form fit, to keep time for the final refit
    stopped: str = ""  # why the loop ended early, if it did
    history: list[dict[str, float]] = field(default_factory=list)


def write_checkpoint(path: Path, model: Sus2Potential, best: dict[str, Any] | None, optimizer: torch.optim.Optimizer,
                     scheduler: LRScheduler | None, state: TrainState, dataset_hash: str) -> None:
    """Write a checkpoint atomically: ``model`` (as a record), the ``best`` record, the optimiser's and scheduler's
    states, the loop's ``state`` and the hash of the data it was trained on."""
    atomic_torch_save({
        "format": FORMAT, "model": model_record(model), "best": best,
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "state": state.__dict__, "dataset_hash": dataset_hash}, path)


def read_checkpoint(path: Path) -> dict[str, Any]:
    """Load a training checkpoint with ``weights_only=True``."""
    return load_record(path, FORMAT, "unreadable checkpoint", "not a sus2 training checkpoint")
