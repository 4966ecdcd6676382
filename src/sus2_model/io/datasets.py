"""Dataset readers and writers dispatched on the file name: ``.cfg``, mlearn ``.json``, ASE ``.db``, extxyz.

Every reader returns ``ase.Atoms`` with DFT labels on a ``SinglePointCalculator``; ``atoms.info``
carries ``source`` (``file:index``) so an error later can name the structure.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator
from ase.units import GPa

from ..errors import FileFormatError
from .atomic import atomic_path
from .cfg import read_cfg, write_cfg

KBAR = 0.1 * GPa  # eV/Å³


def _mlearn_item(item: dict, path: Path, index: int) -> Atoms:
    """One entry of an mlearn JSON list (pymatgen Structure dict + ``outputs``) as labelled Atoms."""
    try:
        struct = item["structure"]
        cell = np.array(struct["lattice"]["matrix"], dtype=float)
        symbols = [site["species"][0]["element"] for site in struct["sites"]]
        positions = np.array([site["xyz"] for site in struct["sites"]], dtype=float)
        outputs = item["outputs"]
        energy = float(outputs["energy"])
        forces = np.array(outputs["forces"], dtype=float)
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise FileFormatError(path, None, f"entry {index}: not an mlearn record ({exc!r})") from None
    atoms = Atoms(symbols=symbols, positions=positions, cell=cell, pbc=True)
    labels: dict[str, object] = {"energy": energy, "free_energy": energy, "forces": forces}
    virial = outputs.get("virial_stress")
    if virial is not None and len(virial) == 6:
        # kbar, positive = compressive; off-diagonal order xy xz yz.  Checked on the strained mlearn Mo cells: a
        # cell compressed along z has its largest value in slot 3, cells sheared in xy / xz / yz in slots 4 / 5 / 6,
        # each with the sign of a compressive-positive stress (tests/test_io.py)
        xx, yy, zz, xy, xz, yz = np.asarray(virial, dtype=float)
        labels["stress"] = -np.array([xx, yy, zz, yz, xz, xy]) * KBAR
    atoms.calc = SinglePointCalculator(atoms, **labels)
    if item.get("tags"):
        atoms.info["tags"] = list(item["tags"])
    return atoms


def read_mlearn_json(path: str | Path) -> list[Atoms]:
    """Read an mlearn dataset (Zuo et al. 2020): a JSON list of structures with ``outputs``."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise FileFormatError(path, getattr(exc, "lineno", None), f"cannot read JSON: {exc}") from None
    if not isinstance(data, list):
        raise FileFormatError(path, None, "expected a JSON list of mlearn records")
    return [_mlearn_item(item, path, i) for i, item in enumerate(data)]


def read_structures(path: str | Path, species: Sequence[str] | None = None, index: str = ":") -> list[Atoms]:
    """Read labelled structures from any supported file.

    ``.cfg`` needs ``species`` (type index -> element); ``.json`` is mlearn's format; anything else
    (extxyz, ASE ``.db``, VASP/QE outputs, CIF ...) goes through :func:`ase.io.read`.
    """
    path = Path(path)
    if not path.exists():
        raise FileFormatError(path, None, "file does not exist")
    suffix = path.suffix.lower()
    if suffix == ".cfg":
        if species is None:
            raise FileFormatError(path, None, ".cfg files store type indices: give the species list (--species)")
        images = read_cfg(path, species)
    elif suffix == ".json":
        images = read_mlearn_json(path)
    else:
        import ase.io

        try:
            images = ase.io.read(path, index=index)
        except Exception as exc:  # ase raises many types; name the file
            raise FileFormatError(path, None, f"cannot read structures: {exc}") from None
        images = images if isinstance(images, list) else [images]
        return [_tag(a, path, i) for i, a in enumerate(images)]
    selected = images[_slice(index)]
    return [_tag(a, path, i) for i, a in enumerate(selected)]


def _slice(index: str) -> slice:
    parts = [int(p) if p else None for p in index.split(":")] if ":" in index else [int(index), int(index) + 1]
    return slice(*parts)


def _tag(atoms: Atoms, path: Path, i: int) -> Atoms:
    """Name the structure by file and index (an earlier name is kept as ``origin``)."""
    previous = atoms.info.get("source")
    if previous and previous != f"{path}:{i}":
        atoms.info.setdefault("origin", previous)
    atoms.info["source"] = f"{path}:{i}"
    return atoms


def write_structures(path: str | Path, images: Iterable[Atoms], species: Sequence[str] | None = None) -> None:
    """Write labelled structures; the format follows the suffix (``.cfg`` needs ``species``)."""
    path = Path(path)
    images = list(images)
    if path.suffix.lower() == ".cfg":
        if species is None:
            raise FileFormatError(path, None, "writing .cfg needs a species list")
        write_cfg(path, images, species)
        return
    import ase.io

    with atomic_path(path) as tmp:
        ase.io.write(tmp, images, format="extxyz" if path.suffix in (".xyz", ".extxyz") else None)


def from_pymatgen(structure) -> Atoms:
    """Convert a pymatgen ``Structure`` or ``Molecule`` to ``ase.Atoms`` (pymatgen imported lazily)."""
    from pymatgen.io.ase import AseAtomsAdaptor

    return AseAtomsAdaptor.get_atoms(structure)
