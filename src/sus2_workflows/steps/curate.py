"""Dataset curation: import labelled data in any reader format, deduplicate by structure hash, drop outliers by
force/energy caps, per-element reference energies (isolated atoms where present, else a composition fit), split."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
from ase import Atoms

from sus2_model.io import read_structures
from sus2_model.train.data import check_labels, dataset_hash, reference_energies, species_of, structure_hash


def deduplicate(images: Sequence[Atoms]) -> list[Atoms]:
    """Drop structures whose canonical hash (geometry and labels) was seen before."""
    seen, unique = set(), []
    for atoms in images:
        digest = structure_hash(atoms)
        if digest not in seen:
            seen.add(digest)
            unique.append(atoms)
    return unique


def drop_outliers(images: Sequence[Atoms], max_force: float = 50.0, max_energy_per_atom: float = 1e3) -> list[Atoms]:
    """Drop labelled structures with absurd forces (eV/Å) or energies (eV/atom): failed or unconverged DFT."""
    kept = []
    for atoms in images:
        results = atoms.calc.results if atoms.calc is not None else {}
        if "forces" in results and np.abs(results["forces"]).max(initial=0) > max_force:
            continue
        if "energy" in results and abs(results["energy"]) / len(atoms) > max_energy_per_atom:
            continue
        kept.append(atoms)
    return kept


def element_references(images: Sequence[Atoms]) -> dict[str, dict[str, float | str]]:
    """Per-element reference energy (eV): the isolated-atom label where the data hold a one-atom non-periodic
    structure of that element, otherwise the least-squares composition fit."""
    species = species_of(images)
    fitted = reference_energies(images, species) if images else []
    refs: dict[str, dict[str, float | str]] = {s: {"energy": float(e), "method": "composition fit"}
                                               for s, e in zip(species, fitted)}
    for atoms in images:
        if len(atoms) == 1 and not atoms.pbc.any():
            refs[atoms.get_chemical_symbols()[0]] = {"energy": float(atoms.get_potential_energy()),
                                                     "method": "isolated atom"}
    return refs


@dataclass
class CuratedTask:
    """One imported dataset (a training task) after curation."""

    task: str
    source: str
    train: list[Atoms]
    test: list[Atoms]
    n_read: int
    n_duplicates: int
    n_outliers: int
    references: dict[str, dict[str, float | str]] = field(default_factory=dict)

    @property
    def dataset_hash(self) -> str:
        return dataset_hash(self.train + self.test)


def curate_dataset(path: str, task: str, species: Sequence[str] | None = None, max_force: float = 50.0,
                   max_energy_per_atom: float = 1e3, test_fraction: float = 0.1, seed: int = 0) -> CuratedTask:
    """Read ``path`` (extxyz, .cfg, ASE db, mlearn JSON, ...), check every label (errors name the structure),
    deduplicate, drop outliers and split off a test set."""
    images = read_structures(path, species=species)
    check_labels(images)
    unique = deduplicate(images)
    kept = drop_outliers(unique, max_force, max_energy_per_atom)
    for atoms in kept:
        atoms.info["task"] = task
    order = np.random.default_rng(seed).permutation(len(kept))
    n_test = int(round(test_fraction * len(kept))) if len(kept) >= 5 else 0
    test = [kept[i] for i in sorted(order[:n_test])]
    train = [kept[i] for i in sorted(order[n_test:])]
    return CuratedTask(task, str(path), train, test, len(images), len(images) - len(unique), len(unique) - len(kept),
                       element_references(kept))
