"""What a training run leaves behind: the model (native ``.pt``, and the authors' ``.mtp`` per task without the
repulsive prior), the metrics CSV, parity plots and the learning curve, and ``report.json``; every file is written
atomically."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import torch
from ase import Atoms

from ..io import write_mtp
from ..io.atomic import atomic_write
from ..io.native import save_native
from ..model import Sus2Potential
from ..predict import error_metrics, predict


def write_metrics_csv(path: Path, history: list[dict[str, float]]) -> None:
    """The per-epoch metrics as CSV, one row per epoch (nothing is written before the first epoch)."""
    if not history:
        return

    def write(fh) -> None:
        writer = csv.DictWriter(fh, fieldnames=list(history[0]))
        writer.writeheader()
        writer.writerows(history)

    atomic_write(path, write)


def export_run(out: Path, best: Sus2Potential, validated: Sus2Potential, evaluation: list[Atoms],
               history: list[dict[str, float]], report: dict[str, Any], dtype: torch.dtype) -> dict[str, Any]:
    """Write ``best`` (native with its metadata, ``.mtp`` per task) and ``history`` under ``out``, evaluate
    ``validated`` on ``evaluation`` per task (errors into ``report``, parity plots), draw the learning curve and
    write ``report.json``; returns the completed report."""
    from .plots import learning_curve, parity_plot  # matplotlib: imported only when a run ends

    save_native(best, out / "model.pt", best.metadata)
    write_mtp(best.to_mtp(), out / "model.mtp")
    for task in best.tasks:
        write_mtp(best.to_mtp(task), out / f"model_{task}.mtp")
    if best.repulsion is not None:
        report["mtp_files"] = "moment part only: the .mtp format has no place for the repulsive prior (model.pt has it)"
    write_metrics_csv(out / "metrics.csv", history)
    by_task: dict[str | None, list[Atoms]] = {}
    for atoms in evaluation:
        by_task.setdefault(atoms.info.get("task"), []).append(atoms)
    for task, images in by_task.items():
        preds = predict(validated, images, batch_size=32, dtype=dtype, task=task)
        report[f"valid_{task or 'shared'}"] = error_metrics(images, preds)
        parity_plot(images, preds, out / f"parity_{task or 'shared'}.png", title=f"validation ({task or 'shared'})")
    learning_curve(history, out / "learning_curve.png")
    text = json.dumps(report, indent=2)
    atomic_write(out / "report.json", lambda fh: fh.write(text))
    return report
