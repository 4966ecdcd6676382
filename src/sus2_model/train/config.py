"""Training configuration: defaults that need no file for a single dataset, YAML for the rest."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from ..errors import Sus2ModelError
from ..moments import MAX_DEGREE


class ConfigError(Sus2ModelError, ValueError):
    """A training configuration names an unknown key or holds a bad value."""


@dataclass
class DatasetEntry:
    """One labelled dataset; ``task`` names its training domain (None: the shared surface)."""

    path: str
    task: str | None = None
    weight: float = 1.0
    species: list[str] | None = None  # type -> element, for .cfg files


@dataclass
class TrainConfig:
    """Everything ``sus2 train`` needs; every field has a default except the training data."""

    train: list[DatasetEntry]
    valid: list[DatasetEntry] = field(default_factory=list)
    valid_fraction: float = 0.1
    # model (ignored when fine-tuning ``init_model``)
    init_model: str | None = None
    max_rank: int = 5
    n_radial: int = 5
    max_level: int = 30
    radial_basis_size: int = 8
    cutoff: float = 5.5
    scaling_map: str = "K"
    repulsion: bool = True  # ZBL prior below each pair's shortest training distance (sus2_model.repulsion); kept and
    # only ever lowered when fine-tuning
    # loss
    energy_weight: float = 2.0
    force_weight: float = 0.02
    stress_weight: float = 0.001
    task_l2: float = 3e-6  # selective L2 on theta_T (all but the per-task shifts)
    # optimisation
    optimizer: str = "lbfgs"  # lbfgs | adam | adamw
    lbfgs_history: int = 1000  # curvature pairs kept: with a few hundred parameters, close to full BFGS
    lr: float = 0.001  # adam/adamw; larger rates undo the closed-form starting point
    weight_decay: float = 0.0
    schedule: str = "cosine"  # cosine | plateau | none (adam/adamw)
    epochs: int = 400
    batch_size: int = 16
    ema_decay: float = 0.0  # adam/adamw; 0 disables
    linear_refit_every: int = 0  # epochs; 0 disables periodic closed-form refits
    subset_atoms: int = 0  # training (gradient steps and fits) sees a fixed random subset of the training structures
    # of about this many atoms (0: all); the final refit sees all the data
    final_refit: bool = True  # closed-form refit of the validated model's linear parameters on every label, training
    # and validation (not for multi-task models or fine-tuning)
    patience: int = 60
    max_time: float = 540.0  # seconds, from start (reading and initial fits included) to the last epoch
    seed: int = 0
    dtype: str = "float32"  # training arithmetic (2.6x faster than float64 on CPU); models are saved in float64
    device: str = "cpu"
    checkpoint_every: int = 5  # epochs
    threads: int = 0  # torch threads; 0 = torch's default

    def __post_init__(self) -> None:
        self.train = [e if isinstance(e, DatasetEntry) else _entry(e, "train") for e in self.train]
        self.valid = [e if isinstance(e, DatasetEntry) else _entry(e, "valid") for e in self.valid]
        if not self.train:
            raise ConfigError("train: at least one dataset is required")
        checks = {
            "optimizer": self.optimizer in ("lbfgs", "adam", "adamw"),
            "schedule": self.schedule in ("cosine", "plateau", "none"),
            "dtype": self.dtype in ("float32", "float64"),
            "scaling_map": self.scaling_map in ("K", "L", "LK"),
            "max_rank": 0 <= self.max_rank <= MAX_DEGREE,
            "valid_fraction": 0.0 <= self.valid_fraction < 1.0,
            "cutoff": self.cutoff > 1.0,
            "epochs": self.epochs >= 0,
            "batch_size": self.batch_size >= 1,
            "lbfgs_history": self.lbfgs_history >= 1,
            "subset_atoms": self.subset_atoms >= 0,
            "energy_weight": self.energy_weight >= 0,
            "force_weight": self.force_weight >= 0,
            "stress_weight": self.stress_weight >= 0,
        }
        for key, ok in checks.items():
            if not ok:
                raise ConfigError(f"{key}: invalid value {getattr(self, key)!r}")

    @property
    def tasks(self) -> list[str]:
        """Task names in order of first appearance."""
        names: list[str] = []
        for e in self.train + self.valid:
            if e.task is not None and e.task not in names:
                names.append(e.task)
        return names

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (for metadata and checkpoints)."""
        return asdict(self)


def _entry(raw: Any, where: str) -> DatasetEntry:
    if isinstance(raw, str):
        return DatasetEntry(path=raw)
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: a dataset is a path or a mapping with 'path', got {raw!r}")
    known = {f.name for f in fields(DatasetEntry)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ConfigError(f"{where}: unknown dataset key {unknown[0]!r} (known: {sorted(known)})")
    if "path" not in raw:
        raise ConfigError(f"{where}: dataset entry without 'path'")
    return DatasetEntry(**raw)


def load_config(path: str | Path | None = None, **overrides: Any) -> TrainConfig:
    """Read a YAML config (optional) and apply ``overrides`` (e.g. from the command line; None values ignored)."""
    raw: dict[str, Any] = {}
    if path is not None:
        try:
            raw = yaml.safe_load(Path(path).read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"{path}: cannot read YAML: {exc}") from None
        if not isinstance(raw, dict):
            raise ConfigError(f"{path}: the config must be a mapping")
    raw.update({k: v for k, v in overrides.items() if v is not None})
    known = {f.name for f in fields(TrainConfig)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ConfigError(f"{path or 'config'}: unknown key {unknown[0]!r}")
    for key in ("train", "valid"):
        if isinstance(raw.get(key), (str, dict)):
            raw[key] = [raw[key]]
    try:
        return TrainConfig(**raw)
    except TypeError as exc:
        raise ConfigError(f"{path or 'config'}: {exc}") from None
