"""The native model file (``.pt``): parameters, tables, species, tasks and provenance metadata.

Written with ``torch.save`` from plain containers and tensors only and read with ``torch.load(weights_only=True)``,
so loading never unpickles arbitrary objects.  Writes are atomic (temporary file + rename).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import FileFormatError
from .mtp import MtpFile

FORMAT = "sus2-native"
VERSION = 1
_ARRAYS = ("alpha_index_basic", "alpha_index_times", "alpha_moment_mapping", "shift_coeffs", "scal_coeffs",
           "radial_coeffs", "species_coeffs", "moment_coeffs")
_SCALARS = ("species_count", "L", "scaling_map", "min_dist", "max_dist", "radial_basis_size", "radial_funcs_count",
            "alpha_moments_count", "potential_name", "potential_tag", "scaling", "radial_basis_type")


def atomic_torch_save(obj: Any, path: str | Path) -> None:
    """``torch.save`` to a temporary file in the same folder, fsync, then rename over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        torch.save(obj, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def model_record(model, metadata: dict[str, Any] | None = None) -> dict[str, Any]:
    """A :class:`Sus2Potential` as plain containers and tensors (what native files and checkpoints store): a copy,
    never a view of the live parameters (training keeps the best epoch's record while it goes on)."""
    mtp = model.to_mtp()
    scalars = {k: (v.item() if isinstance(v, np.generic) else v) for k, v in ((k, getattr(mtp, k)) for k in _SCALARS)}
    return {
        "format": FORMAT,
        "version": VERSION,
        "mtp": {**scalars, **{k: torch.as_tensor(getattr(mtp, k)) for k in _ARRAYS}},
        "species": list(model.species) if model.species is not None else None,
        "tasks": list(model.tasks),
        "task_params": {name: p.detach().cpu().double().clone() for name, p in
                        zip(("task_shift", "task_scale", "task_moments", "task_r0"), model.task_parameters())},
        # the training parametrisation: moment coefficients relative to the descriptor multipliers (the .mtp
        # record holds their product), so that a checkpoint resumes in the coordinates its optimiser state uses
        "moment_scale": model.moment_scale.detach().cpu().double().clone(),
        "moment_coeffs": model.moment_coeffs.detach().cpu().double().clone(),
        "metadata": json.loads(json.dumps(metadata or {}, default=str)),  # plain JSON types only
    }


def save_native(model, path: str | Path, metadata: dict[str, Any] | None = None) -> None:
    """Write a :class:`Sus2Potential` with its task parameters and ``metadata`` (JSON-like values), atomically."""
    atomic_torch_save(model_record(model, metadata if metadata is not None else getattr(model, "metadata", {})), path)


def read_native(path: str | Path) -> dict[str, Any]:
    """The raw record of a native file (checked), loaded with ``weights_only=True``."""
    try:
        record = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for corrupt or foreign files
        raise FileFormatError(path, None, f"not a readable SUS2 model file: {exc}") from None
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise FileFormatError(path, None, f"not a {FORMAT} file")
    if record.get("version", 0) > VERSION:
        raise FileFormatError(path, None, f"written by a newer sus2 (format version {record['version']})")
    return record


def load_native(path: str | Path):
    """A :class:`Sus2Potential` from a native file (``model.metadata`` holds its provenance)."""
    return model_from_record(read_native(path))


def model_from_record(record: dict[str, Any]):
    """Inverse of :func:`model_record`."""
    from ..model import Sus2Potential

    raw = record["mtp"]
    mtp = MtpFile(**{k: raw[k] for k in _SCALARS}, **{k: np.asarray(raw[k].numpy()) for k in _ARRAYS})
    model = Sus2Potential(mtp, record["species"])
    for name in record["tasks"]:
        model.add_task(name)
    with torch.no_grad():
        for name, value in record["task_params"].items():
            getattr(model, name).copy_(value)
        if "moment_scale" in record:
            model.moment_scale.copy_(record["moment_scale"])
            model.moment_coeffs.copy_(record["moment_coeffs"])
    model.metadata = record["metadata"]
    return model
