"""Dataset curation: import labelled data in any reader format, deduplicate by structure hash, drop outliers by
force/energy caps, per-element reference energies (isolated atoms where present, else a composition fit), split."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
from ase import Atoms

from sus2_model.io import read_structures
from sus2_model.train.data import check_labels, dataset_hash, reference_energies, species_of, structure_hash

from ..spec import CurationSpec


def deduplicate(images: Sequence[Atoms]) -> list[Atoms]:
    """Drop structures whose canonical hash (geometry and labels) was seen before."""
    seen, unique = set(), []
    for atoms in images:
        digest = structure_hash(atoms)
        if digest not in seen:
            seen.add(digest)
            unique.append(atoms)
    return unique


def drop_outliers(images: Sequence[Atoms], caps: CurationSpec) -> list[Atoms]:
    """Drop labelled structures with non-finite labels, forces (eV/Å) beyond ``caps``, or an energy further than
    ``caps.max_energy_per_atom`` (eV/atom) from what the composition fit of the *other* labels predicts for it:
    failed or unconverged DFT.  (A total DFT energy per atom depends on the pseudopotential — thousands of eV for
    Cu — so the cap is on what composition does not explain.)  The worst label goes first and the fit is redone; a
    label whose composition the others cannot predict (its element appears nowhere else) cannot be judged and stays."""
    kept = []
    for atoms in images:
        results = atoms.calc.results if atoms.calc is not None else {}
        forces = np.asarray(results.get("forces", np.zeros((0, 3))))
        energy = results.get("energy", 0.0)
        if np.all(np.isfinite(forces)) and np.abs(forces).max(initial=0) <= caps.max_force and np.isfinite(energy):
            kept.append(atoms)
    labelled = [a for a in kept if a.calc is not None and "energy" in a.calc.results]
    while labelled:
        unexplained = _leave_one_out_residuals(labelled)
        worst = int(np.nanargmax(unexplained)) if np.isfinite(unexplained).any() else 0
        if not unexplained[worst] > caps.max_energy_per_atom:
            break
        dropped = labelled.pop(worst)
        kept = [a for a in kept if a is not dropped]
    return kept


def _leave_one_out_residuals(images: Sequence[Atoms]) -> np.ndarray:
    """|E - prediction of the composition fit without that structure| per atom (closed form r / (1 - h) with the
    leverage h of the least-squares fit); NaN where the others cannot predict it (h = 1)."""
    species = species_of(images)
    counts = np.array([[a.get_chemical_symbols().count(s) for s in species] for a in images], float)
    energies = np.array([a.get_potential_energy() for a in images])
    pinv = np.linalg.pinv(counts)
    residuals = energies - counts @ (pinv @ energies)
    leverage = np.einsum("ij,ji->i", counts, pinv)
    free = 1.0 - leverage
    loo = np.full(len(images), np.nan)
    judged = free > 1e-8
    loo[judged] = np.abs(residuals[judged] / free[judged]) / counts[judged].sum(axis=1)
    return loo


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


def curate_dataset(path: str, task: str, species: Sequence[str] | None = None,
                   curation: CurationSpec = CurationSpec(), seed: int = 0) -> CuratedTask:
    """Read ``path`` (extxyz, .cfg, ASE db, mlearn JSON, ...), check every label (errors name the structure),
    deduplicate, drop outliers beyond ``curation``'s caps and split off its test fraction."""
    images = read_structures(path, species=species)
    check_labels(images)
    unique = deduplicate(images)
    kept = drop_outliers(unique, curation)
    for atoms in kept:
        atoms.info["task"] = task
    order = np.random.default_rng(seed).permutation(len(kept))
    n_test = int(round(curation.test_fraction * len(kept))) if len(kept) >= 5 else 0
    test = [kept[i] for i in sorted(order[:n_test])]
    train = [kept[i] for i in sorted(order[n_test:])]
    return CuratedTask(task, str(path), train, test, len(images), len(images) - len(unique), len(unique) - len(kept),
                       element_references(kept))
