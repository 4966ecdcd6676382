"""The training loop: L-BFGS (like the authors' BFGS) or Adam/AdamW, closed-form linear refits, EMA, early stopping
and resume from checkpoints.  Initialisation from the data lives in :mod:`.initialise`, checkpoint files in
:mod:`.checkpoints`, the outputs of a run in :mod:`.export`."""

from __future__ import annotations

import copy
import platform
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from ase import Atoms

from .. import __version__
from ..io.native import model_from_record, model_hash, model_record
from ..model import Sus2Potential
from ..predict import resolve_dtype
from . import distributed
from .batches import Minibatch, loss_sums, loss_terms, make_minibatch, split_minibatches
from .checkpoints import TrainState, read_checkpoint, write_checkpoint
from .config import ConfigError, TrainConfig
from .data import dataset_hash, load_datasets, structure_subset
from .export import export_run, write_metrics_csv
from .initialise import init_task_shifts, initial_model
from .linear import MAX_FORCE_ATOMS, fit_linear


class Trainer:
    """Trains a SUS2 model as ``config`` says and writes everything under ``out``."""

    def __init__(self, config: TrainConfig, out: str | Path, resume: bool = False, progress: bool = True) -> None:
        self.started = time.perf_counter()  # max_time bounds the whole run: reading, initial fits, training
        self.config, self.out, self.progress = config, Path(out), progress
        self.out.mkdir(parents=True, exist_ok=True)
        self.dtype = resolve_dtype(config.dtype)
        self.rank, self.world = distributed.setup(config.device)
        if config.threads:
            torch.set_num_threads(config.threads)
        torch.manual_seed(config.seed)
        self.checkpoint_path = self.out / "checkpoint.pt"
        checkpoint = read_checkpoint(self.checkpoint_path) if resume and self.checkpoint_path.exists() else None
        self.train_images, self.valid_images = load_datasets(config)
        self.fit_images = structure_subset(self.train_images, config.subset_atoms, config.seed + 1)
        self.dataset_hash = dataset_hash(self.train_images + self.valid_images)
        if checkpoint is not None:
            if checkpoint["dataset_hash"] != self.dataset_hash:
                raise ConfigError(f"{self.checkpoint_path}: the checkpoint was written for other training data")
            self.model = model_from_record(checkpoint["model"])
            self.best = checkpoint["best"]
            self.state = TrainState(**checkpoint["state"])
        else:
            self.model = initial_model(config, self.train_images)
            self.best = None
            self.state = TrainState()
        if checkpoint is None and not config.init_model:  # data-driven starting point, on the CPU in float64
            fit_start = time.perf_counter()
            self._fit_linear(self.model, self.fit_images)
            self.state.fit_seconds_per_atom = (time.perf_counter() - fit_start) / _fit_atoms(self.fit_images)
            init_task_shifts(self.model, self.fit_images)
        self.model = self.model.to(device=config.device, dtype=self.dtype)
        self.model.chunk_atoms = 1024  # training keeps every chunk's graph anyway: fewer, larger chunks are faster
        self.task_index = {None: -1, **{name: self.model.task_index(name) for name in self.model.tasks}}
        self.valid_batches = self._batches(self.valid_images, 64, np.random.default_rng(0))
        self.optimizer = self._optimizer()
        self.scheduler = self._scheduler()
        if checkpoint is not None:
            self.optimizer.load_state_dict(checkpoint["optimizer"])
            if self.scheduler is not None and checkpoint.get("scheduler"):
                self.scheduler.load_state_dict(checkpoint["scheduler"])
        self.ema = copy.deepcopy(self.model) if config.ema_decay > 0 and config.optimizer != "lbfgs" else None
        self._full_batches: list[Minibatch] | None = None
        self._minibatches: list[Minibatch] | None = None  # Adam's, built once: the structures never move

    # ------------------------------------------------------------------ setup
    def _batches(self, images: list[Atoms], size: int, rng: np.random.Generator) -> list[Minibatch]:
        groups = split_minibatches(images, size, rng) if images else []
        return [make_minibatch(g, self.model, self.task_index).to(self.config.device, self.dtype) for g in groups]

    def _fit_linear(self, model: Sus2Potential, images: list[Atoms]) -> None:
        """Closed-form refit of ``model``'s linear parameters on ``images`` with the training loss's weights."""
        c = self.config
        fit_linear(model, images, c.energy_weight, c.force_weight, c.stress_weight)

    def _optimizer(self) -> torch.optim.Optimizer:
        params = [p for p in self.model.parameters() if p.requires_grad and p.numel()]
        if self.config.optimizer == "lbfgs":
            return torch.optim.LBFGS(params, lr=1.0, max_iter=5, history_size=self.config.lbfgs_history,
                                     line_search_fn="strong_wolfe", tolerance_grad=1e-12, tolerance_change=1e-15)
        cls = torch.optim.AdamW if self.config.optimizer == "adamw" else torch.optim.Adam
        return cls(params, lr=self.config.lr, weight_decay=self.config.weight_decay)

    def _scheduler(self) -> torch.optim.lr_scheduler.LRScheduler | None:
        if self.config.optimizer == "lbfgs" or self.config.schedule == "none":
            return None
        if self.config.schedule == "cosine":
            return torch.optim.lr_scheduler.CosineAnnealingLR(self.optimizer, max(self.config.epochs, 1),
                                                              eta_min=self.config.lr * 0.01)
        return torch.optim.lr_scheduler.ReduceLROnPlateau(self.optimizer, factor=0.5, patience=10)

    # ------------------------------------------------------------------ loss
    def _loss(self, mb: Minibatch, norms: dict[str, float] | None = None, share: float = 1.0) -> torch.Tensor:
        """Weighted loss of ``mb``: its error sums over ``norms`` (default: its own), plus ``share`` of the selective
        L2 penalty on theta_T."""
        c = self.config
        sums, own, _ = loss_sums(self.model, mb, c.force_weight > 0, c.stress_weight > 0)
        norms = norms or own
        weights = {"energy": c.energy_weight, "forces": c.force_weight, "stress": c.stress_weight}
        loss = sum(weights[k] * v / max(norms.get(k, 0.0), 1e-30) for k, v in sums.items())
        if self.model.tasks and c.task_l2 > 0:
            penalty = sum(p.square().sum() for p in self.model.task_parameters()[1:])  # not the shifts
            loss = loss + share * c.task_l2 * penalty
        return loss

    def _full_loss_closure(self) -> Callable[[], torch.Tensor]:
        if self._full_batches is None:
            size = self.config.batch_size * 4  # the same batches for any number of ranks: bitwise-equal sums
            self._full_batches = self._batches(self.fit_images, size, np.random.default_rng(1))
        mine = self._full_batches[self.rank::self.world]
        norms = {  # dataset totals of the weights (see loss_sums)
            "energy": sum(float(mb.weight.sum()) for mb in self._full_batches),
            "forces": 3.0 * sum(float(mb.weight[mb.batch.structure_of_atom].sum()) for mb in self._full_batches),
            "stress": 9.0 * sum(float((mb.weight * mb.has_virial).sum()) for mb in self._full_batches)}
        n_batches = len(self._full_batches)
        params = [p for group in self.optimizer.param_groups for p in group["params"]]
        last: dict[str, Any] = {}  # L-BFGS re-evaluates the point it stopped at whenever a step starts: reuse it

        def closure() -> torch.Tensor:
            point = torch.cat([p.detach().reshape(-1) for p in params])
            if "point" in last and torch.equal(point, last["point"]):
                for p, g in zip(params, last["grads"]):
                    p.grad = None if g is None else g.clone()
                return last["loss"].clone()
            self.optimizer.zero_grad()
            rows = []  # each minibatch's gradient and loss, summed in batch order by every rank alike
            for mb in mine:
                loss = self._loss(mb, norms, share=1.0 / n_batches)
                loss.backward()
                rows.append(distributed.take_batch(params, loss))
            result = torch.tensor(distributed.sum_batches(params, rows, n_batches))
            last.update(point=point, loss=result.clone(),
                        grads=[None if p.grad is None else p.grad.detach().clone() for p in params])
            return result

        return closure

    # ------------------------------------------------------------------ loop
    def run(self) -> dict[str, Any]:
        """Train until ``epochs``, ``max_time`` or early stopping; returns the final report."""
        c = self.config
        start = self.started - self.state.elapsed
        self.state.stopped = ""
        bar = _progress(self.progress and self.rank == 0, c.epochs, self.state.epoch)
        closure = self._full_loss_closure() if c.optimizer == "lbfgs" else None
        refit = c.final_refit and not self.model.tasks and not c.init_model  # a fine-tune keeps its old fit
        reserve = self.state.fit_seconds_per_atom * _fit_atoms(self.train_images + self.valid_images) if refit else 0.0
        while self.state.epoch < c.epochs:
            if time.perf_counter() - start > c.max_time - reserve:
                self.state.stopped = "max_time"
                break
            epoch = self.state.epoch
            if closure is not None:
                train_loss = float(self.optimizer.step(closure))
            else:
                train_loss = self._adam_epoch(epoch)
            if c.linear_refit_every and (epoch + 1) % c.linear_refit_every == 0 and not self.model.tasks:
                self._fit_linear(self.model, self.fit_images)
                if c.optimizer == "lbfgs":  # its curvature history no longer describes the new point
                    self.optimizer.state.clear()
            row = {"epoch": epoch + 1, "train_loss": train_loss, "seconds": round(time.perf_counter() - start, 2),
                   **self.validate()}
            if self.scheduler is not None:
                self.scheduler.step(row["valid_loss"]) if c.schedule == "plateau" else self.scheduler.step()
            self.state.history.append(row)
            self.state.epoch = epoch + 1
            self.state.elapsed = time.perf_counter() - start
            if row["valid_loss"] < self.state.best_loss:
                self.state.best_loss, self.state.bad_epochs = row["valid_loss"], 0
                self.best = model_record(self._eval_model())
            else:
                self.state.bad_epochs += 1
            bar(row)
            if self.state.epoch % c.checkpoint_every == 0:
                self.checkpoint()
                if self.rank == 0:
                    write_metrics_csv(self.out / "metrics.csv", self.state.history)
            if self._stalled(closure is not None):
                break
        bar(None)
        validated = None
        if refit:
            validated = self.best_model()
            self.refit_best(validated)
        self.checkpoint()
        return self.finish(validated)

    def _stalled(self, lbfgs: bool) -> bool:
        """Whether to stop: a non-finite loss, no validation gain for ``patience`` epochs, or L-BFGS returning the
        same loss three epochs running (its line search finds no descent: in float32, rounding noise can swamp the
        gradient near a closed-form optimum of a large model, where float64 gradients are still accurate)."""
        history, c = self.state.history, self.config
        losses = [row["train_loss"] for row in history[-3:]]
        if not np.isfinite(losses[-1]):
            self.state.stopped = "non-finite loss"
        elif self.state.bad_epochs >= c.patience:
            self.state.stopped = "patience"
        elif lbfgs and len(losses) == 3 and losses[0] == losses[1] == losses[2]:
            self.state.stopped = f"L-BFGS made no progress in {c.dtype} (try dtype: float64)"
        return bool(self.state.stopped)

    def refit_best(self, validated: Sus2Potential) -> None:
        """Closed-form refit of the validated model's linear parameters on every labelled structure, training and
        validation: the validation set has chosen the model, and the refit uses all the labels there are (the report
        keeps the validation errors measured before it)."""
        model = copy.deepcopy(validated).to(device=self.config.device, dtype=self.dtype)
        self._fit_linear(model, self.train_images + self.valid_images)
        self.best = model_record(model)

    def _adam_epoch(self, epoch: int) -> float:
        if self._minibatches is None:
            self._minibatches = self._batches(self.fit_images, self.config.batch_size,
                                              np.random.default_rng(self.config.seed))
        order = np.random.default_rng(self.config.seed + epoch).permutation(len(self._minibatches))
        batches = [self._minibatches[i] for i in order]
        total, count = 0.0, 0
        for mb in batches[self.rank::self.world]:
            self.optimizer.zero_grad()
            loss = self._loss(mb)
            loss.backward()
            distributed.average_gradients(self.model)
            self.optimizer.step()
            if self.ema is not None:
                with torch.no_grad():
                    for e, p in zip(self.ema.parameters(), self.model.parameters()):
                        e.lerp_(p, 1.0 - self.config.ema_decay)
            total, count = total + float(loss.detach()), count + 1
        return total / max(count, 1)

    def _eval_model(self) -> Sus2Potential:
        return self.ema if self.ema is not None else self.model

    def validate(self) -> dict[str, float]:
        """Validation loss and errors (the training set's when there is no validation set)."""
        model, c = self._eval_model(), self.config
        batches = self.valid_batches or self._full_batches or self._minibatches or []
        de, df, loss, n = [], [], 0.0, 0
        for mb in batches:
            terms, out = loss_terms(model, mb, True, False, create_graph=False)
            weighted = c.energy_weight * terms["energy"] + c.force_weight * terms["forces"]
            loss += float(weighted.detach()) * len(mb.images)
            n += len(mb.images)
            de.append(((out["energy"] - mb.energy) / mb.n_atoms).detach().cpu().numpy())
            df.append((out["forces"] - mb.forces).detach().cpu().numpy().ravel())
        de, df = np.concatenate(de), np.concatenate(df)
        return {"valid_loss": loss / max(n, 1), "valid_energy_mae_mev_atom": float(np.abs(de).mean() * 1000),
                "valid_force_mae_ev_a": float(np.abs(df).mean())}

    # ------------------------------------------------------------------ outputs
    def metadata(self) -> dict[str, Any]:
        """Provenance stored with the model."""
        return {"sus2_version": __version__, "torch_version": torch.__version__, "python": platform.python_version(),
                "dataset_hash": self.dataset_hash, "n_train": len(self.train_images), "n_valid": len(self.valid_images),
                "config": self.config.to_dict(), "epochs": self.state.epoch,
                "created": time.strftime("%Y-%m-%dT%H:%M:%S")}

    def checkpoint(self) -> None:
        """Write the checkpoint atomically (rank 0 only)."""
        if self.rank == 0:
            write_checkpoint(self.checkpoint_path, self.model, self.best, self.optimizer, self.scheduler, self.state,
                             self.dataset_hash)

    def best_model(self) -> Sus2Potential:
        """The model ``finish`` exports: the best one so far (after the final refit, if there was one)."""
        return model_from_record(self.best) if self.best is not None else self._eval_model()

    def finish(self, validated: Sus2Potential | None = None) -> dict[str, Any]:
        """Export the best model (native + .mtp per task), write metrics CSV, plots and a JSON report; validation
        errors are those of ``validated`` (the model chosen on validation, before a final refit; default: the best)."""
        best = self.best_model()
        best.metadata = self.metadata()
        report: dict[str, Any] = {"parameters": best.parameter_count(), "epochs": self.state.epoch,
                                  "seconds": round(self.state.elapsed, 1), "dataset_hash": self.dataset_hash,
                                  "model_hash": model_hash(best), "stopped": self.state.stopped or "epochs",
                                  "final_refit": validated is not None}
        if self.rank != 0:
            return report
        return export_run(self.out, best, validated if validated is not None else best,
                          self.valid_images or self.train_images, self.state.history, report, self.dtype)


def _fit_atoms(images: list[Atoms]) -> int:
    """Force rows (atoms) a closed-form fit of ``images`` uses."""
    return min(sum(len(a) for a in images), MAX_FORCE_ATOMS)


def _progress(enabled: bool, total: int, done: int) -> Callable[[dict[str, float] | None], None]:
    """A rich progress bar with live metrics; returns an update function (``None`` closes it)."""
    if not enabled:
        return lambda row: None
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    bar = Progress(TextColumn("training"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                   TimeElapsedColumn(), TextColumn("{task.fields[metrics]}"))
    task = bar.add_task("train", total=total, completed=done, metrics="")
    bar.start()

    def update(row: dict[str, float] | None) -> None:
        if row is None:
            bar.stop()
            return
        bar.update(task, completed=row["epoch"],
                   metrics=f"loss {row['train_loss']:.3e}  E {row['valid_energy_mae_mev_atom']:.2f} meV/at  "
                           f"F {row['valid_force_mae_ev_a']:.4f} eV/Å")

    return update


def train(config: TrainConfig, out: str | Path, resume: bool = False, progress: bool = True) -> dict[str, Any]:
    """Train a SUS2 model; see :class:`Trainer`."""
    return Trainer(config, out, resume=resume, progress=progress).run()
