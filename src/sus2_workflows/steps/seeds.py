"""Seed structures for a campaign: prototype lattices, strained and rattled copies."""

from __future__ import annotations

from typing import Sequence

import numpy as np
from ase import Atoms
from ase.build import bulk


def prototype(element: str, kind: str, a: float | None = None) -> Atoms:
    """A conventional cell (cubic where the lattice allows it)."""
    cubic = kind in ("fcc", "bcc", "diamond", "sc")
    return bulk(element, kind, a=a, cubic=cubic) if a else bulk(element, kind, cubic=cubic)


def generate_seeds(element: str, kind: str, a: float | None, supercell: Sequence[int], strains: Sequence[float],
                   rattle: float, copies: int, seed: int = 0, prefix: str = "seed") -> list[Atoms]:
    """Strained (isotropic) and rattled copies of a prototype, each named ``<prefix>:<element>-<kind>:<n>``."""
    rng = np.random.default_rng(seed)
    base = prototype(element, kind, a) * tuple(supercell)
    images = []
    for strain in strains:
        for _ in range(copies):
            atoms = base.copy()
            atoms.set_cell(base.cell.array * (1.0 + strain), scale_atoms=True)
            if rattle > 0:
                atoms.positions += rng.normal(0.0, rattle, atoms.positions.shape)
            atoms.info["source"] = f"{prefix}:{element}-{kind}:{len(images)}"
            images.append(atoms)
    return images


def isolated_atom(element: str, box: float = 12.0) -> Atoms:
    """One atom in an open-boundary box, for an isolated-atom reference energy."""
    atoms = Atoms(element, positions=[[box / 2] * 3], cell=[box] * 3, pbc=False)
    atoms.info["source"] = f"isolated:{element}"
    return atoms
