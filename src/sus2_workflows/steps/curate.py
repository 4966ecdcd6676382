"""Dataset curation: seed structures from prototypes, deduplication by structure hash, outlier caps."""

from __future__ import annotations

from typing import Sequence

import numpy as np
from ase import Atoms
from ase.build import bulk

from sus2_model.train.data import structure_hash


def prototype(element: str, kind: str, a: float | None = None) -> Atoms:
    """A conventional cell (cubic where the lattice allows it)."""
    cubic = kind in ("fcc", "bcc", "diamond", "sc")
    return bulk(element, kind, a=a, cubic=cubic) if a else bulk(element, kind, cubic=cubic)


def generate_seeds(element: str, kind: str, a: float | None, supercell: Sequence[int], strains: Sequence[float],
                   rattle: float, copies: int, seed: int = 0) -> list[Atoms]:
    """Strained (isotropic) and rattled copies of a prototype, each named ``seed:<element>-<kind>:<n>``."""
    rng = np.random.default_rng(seed)
    base = prototype(element, kind, a) * tuple(supercell)
    images = []
    for strain in strains:
        for _ in range(copies):
            atoms = base.copy()
            atoms.set_cell(base.cell.array * (1.0 + strain), scale_atoms=True)
            if rattle > 0:
                atoms.positions += rng.normal(0.0, rattle, atoms.positions.shape)
            atoms.info["source"] = f"seed:{element}-{kind}:{len(images)}"
            images.append(atoms)
    return images


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
