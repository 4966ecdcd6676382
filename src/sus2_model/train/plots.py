"""Learning curves and parity plots (matplotlib, PNG)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ..io.atomic import atomic_path  # noqa: E402


def learning_curve(history: Sequence[dict[str, float]], path: Path) -> None:
    """Training loss and validation errors against epoch."""
    if not history:
        return
    epoch = [h["epoch"] for h in history]
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.5))
    axes[0].semilogy(epoch, [h["train_loss"] for h in history])
    axes[0].set(xlabel="epoch", ylabel="training loss")
    axes[1].semilogy(epoch, [h["valid_energy_mae_mev_atom"] for h in history])
    axes[1].set(xlabel="epoch", ylabel="validation energy MAE (meV/atom)")
    axes[2].semilogy(epoch, [h["valid_force_mae_ev_a"] for h in history])
    axes[2].set(xlabel="epoch", ylabel="validation force MAE (eV/Å)")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120)
    plt.close(fig)


def parity_plot(images, predictions, path: Path, title: str = "") -> None:
    """Predicted against reference energies (per atom) and force components."""
    e_ref = np.array([a.get_potential_energy() / len(a) for a in images])
    e_pred = np.array([p.energy / len(a) for a, p in zip(images, predictions)])
    f_ref = np.concatenate([a.get_forces().ravel() for a in images])
    f_pred = np.concatenate([p.forces.ravel() for p in predictions])
    fig, axes = plt.subplots(1, 2, figsize=(9, 4))
    for ax, ref, pred, label in ((axes[0], e_ref, e_pred, "energy (eV/atom)"), (axes[1], f_ref, f_pred, "force (eV/Å)")):
        lo, hi = float(min(ref.min(), pred.min())), float(max(ref.max(), pred.max()))
        ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
        ax.scatter(ref, pred, s=4, alpha=0.6)
        mae = np.abs(pred - ref).mean()
        ax.set(xlabel=f"reference {label}", ylabel=f"SUS2 {label}", title=f"MAE {mae:.4g}")
    fig.suptitle(title)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120)
    plt.close(fig)
