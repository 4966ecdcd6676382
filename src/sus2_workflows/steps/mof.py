"""Gas adsorption in metal-organic frameworks: frameworks from CIF, rigid guests, the supercell a guest needs, and
binding sites from the lowest Widom insertions (clustered, relaxed with any calculator: the model, or the model
plus D3(BJ) from :mod:`.dispersion`).

Binding energy of a site: E(framework + guest) - E(framework) - E(guest), each relaxed with the same calculator
(the framework held fixed unless ``relax_framework``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.build import molecule
from ase.calculators.calculator import Calculator
from ase.collections import g2
from ase.constraints import FixAtoms
from ase.data import chemical_symbols
from ase.geometry import find_mic
from ase.neighborlist import natural_cutoffs, neighbor_list
from ase.optimize import BFGS

from sus2_model.insertion import NON_METALS, VDW_CONTACT, guest_extent, supercell_repeats

from ..errors import ScreeningError
from .adsorbates import molecule_file

GUEST_BOND_MULT = 1.25  # covalent radii x this: the guest's bonds, which a binding-site relaxation must keep
SITE_DISTANCE = 1.0  # Å: insertions whose guest centres are closer than this belong to one site
RELAX_FMAX = 0.05  # eV/Å
RELAX_STEPS = 300


def named_guest(name: str) -> bool:
    """Whether ``name`` is a guest by name (a g2 molecule or an element), not a file."""
    return name in g2.names or name in chemical_symbols[1:]


def guest_molecule(name: str) -> Atoms:
    """A rigid guest: a molecule of ASE's g2 set by name (CO2, H2O, N2, CH4, H2, ...), one atom by its symbol (Ar,
    Kr, Xe, ...) or a molecule read from a file, its centre of mass at the origin."""
    if name in g2.names:
        atoms = molecule(name)
    elif named_guest(name):
        atoms = Atoms(name)
    else:
        atoms = molecule_file(name, "guest", "not a molecule of ASE's g2 set, an element or a file")
    atoms.positions -= atoms.get_center_of_mass()
    atoms.info["guest"] = name if named_guest(name) else Path(name).name
    return atoms


def contact_rule() -> dict[str, str]:
    """The overlap rule of the insertions, for provenance and cache keys."""
    return {"metal": "sum of covalent radii (ASE)",
            "non-metal": f"{VDW_CONTACT} x sum of van der Waals radii (Alvarez 2013, ASE)",
            "non_metals": " ".join(sorted(chemical_symbols[z] for z in NON_METALS))}


def framework_supercell(framework: Atoms, cutoff: float, guest: Atoms) -> Atoms:
    """The framework repeated until every perpendicular width is at least twice the model's cutoff plus the guest
    (RASPA's rule for a guest at infinite dilution: it meets no image of itself, directly or through a shared
    framework neighbour)."""
    repeats = supercell_repeats(framework.cell.array, 2.0 * cutoff + guest_extent(guest))
    supercell = framework.repeat(repeats)
    supercell.info = {**framework.info, "supercell": list(repeats)}
    return supercell


def guest_is_intact(relaxed: Atoms, reference: Atoms) -> bool:
    """Whether a relaxed guest keeps the bonds of its ``reference`` geometry (none broken, none formed)."""
    bonds = lambda a: {tuple(sorted(p)) for p in zip(*neighbor_list(  # noqa: E731
        "ij", a, natural_cutoffs(a, mult=GUEST_BOND_MULT)))}
    molecule_ = Atoms(relaxed.get_chemical_symbols(), positions=relaxed.positions)  # no cell: no images
    return bonds(molecule_) == bonds(Atoms(reference.get_chemical_symbols(), positions=reference.positions))


@dataclass
class BindingSite:
    """A relaxed binding site: its rank, binding energy (eV), the guest's closest framework atom and distance,
    the relaxed loaded cell, and the Widom insertion energy it started from."""

    rank: int
    binding_energy: float
    closest_atom: str
    closest_distance: float
    insertion_energy: float
    atoms: Atoms


def cluster_insertions(positions: np.ndarray, energies: np.ndarray, cell: np.ndarray, count: int,
                       distance: float = SITE_DISTANCE) -> list[int]:
    """Indices of the lowest insertion of each of the ``count`` lowest distinct sites: insertions (sorted by energy)
    whose guest centres lie within ``distance`` Å (minimum image) of a kept one join its site."""
    centres = positions.mean(axis=1)
    kept: list[int] = []
    for k in np.argsort(energies):
        if len(kept) == count:
            break
        if kept:
            _, d = find_mic(centres[kept] - centres[k], cell, pbc=True)
            if np.min(d) < distance:
                continue
        kept.append(int(k))
    return kept


def relaxed_energy(atoms: Atoms, calculator: Calculator, fixed: list[int] | None = None, name: str = "") -> float:
    """Energy (eV) after a BFGS relaxation to :data:`RELAX_FMAX` (``fixed`` atoms held); a relaxation that does not
    converge is a :class:`ScreeningError` naming ``name``."""
    atoms.calc = calculator
    if fixed:
        atoms.set_constraint(FixAtoms(indices=fixed))
    if len(atoms) > len(fixed or []):
        optimizer = BFGS(atoms, logfile=None)
        if not optimizer.run(fmax=RELAX_FMAX, steps=RELAX_STEPS):
            raise ScreeningError(f"{name}: the relaxation did not reach {RELAX_FMAX} eV/Å in {RELAX_STEPS} steps")
    return float(atoms.get_potential_energy())


def binding_sites(framework: Atoms, guest: Atoms, positions: np.ndarray, energies: np.ndarray,
                  calculator: Calculator, count: int = 3, relax_framework: bool = False,
                  name: str = "framework") -> tuple[list[BindingSite], list[dict[str, str]]]:
    """The ``count`` lowest distinct sites among Widom's lowest insertions (``positions`` (n, g, 3), ``energies``),
    each relaxed with ``calculator``; binding energies against the framework and the guest relaxed alone with the
    same calculator.  Returns the sites (by binding energy) and the starts rejected (guest dissociated or
    reacted, relaxation not converged)."""
    n = len(framework)
    empty = framework.copy()
    e_framework = relaxed_energy(empty, calculator, None if relax_framework else list(range(n)), f"{name} (empty)")
    alone = guest.copy()
    alone.cell, alone.pbc = None, False
    e_guest = relaxed_energy(alone, calculator, None, f"guest {guest.get_chemical_formula()}")
    start_framework = empty if relax_framework else framework
    sites, rejected = [], []
    for k in cluster_insertions(positions, energies, framework.cell.array, count):
        loaded = start_framework + Atoms(guest.get_chemical_symbols(), positions=positions[k])
        label = f"{name} site from insertion {k} ({energies[k]:.3f} eV)"
        try:
            energy = relaxed_energy(loaded, calculator, None if relax_framework else list(range(n)), label)
        except ScreeningError as exc:
            rejected.append({"start": label, "reason": str(exc)})
            continue
        adsorbed = loaded[n:]
        if not guest_is_intact(adsorbed, guest):
            rejected.append({"start": label, "reason": "the guest's bonds changed (dissociated or reacted)"})
            continue
        _, d = find_mic((loaded.positions[:n][None, :, :] - adsorbed.positions[:, None, :]).reshape(-1, 3),
                        loaded.cell, pbc=True)
        a, j = np.unravel_index(np.argmin(d), (len(adsorbed), n))
        d = d.reshape(len(adsorbed), n)
        sites.append(BindingSite(0, energy - e_framework - e_guest,
                                 f"{framework[j].symbol}{j} (guest {adsorbed[a].symbol})", float(d[a, j]),
                                 float(energies[k]), loaded))
    sites.sort(key=lambda s: s.binding_energy)
    for rank, site in enumerate(sites, 1):
        site.rank = rank
    return sites, rejected
