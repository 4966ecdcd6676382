"""Batched evaluation of many structures, and the error metrics printed by ``sus2 eval``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import torch
from ase import Atoms
from ase.stress import full_3x3_to_voigt_6_stress
from ase.units import GPa

from .model import Sus2Potential
from .neighbors import build_batch
from .species import default_species_file, parse_species

DTYPES = {"float64": torch.float64, "float32": torch.float32}
EV_A3_TO_GPA = 1.0 / GPa  # stress unit conversion, from ASE's units


def resolve_dtype(dtype: str | torch.dtype) -> torch.dtype:
    """``"float32"``/``"float64"`` or a torch dtype -> torch dtype."""
    if isinstance(dtype, torch.dtype):
        return dtype
    try:
        return DTYPES[str(dtype)]
    except KeyError:
        raise ValueError(f"dtype must be one of {sorted(DTYPES)}, got {dtype!r}") from None


def load_model(model: str | Path | Sus2Potential, species: str | Sequence[str] | None = None) -> Sus2Potential:
    """A model from an ``.mtp`` or native ``.pt`` path, or an existing module.

    ``species`` (list, 'A,B', or a file) names the types; without it, a native file's own list or a
    ``species.json`` next to the ``.mtp`` file is used.
    """
    if isinstance(model, Sus2Potential):
        if species is not None:
            model.species = parse_species(species)
        return model
    path = Path(model)
    if path.suffix == ".pt":
        from .io.native import load_native

        loaded = load_native(path)
        if species is not None:
            loaded.species = parse_species(species)
        return loaded
    symbols = parse_species(species) if species is not None else parse_species(default_species_file(path))
    return Sus2Potential.from_file(path, symbols)


@dataclass
class Prediction:
    """Model outputs for one structure: energy (eV), forces (eV/Å), stress (eV/Å³, Voigt xx yy zz yz xz xy; ``None``
    unless requested and periodic in all three directions) and per-atom energies (eV)."""

    energy: float
    forces: np.ndarray
    stress: np.ndarray | None
    energies: np.ndarray


def evaluate(model: Sus2Potential, images: Sequence[Atoms], task_index: int = -1, stress: bool = True,
             names: Sequence[str] | None = None) -> list[Prediction]:
    """One model call on ``images`` (the model already on its device and in its dtype), on the surface of task
    ``task_index`` (-1: shared); stress only where requested and the cell is periodic in all three directions.
    ``names`` label the structures in errors."""
    device, dtype = model.shift.device, model.shift.dtype
    batch = build_batch(images, model.r_cut, model.species_index, model.min_distance, names,
                        [task_index] * len(images)).to(device, dtype)
    out = model(batch, forces=True, stress=stress)
    owner = batch.structure_of_atom.cpu().numpy()
    forces = out["forces"].detach().cpu().double().numpy()
    energies = out["energies"].detach().cpu().double().numpy()
    totals = out["energy"].detach().cpu().double().numpy()
    voigt = full_3x3_to_voigt_6_stress(out["stress"].detach().cpu().double().numpy()) if stress else None
    results = []
    for k, atoms in enumerate(images):
        sel = owner == k
        periodic = stress and bool(np.asarray(atoms.pbc).all())
        results.append(Prediction(float(totals[k]), forces[sel], voigt[k] if periodic else None, energies[sel]))
    return results


def predict(model: Sus2Potential, images: Sequence[Atoms], batch_size: int = 32, device: str = "cpu",
            dtype: str | torch.dtype = "float64", stress: bool = True, progress: bool = False,
            task: str | None = None) -> list[Prediction]:
    """Evaluate many structures, ``batch_size`` at a time, in one model call per batch (on ``task``'s surface)."""
    dtype = resolve_dtype(dtype)
    task_index = model.task_index(task)
    model = model.to(device=device, dtype=dtype)
    results: list[Prediction] = []
    starts = range(0, len(images), batch_size)
    if progress:
        from rich.progress import track

        starts = track(starts, description="evaluating", total=len(starts))
    for start in starts:
        chunk = images[start:start + batch_size]
        names = [a.info.get("source", f"structure {start + k}") for k, a in enumerate(chunk)]
        results += evaluate(model, chunk, task_index, stress, names)
    return results


def error_metrics(images: Sequence[Atoms], predictions: Iterable[Prediction]) -> dict[str, float | int]:
    """Energy (meV/atom), force (eV/Å) and stress (GPa) errors against the labels each structure carries."""
    de, df, ds = [], [], []
    n_atoms = 0
    for atoms, pred in zip(images, predictions):
        n_atoms += len(atoms)
        labels = atoms.calc.results if atoms.calc is not None else {}
        if "energy" in labels:
            de.append((pred.energy - labels["energy"]) / len(atoms) * 1000.0)
        if "forces" in labels:
            df.append((pred.forces - labels["forces"]).ravel())
        if "stress" in labels and pred.stress is not None:
            ds.append((pred.stress - np.asarray(labels["stress"]).reshape(-1)[:6]) * EV_A3_TO_GPA)
    metrics: dict[str, float | int] = {"n_structures": len(images), "n_atoms": n_atoms}
    if de:
        e = np.array(de)
        metrics |= {"energy_mae_mev_atom": float(np.abs(e).mean()),
                    "energy_rmse_mev_atom": float(np.sqrt((e**2).mean()))}
    if df:
        f = np.concatenate(df)
        metrics |= {"force_mae_ev_a": float(np.abs(f).mean()), "force_rmse_ev_a": float(np.sqrt((f**2).mean()))}
    if ds:
        metrics["stress_mae_gpa"] = float(np.abs(np.concatenate(ds)).mean())
    return metrics
