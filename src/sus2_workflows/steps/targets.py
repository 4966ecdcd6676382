"""Screening targets from what users have: files (CIF, POSCAR/CONTCAR/.vasp, extxyz, xsf, pymatgen JSON, anything
``ase.io`` reads) or folders of them.  A structure that cannot be screened (unreadable, partial occupancies,
overlapping atoms) becomes a named failure; the rest go on."""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from ase import Atoms

MIN_SEPARATION = 0.5  # Å: closer atoms are overlapping, not a structure
PYMATGEN_SUFFIXES = (".cif", ".vasp", ".json")
PYMATGEN_NAMES = ("POSCAR", "CONTCAR")


@dataclass
class Target:
    """One structure to screen, or why it cannot be (``atoms`` None, ``error`` set)."""

    name: str
    atoms: Atoms | None = None
    error: str | None = None


def _checked(name: str, atoms: Atoms) -> Target:
    """The target, or a failure if two atoms overlap."""
    if len(atoms) > 1:
        distances = atoms.get_all_distances(mic=bool(atoms.pbc.any()))
        closest = float(np.min(distances[np.triu_indices(len(atoms), 1)]))
        if closest < MIN_SEPARATION:
            return Target(name, error=f"{name}: atoms overlap ({closest:.3f} Å apart, < {MIN_SEPARATION} Å)")
    atoms.info["source"] = name
    return Target(name, atoms)


def _read_pymatgen(path: Path) -> list[Atoms]:
    """Structures pymatgen reads (CIF with symmetry expanded, POSCAR, Structure JSON); partial occupancies are an
    error."""
    from pymatgen.core import Structure
    from pymatgen.io.ase import AseAtomsAdaptor

    if path.suffix == ".json":
        raw = json.loads(path.read_text())
        structures = [Structure.from_dict(d) for d in (raw if isinstance(raw, list) else [raw])]
    elif path.suffix.lower() == ".cif":
        text = path.read_text(errors="replace")
        if not any(line.startswith("data_") for line in text.splitlines()):  # some exporters drop the header
            text = f"data_{path.stem}\n{text}"
        structures = [Structure.from_str(text, fmt="cif")]
    else:
        structures = [Structure.from_file(path)]
    for structure in structures:
        if not structure.is_ordered:
            raise ValueError("partial occupancies: order the structure first (e.g. pymatgen's "
                             "OrderDisorderedStructureTransformation)")
    return [AseAtomsAdaptor.get_atoms(s) for s in structures]


def read_file(path: str | Path) -> list[Target]:
    """Every structure in one file, named ``file`` (or ``file@k`` for several)."""
    import ase.io

    path = Path(path)
    try:
        with warnings.catch_warnings():  # the readers' own warnings: what matters becomes the error below
            warnings.simplefilter("ignore")
            if path.suffix.lower() in PYMATGEN_SUFFIXES or path.name.startswith(PYMATGEN_NAMES):
                images = _read_pymatgen(path)
            else:
                images = ase.io.read(path, index=":")
    except Exception as exc:  # every reader raises its own types
        return [Target(path.name, error=f"{path}: cannot read a structure: {exc}"[:500])]
    if not images:
        return [Target(path.name, error=f"{path}: no structure in the file")]
    if len(images) == 1:
        return [_checked(path.name, images[0])]
    return [_checked(f"{path.name}@{k}", atoms) for k, atoms in enumerate(images)]


def read_targets(paths: Sequence[str | Path]) -> list[Target]:
    """The targets of files and folders (a folder: its files, sorted, not recursing, hidden files skipped); a path
    that does not exist, or a folder with no file, is a failure of its own."""
    targets: list[Target] = []
    for path in map(Path, paths):
        if not path.exists():
            targets.append(Target(path.name, error=f"{path}: no such file or folder"))
            continue
        files = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith(".")) if path.is_dir() \
            else [path]
        if not files:
            targets.append(Target(path.name, error=f"{path}: the folder holds no file"))
        for file in files:
            targets += read_file(file)
    return targets
