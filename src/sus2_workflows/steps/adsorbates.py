"""Adsorbates and their gas-phase references.

The library (H, O, N, OH, CO, H2O) holds each adsorbate with its binding atom first, at the origin, and the rest of
the molecule pointing away from the surface (+z); a user's molecule comes from a file (its first atom binds).
Reference energies follow OC20: every element's chemical potential from H2, H2O, CO and N2 in the gas phase
(μH = E(H2)/2, μO = E(H2O) - E(H2), μC = E(CO) - μO, μN = E(N2)/2), so an adsorption energy is
E(slab + adsorbate) - E(slab) - Σ n_X μX."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

from ase import Atoms
from ase.build import molecule

from ..errors import ScreeningError

ADSORBATES: dict[str, tuple[str, list[list[float]]]] = {
    "H": ("H", [[0.0, 0.0, 0.0]]),
    "O": ("O", [[0.0, 0.0, 0.0]]),
    "N": ("N", [[0.0, 0.0, 0.0]]),
    "OH": ("OH", [[0.0, 0.0, 0.0], [0.0, 0.0, 0.97]]),
    "CO": ("CO", [[0.0, 0.0, 0.0], [0.0, 0.0, 1.15]]),
    "H2O": ("OH2", [[0.0, 0.0, 0.0], [0.76, 0.0, 0.59], [-0.76, 0.0, 0.59]]),
}
GAS_MOLECULES = ("H2", "H2O", "CO", "N2")
GAS_BOX = 12.0  # Å: edge of the periodic box a gas molecule sits in (clear of its images beyond any cutoff)
NEEDS: dict[str, tuple[str, ...]] = {"H": ("H2",), "O": ("H2", "H2O"), "C": ("H2", "H2O", "CO"), "N": ("N2",)}


def adsorbate(name: str) -> Atoms:
    """A library adsorbate by name, or a user's molecule read from the file ``name`` (its first atom binds; it is
    moved to the origin, the rest kept as drawn)."""
    if name in ADSORBATES:
        symbols, positions = ADSORBATES[name]
        atoms = Atoms(symbols, positions=positions)
    else:
        atoms = molecule_file(name, "adsorbate", f"not in the library ({', '.join(ADSORBATES)}) and not a file")
        atoms.positions -= atoms.positions[0]
    unknown = sorted(set(atoms.get_chemical_symbols()) - set(NEEDS))
    if unknown:
        raise ScreeningError(f"adsorbate {name!r}: no gas reference for {', '.join(unknown)} (references exist for "
                             f"{', '.join(NEEDS)})")
    atoms.info["adsorbate"] = name if name in ADSORBATES else Path(name).name
    return atoms


def molecule_file(name: str, what: str, missing: str) -> Atoms:
    """A molecule read from the file ``name`` (no cell, not periodic); errors say ``what`` it was for, and
    ``missing`` where there is no such file."""
    import ase.io

    path = Path(name)
    if not path.is_file():
        raise ScreeningError(f"{what} {name!r}: {missing}")
    try:
        atoms = ase.io.read(path)
    except Exception as exc:  # every reader raises its own types
        raise ScreeningError(f"{what} {path}: cannot read a molecule: {exc}") from None
    atoms.cell, atoms.pbc = None, False
    return atoms


def gas_molecule(name: str) -> Atoms:
    """A reference molecule (ASE's geometry) centred in a periodic box of edge :data:`GAS_BOX`."""
    atoms = molecule(name)
    atoms.cell, atoms.pbc = [GAS_BOX] * 3, True
    atoms.center()
    atoms.info["source"] = f"gas:{name}"
    return atoms


def molecules_for(symbols: list[str]) -> list[str]:
    """The gas molecules whose energies the chemical potentials of ``symbols`` need."""
    return sorted({m for s in set(symbols) for m in NEEDS[s]})


def chemical_potentials(energies: Mapping[str, float]) -> dict[str, float]:
    """OC20-style chemical potentials (eV) of H, O, C, N from the gas molecules' energies at hand."""
    mu: dict[str, float] = {}
    if "H2" in energies:
        mu["H"] = energies["H2"] / 2
        if "H2O" in energies:
            mu["O"] = energies["H2O"] - energies["H2"]
            if "CO" in energies:
                mu["C"] = energies["CO"] - mu["O"]
    if "N2" in energies:
        mu["N"] = energies["N2"] / 2
    return mu


def reference_energy(symbols: list[str], potentials: Mapping[str, float]) -> float:
    """Σ n_X μX of an adsorbate's atoms."""
    return float(sum(potentials[s] for s in symbols))

