"""The native model file (``.pt``): parameters, tables, species, tasks and provenance metadata.

Written with ``torch.save`` from plain containers and tensors only and read with ``torch.load(weights_only=True)``,
so loading never unpickles arbitrary objects.  Writes are atomic (temporary file + rename).  :func:`model_hash`
identifies a model by its content alone.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ..errors import FileFormatError
from .atomic import atomic_write
from .mtp import MtpFile

if TYPE_CHECKING:  # the model module imports this package: no import at run time
    from ..model import Sus2Potential

FORMAT = "sus2-native"
VERSION = 2  # 2: the repulsive prior
_ARRAYS = ("alpha_index_basic", "alpha_index_times", "alpha_moment_mapping", "shift_coeffs", "scal_coeffs",
           "radial_coeffs", "species_coeffs", "moment_coeffs")
_SCALARS = ("species_count", "L", "scaling_map", "min_dist", "max_dist", "radial_basis_size", "radial_funcs_count",
            "alpha_moments_count", "potential_name", "potential_tag", "scaling", "radial_basis_type")


def atomic_torch_save(obj: Any, path: str | Path) -> None:
    """``torch.save`` through :func:`~sus2_model.io.atomic.atomic_write`: temporary file, fsync, rename."""
    atomic_write(path, lambda fh: torch.save(obj, fh), mode="wb")


def load_record(path: str | Path, kind: str, unreadable: str, foreign: str) -> dict[str, Any]:
    """The dict :func:`atomic_torch_save` wrote to ``path``, loaded with ``weights_only=True`` (never unpickling
    arbitrary objects).  :class:`FileFormatError` with the message ``unreadable`` (and torch's reason) when it does
    not load, with ``foreign`` when it is no dict of format ``kind``."""
    try:
        record = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for corrupt or foreign files
        raise FileFormatError(path, None, f"{unreadable}: {exc}") from None
    if not isinstance(record, dict) or record.get("format") != kind:
        raise FileFormatError(path, None, foreign)
    return record


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
        "repulsion": None if model.repulsion is None else model.repulsion.onsets.detach().cpu().double().clone(),
        "metadata": json.loads(json.dumps(metadata or {}, default=str)),  # plain JSON types only
    }


def save_native(model, path: str | Path, metadata: dict[str, Any] | None = None) -> None:
    """Write a :class:`Sus2Potential` with its task parameters and ``metadata`` (JSON-like values), atomically."""
    atomic_torch_save(model_record(model, metadata if metadata is not None else getattr(model, "metadata", {})), path)


def read_native(path: str | Path) -> dict[str, Any]:
    """The raw record of a native file (checked), loaded with ``weights_only=True``."""
    record = load_record(path, FORMAT, "not a readable SUS2 model file", f"not a {FORMAT} file")
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
    if record.get("repulsion") is not None:
        model.set_repulsion(record["repulsion"].numpy())
    model.metadata = record["metadata"]
    return model


def model_hash(model: Sus2Potential) -> str:
    """SHA-256 (hex) of a :class:`Sus2Potential`'s content: species, task names, hyperparameters, contraction tables
    and every parameter and buffer, as little-endian float64 bytes in a fixed (sorted) order.

    Metadata, paths, times and the device are not content (a float32 model hashes as its values widened to
    float64): a model and its :func:`save_native` copy, or two identical training runs in different folders, have
    the same hash; any changed coefficient changes it."""
    h = hashlib.sha256()
    header = {"species": model.species, "tasks": list(model.tasks), "r_cut": model.r_cut,
              "radial_basis_size": model.radial_basis_size, "species_count": model.species_count,
              "hyper": {k: (v.item() if isinstance(v, np.generic) else v) for k, v in model.hyper.items()}}
    h.update(json.dumps(header, sort_keys=True).encode())
    mtp = model.to_mtp()
    arrays = {f"table.{name}": getattr(mtp, name) for name in ("alpha_index_basic", "alpha_index_times",
                                                                "alpha_moment_mapping")}
    arrays |= {name: t.detach().cpu().double().numpy() for name, t in model.state_dict().items()}
    for name in sorted(arrays):
        value = (np.asarray(arrays[name], dtype=np.float64) + 0.0).astype("<f8")  # -0.0 -> 0.0, as records add 0.0
        h.update(f"{name}{list(value.shape)}".encode() + value.tobytes())
    return h.hexdigest()
