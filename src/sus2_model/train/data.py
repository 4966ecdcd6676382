"""Training data: reading the configured datasets, label checks that name the bad structure, a canonical dataset
hash, statistics for initialisation."""

from __future__ import annotations

import hashlib
from typing import Sequence

import numpy as np
from ase import Atoms
from ase.data import atomic_numbers

from ..errors import StructureError
from ..io import read_structures
from ..neighbors import neighbour_pairs
from .config import ConfigError, DatasetEntry, TrainConfig


def _name(atoms: Atoms, index: int) -> str:
    return atoms.info.get("source", f"structure {index}")


def load_datasets(config: TrainConfig, species: list[str] | None = None) -> tuple[list[Atoms], list[Atoms]]:
    """Read and check the train/valid data; each structure carries ``info['task']`` and ``info['weight']``."""
    known = set(config.tasks)

    def read(entries: list[DatasetEntry]) -> list[Atoms]:
        images = []
        for entry in entries:
            if entry.task is not None and entry.task not in known:
                raise ConfigError(f"{entry.path}: unknown task name {entry.task!r}")
            part = read_structures(entry.path, species=entry.species or species)
            for atoms in part:
                atoms.info["task"], atoms.info["weight"] = entry.task, float(entry.weight)
            images += part
        return images

    train, valid = read(config.train), read(config.valid)
    need_forces = config.force_weight > 0
    check_labels(train, need_forces)
    check_labels(valid, need_forces)
    if not valid and config.valid_fraction > 0 and len(train) >= 5:
        order = np.random.default_rng(config.seed).permutation(len(train))
        n_valid = max(1, int(round(config.valid_fraction * len(train))))
        valid = [train[i] for i in order[:n_valid]]
        train = [train[i] for i in order[n_valid:]]
    return train, valid


def structure_subset(images: Sequence[Atoms], atoms: int, seed: int) -> list[Atoms]:
    """A fixed random subset of ``images`` holding about ``atoms`` atoms, in their order; ``images`` itself when
    they hold no more than that (or ``atoms`` is 0)."""
    if atoms <= 0 or sum(len(a) for a in images) <= atoms:
        return images
    order = np.random.default_rng(seed).permutation(len(images))
    sizes = np.cumsum([len(images[i]) for i in order])
    return [images[i] for i in sorted(order[: max(1, int(np.searchsorted(sizes, atoms)) + 1)])]


def check_labels(images: Sequence[Atoms], need_forces: bool = True) -> None:
    """Raise :class:`StructureError` naming the first structure with missing, NaN or mis-shaped labels."""
    for k, atoms in enumerate(images):
        where = _name(atoms, k)
        results = atoms.calc.results if atoms.calc is not None else {}
        if "energy" not in results:
            raise StructureError(f"{where}: no energy label")
        if not np.isfinite(results["energy"]):
            raise StructureError(f"{where}: energy label is NaN or infinite")
        if need_forces:
            if "forces" not in results:
                raise StructureError(f"{where}: no force labels (set force_weight: 0 to train on energies only)")
            forces = np.asarray(results["forces"])
            if forces.shape != (len(atoms), 3):
                raise StructureError(f"{where}: {forces.shape[0]} force rows for {len(atoms)} atoms")
            if not np.all(np.isfinite(forces)):
                raise StructureError(f"{where}: force labels contain NaN or infinite values")
        if "stress" in results and not np.all(np.isfinite(results["stress"])):
            raise StructureError(f"{where}: stress label contains NaN or infinite values")
        if not np.all(np.isfinite(atoms.positions)):
            raise StructureError(f"{where}: positions contain NaN or infinite values")


def structure_hash(atoms: Atoms) -> str:
    """SHA-256 of a structure and its labels in a canonical form (rounded, order of atoms kept)."""
    h = hashlib.sha256()
    h.update(np.asarray(atoms.numbers, dtype=np.int64).tobytes())
    h.update(np.round(atoms.positions, 8).tobytes())
    h.update(np.round(atoms.cell.array, 8).tobytes())
    h.update(np.asarray(atoms.pbc, dtype=np.int8).tobytes())
    results = atoms.calc.results if atoms.calc is not None else {}
    for key in ("energy", "forces", "stress"):
        if key in results:
            h.update(key.encode() + np.round(np.asarray(results[key], dtype=float), 8).tobytes())
    return h.hexdigest()


def dataset_hash(images: Sequence[Atoms]) -> str:
    """Order-independent SHA-256 of a dataset (the sorted hashes of its structures)."""
    h = hashlib.sha256()
    for digest in sorted(structure_hash(a) for a in images):
        h.update(digest.encode())
    return h.hexdigest()


def species_of(images: Sequence[Atoms]) -> list[str]:
    """The elements present, ordered by atomic number."""
    symbols = {s for a in images for s in a.get_chemical_symbols()}
    return sorted(symbols, key=atomic_numbers.get)


def reference_energies(images: Sequence[Atoms], species: Sequence[str]) -> np.ndarray:
    """Per-element energies (eV) from a least-squares fit of total energies on composition."""
    index = {s: i for i, s in enumerate(species)}
    counts = np.zeros((len(images), len(species)))
    for k, atoms in enumerate(images):
        for s in atoms.get_chemical_symbols():
            counts[k, index[s]] += 1
    energies = np.array([a.get_potential_energy() for a in images])
    return np.linalg.lstsq(counts, energies, rcond=None)[0]


def nearest_neighbour_stats(images: Sequence[Atoms], species: Sequence[str], cutoff: float
                            ) -> dict[tuple[int, int], tuple[float, float, float]]:
    """For each species pair (i, j): (median, spread, minimum) of the distance from an i atom to its nearest j
    within ``cutoff``, with the neighbour list the model uses (periodic images only in periodic directions)."""
    index = {s: i for i, s in enumerate(species)}
    found: dict[tuple[int, int], list[float]] = {}
    for k, atoms in enumerate(images):
        types = np.array([index[s] for s in atoms.get_chemical_symbols()])
        i, j, _, d = neighbour_pairs(atoms, cutoff, _name(atoms, k))
        for a in range(len(species)):
            for b in range(len(species)):
                sel = (types[i] == a) & (types[j] == b)
                if sel.any():
                    nearest = np.full(len(atoms), np.inf)
                    np.minimum.at(nearest, i[sel], d[sel])
                    found.setdefault((a, b), []).extend(nearest[np.isfinite(nearest)].tolist())
    stats = {}
    for pair, values in found.items():
        v = np.asarray(values)
        stats[pair] = (float(np.median(v)), float(np.percentile(v, 90) - np.percentile(v, 10)), float(v.min()))
    return stats


def shortest_pair_distances(images: Sequence[Atoms], species: Sequence[str], cutoff: float
                            ) -> dict[tuple[int, int], float]:
    """For each pair of species indices (i, j) found within ``cutoff`` of each other: the shortest distance (Å)
    over ``images``, with the neighbour list the model uses."""
    index = {s: i for i, s in enumerate(species)}
    c = len(species)
    shortest = np.full(c * c, np.inf)
    for k, atoms in enumerate(images):
        types = np.array([index[s] for s in atoms.get_chemical_symbols()])
        i, j, _, d = neighbour_pairs(atoms, cutoff, _name(atoms, k))
        np.minimum.at(shortest, types[i] * c + types[j], d)
    return {(int(p // c), int(p % c)): float(shortest[p]) for p in np.flatnonzero(np.isfinite(shortest))}
