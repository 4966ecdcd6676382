"""Sanity checks of a framework before it is screened, after mofchecker's (Jablonka et al.): atoms with more bonds
than their element makes, carbons that lack a hydrogen (the usual sign of a protonated linker whose hydrogens the
CIF left out), and atoms or molecules bonded to nothing of the framework (solvent, counter-ions).  mofchecker itself
cannot be installed on Python 3.11 (its charge-equilibration dependency does not build), so the checks are written
here on ASE's neighbour list and covalent radii (Cordero 2008).  Partial occupancies and overlapping atoms are
refused earlier, where the file is read (:mod:`.targets`)."""

from __future__ import annotations

from collections import Counter

import numpy as np
from ase import Atoms
from ase.data import covalent_radii
from ase.neighborlist import neighbor_list

from sus2_model.insertion import NON_METALS

from .periodic import periodic_components

BOND_TOLERANCE = 0.3  # Å beyond the sum of covalent radii that is still a bond
MAX_BONDS = {"H": 1, "C": 4, "N": 4}
LINEAR_ANGLE = 150.0  # degrees: a carbon whose two non-metal neighbours are closer to each other than this lacks one
PLANAR_SUM = 345.0  # degrees: three non-metal neighbours whose three angles sum to less are sp3: a fourth is missing
LISTED = 4  # atoms named per problem


def _angles(vectors: np.ndarray) -> list[float]:
    """The angles (degrees) between every two of the bond ``vectors`` (k, 3)."""
    unit = vectors / np.linalg.norm(vectors, axis=1)[:, None]
    return [float(np.degrees(np.arccos(np.clip(unit[a] @ unit[b], -1.0, 1.0))))
            for a in range(len(unit)) for b in range(a + 1, len(unit))]


def _lacks_hydrogen(vectors: np.ndarray) -> bool:
    """Whether a carbon with these bonds to non-metals (k, 3) lacks one: alone or with one neighbour, two neighbours
    bent (sp2 or sp3, not sp), or three not in a plane (sp3)."""
    if len(vectors) < 2:
        return True
    if len(vectors) == 2:
        return _angles(vectors)[0] < LINEAR_ANGLE
    return len(vectors) == 3 and sum(_angles(vectors)) < PLANAR_SUM


def _named(atoms: Atoms, indices: list[int]) -> str:
    """``C12, C40, ... (n atoms)``: the first atoms of a problem by element and index."""
    shown = ", ".join(f"{atoms[i].symbol}{i}" for i in indices[:LISTED])
    return shown + (f", ... ({len(indices)} atoms)" if len(indices) > LISTED else "")


def _unbonded(atoms: Atoms, first: np.ndarray, second: np.ndarray, shifts: np.ndarray) -> list[str]:
    """The finite parts of the bond graph (``first``-``second`` at lattice ``shifts``) in a periodic framework: by
    formula, with how many of each."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    count, labels = connected_components(coo_matrix((np.ones(len(first)), (first, second)),
                                                    shape=(len(atoms), len(atoms))), directed=False)
    extends = periodic_components(len(atoms), first, second, shifts)
    finite = [np.flatnonzero(labels == part) for part in range(count) if not extends[labels == part][0]]
    formulas = Counter(atoms[part].get_chemical_formula(mode="hill") for part in finite)
    return [f"{n} x {formula}" for formula, n in sorted(formulas.items())]


def framework_problems(atoms: Atoms) -> list[str]:
    """What is wrong with a periodic framework's chemistry, one line per kind of problem naming its atoms (index and
    element); empty where nothing is.  A carbon bonded to a metal is not checked for missing hydrogens (carbonyls,
    cyanides and carbides bind that way)."""
    cutoffs = covalent_radii[atoms.numbers] + BOND_TOLERANCE / 2
    first, second, shifts, vectors = neighbor_list("ijSD", atoms, cutoffs)
    symbols = np.array(atoms.get_chemical_symbols())
    bonds = np.bincount(first, minlength=len(atoms))
    metal = ~np.isin(atoms.numbers, list(NON_METALS))
    problems = [f"{element} with more than {limit} bonds: {_named(atoms, over)}"
                for element, limit in MAX_BONDS.items()
                if (over := np.flatnonzero((symbols == element) & (bonds > limit)).tolist())]
    lacking = [int(c) for c in np.flatnonzero((symbols == "C") & (bonds <= 3))
               if not metal[second[first == c]].any() and _lacks_hydrogen(vectors[first == c])]
    if lacking:
        problems.append(f"carbon lacking a hydrogen (missing from the file?): {_named(atoms, lacking)}")
    if unbonded := _unbonded(atoms, first, second, shifts):
        problems.append("atoms or molecules bonded to no framework (solvent or counter-ions: remove them): "
                        + ", ".join(unbonded))
    return problems
