"""Structures as JSON documents and the result documents of a campaign (every one with provenance)."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator
from pydantic import BaseModel, Field


def code_versions() -> dict[str, str]:
    """Versions of the codes that produced a result."""
    from importlib.metadata import PackageNotFoundError, version

    from sus2_model import __version__

    out = {"sus2": __version__}
    for name in ("torch", "ase", "jobflow", "atomate2", "maggma", "pymatgen"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            pass
    return out


class Provenance(BaseModel):
    """Who made a document, from what."""

    created: str = Field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%S"))
    code_versions: dict[str, str] = Field(default_factory=code_versions)
    inputs: dict[str, Any] = {}


def atoms_to_dict(atoms: Atoms) -> dict[str, Any]:
    """Positions, cell, labels and info of a structure as plain JSON values (full float precision)."""
    doc: dict[str, Any] = {"numbers": atoms.numbers.tolist(), "positions": atoms.positions.tolist(),
                           "cell": atoms.cell.array.tolist(), "pbc": atoms.pbc.tolist(),
                           "info": {k: v for k, v in atoms.info.items() if isinstance(v, (str, int, float, bool))}}
    if atoms.calc is not None:
        for key in ("energy", "forces", "stress"):
            if key in atoms.calc.results:
                value = atoms.calc.results[key]
                doc[key] = value.tolist() if isinstance(value, np.ndarray) else float(value)
    return doc


def atoms_from_dict(doc: dict[str, Any]) -> Atoms:
    """Inverse of :func:`atoms_to_dict`."""
    atoms = Atoms(numbers=doc["numbers"], positions=doc["positions"], cell=doc["cell"], pbc=doc["pbc"])
    atoms.info.update(doc.get("info", {}))
    labels = {k: (np.array(doc[k]) if k != "energy" else doc[k]) for k in ("energy", "forces", "stress") if k in doc}
    if labels:
        atoms.calc = SinglePointCalculator(atoms, **labels)
    return atoms


class DatasetDocument(BaseModel):
    """A labelled dataset (the structures go to the ``data`` store)."""

    dataset_hash: str
    n_structures: int
    n_atoms: int
    labeler: str
    labeler_settings: dict[str, Any]
    failed: list[dict[str, str]] = []
    n_computed: int = 0  # labels computed by this job (the rest came from the cache)
    structures: list[dict[str, Any]]
    provenance: Provenance = Field(default_factory=Provenance)


class CuratedTaskDocument(BaseModel):
    """One imported dataset after curation (its structures go to the ``data`` store)."""

    task: str
    source: str
    source_sha256: str
    dataset_hash: str
    n_read: int
    n_duplicates: int
    n_outliers: int
    n_train: int
    n_test: int
    references: dict[str, dict[str, Any]]
    train_structures: list[dict[str, Any]]
    test_structures: list[dict[str, Any]]


class CuratedDatasetDocument(BaseModel):
    """Every imported dataset, curated with the same settings."""

    dataset_hash: str
    tasks: list[CuratedTaskDocument]
    settings: dict[str, Any]
    provenance: Provenance = Field(default_factory=Provenance)


class DbsDocument(BaseModel):
    """A domain-bridging set chosen from the imported tasks, to be relabelled by the campaign's labeler."""

    dbs_hash: str
    source_dataset_hash: str
    n_source: int
    method: str
    settings: dict[str, Any]
    picks: list[dict[str, Any]]  # task, index in that task's training set, structure hash
    structures: list[dict[str, Any]]
    provenance: Provenance = Field(default_factory=Provenance)


class ModelDocument(BaseModel):
    """A trained model: where it is, what it was trained on and how well it does."""

    model_path: str
    model_hash: str
    dataset_hash: str
    training_config: dict[str, Any]
    metrics: dict[str, Any]
    parameters: int
    task: str | None = None  # the task the campaign's calculators use (None: the shared surface)
    source_dataset_hash: str | None = None
    test_metrics: dict[str, Any] = {}  # held-out imported data, per task
    provenance: Provenance = Field(default_factory=Provenance)


class ActiveLearningDocument(BaseModel):
    """One active-learning iteration."""

    iteration: int
    model_hash: str
    n_explored: int
    grades: list[float]
    selected_hashes: list[str]
    labeler_settings: dict[str, Any]
    converged: bool
    provenance: Provenance = Field(default_factory=Provenance)


class EosDocument(BaseModel):
    """A screening result: the SUS2 equation of state of one structure."""

    formula: str
    prototype: str
    structure_hash: str
    model_hash: str
    volumes: list[float]
    energies: list[float]
    v0: float
    e0: float
    b0_gpa: float
    b1: float
    provenance: Provenance = Field(default_factory=Provenance)
