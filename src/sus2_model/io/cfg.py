"""MLIP ``.cfg`` datasets: ``type`` indices map to elements through a species list.

Labels go on an ASE ``SinglePointCalculator`` (energy in eV, forces in eV/Å, stress in eV/Å³ with
ASE's sign).  ``PlusStress`` is the virial, stress times volume with the opposite sign,
``PlusStress = -stress * V``; the file's own numbers are kept in ``atoms.info["plus_stress"]`` so that
writing a configuration back reproduces them bit for bit.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator
from ase.stress import full_3x3_to_voigt_6_stress

from ..errors import FileFormatError, UnknownElementError
from .atomic import atomic_write


def plus_stress_to_stress(plus: Sequence[float], volume: float) -> np.ndarray:
    """ASE stress (Voigt xx yy zz yz xz xy, eV/Å³) from a ``PlusStress`` row."""
    return -np.asarray(plus, dtype=float) / volume


def stress_to_plus_stress(stress: Sequence[float], volume: float) -> np.ndarray:
    """``PlusStress`` row from an ASE Voigt stress (eV/Å³)."""
    return -np.asarray(stress, dtype=float) * volume


class _CfgBlock:
    """The fields of one configuration while it is being read."""

    def __init__(self, start_line: int) -> None:
        self.start_line = start_line
        self.size: int | None = None
        self.cell: list[list[float]] = []
        self.columns: list[str] = []
        self.rows: list[list[float]] = []
        self.energy: float | None = None
        self.plus_stress: list[float] | None = None
        self.features: dict[str, str] = {}


def _parse_floats(tokens: list[str], path: Path, line: int) -> list[float]:
    try:
        values = [float(t) for t in tokens]
    except ValueError:
        raise FileFormatError(path, line, f"expected numbers, found {' '.join(tokens)[:60]!r}") from None
    return values


def _iter_blocks(path: Path) -> Iterator[_CfgBlock]:
    block: _CfgBlock | None = None
    section = None
    with open(path) as fh:
        for lineno, raw in enumerate(fh, start=1):
            tokens = raw.split()
            if not tokens:
                continue
            head = tokens[0].rstrip(":")
            if head == "BEGIN_CFG":
                if block is not None:
                    raise FileFormatError(path, lineno, "BEGIN_CFG inside an unfinished configuration")
                block, section = _CfgBlock(lineno), None
                continue
            if block is None:
                raise FileFormatError(path, lineno, f"text outside BEGIN_CFG/END_CFG: {raw.strip()[:60]!r}")
            if head == "END_CFG":
                yield block
                block, section = None, None
                continue
            if head in ("Size", "Supercell", "Energy"):
                section = head
                continue
            if head == "AtomData":
                section, block.columns = "AtomData", tokens[1:]
                continue
            if head == "PlusStress":
                section = "PlusStress"
                continue
            if head == "Feature":
                block.features[tokens[1] if len(tokens) > 1 else ""] = " ".join(tokens[2:])
                continue
            if section == "Size":
                try:
                    block.size = int(tokens[0])
                except ValueError:
                    raise FileFormatError(path, lineno, f"Size must be an integer, found {tokens[0]!r}") from None
            elif section == "Supercell":
                block.cell.append(_parse_floats(tokens, path, lineno))
            elif section == "AtomData":
                row = _parse_floats(tokens, path, lineno)
                if len(row) != len(block.columns):
                    raise FileFormatError(path, lineno,
                                          f"atom row has {len(row)} columns, header has {len(block.columns)}")
                block.rows.append(row)
            elif section == "Energy":
                block.energy = _parse_floats(tokens[:1], path, lineno)[0]
            elif section == "PlusStress":
                values = _parse_floats(tokens, path, lineno)
                if len(values) != 6:
                    raise FileFormatError(path, lineno, "PlusStress needs 6 numbers (xx yy zz yz xz xy)")
                block.plus_stress = values
            else:
                raise FileFormatError(path, lineno, f"unexpected line {raw.strip()[:60]!r}")
    if block is not None:
        raise FileFormatError(path, block.start_line, "configuration has no END_CFG (file truncated?)")


def _block_to_atoms(block: _CfgBlock, species: Sequence[str], path: Path, index: int) -> Atoms:
    where = f"configuration {index} (starting at line {block.start_line})"
    if block.size is None or block.size != len(block.rows):
        raise FileFormatError(path, block.start_line, f"{where}: Size {block.size} but {len(block.rows)} atom rows")
    col = {name: i for i, name in enumerate(block.columns)}
    if "type" not in col:
        raise FileFormatError(path, block.start_line, f"{where}: AtomData has no 'type' column")
    data = np.array(block.rows, dtype=float).reshape(len(block.rows), len(block.columns))
    types = data[:, col["type"]].astype(int)
    bad = types[(types < 0) | (types >= len(species))]
    if len(bad):
        raise UnknownElementError(f"{path}: {where}: type {bad[0]} has no element in the species list {list(species)}")
    cell = np.array(block.cell) if block.cell else None
    if cell is not None and cell.shape != (3, 3):
        raise FileFormatError(path, block.start_line, f"{where}: Supercell must have 3 rows of 3 numbers")
    if all(c in col for c in ("cartes_x", "cartes_y", "cartes_z")):
        positions = data[:, [col["cartes_x"], col["cartes_y"], col["cartes_z"]]]
        atoms = Atoms(symbols=[species[t] for t in types], positions=positions, cell=cell, pbc=cell is not None)
    elif all(c in col for c in ("direct_x", "direct_y", "direct_z")) and cell is not None:
        scaled = data[:, [col["direct_x"], col["direct_y"], col["direct_z"]]]
        atoms = Atoms(symbols=[species[t] for t in types], scaled_positions=scaled, cell=cell, pbc=True)
    else:
        raise FileFormatError(path, block.start_line, f"{where}: AtomData has no coordinates")
    if "id" in col:
        atoms.arrays["cfg_id"] = data[:, col["id"]].astype(int)
    if "nbh_grades" in col:
        atoms.arrays["nbh_grades"] = data[:, col["nbh_grades"]]
    labels: dict[str, object] = {}
    if block.energy is not None:
        labels["energy"] = block.energy
        labels["free_energy"] = block.energy
    if all(c in col for c in ("fx", "fy", "fz")):
        labels["forces"] = data[:, [col["fx"], col["fy"], col["fz"]]]
    if block.plus_stress is not None:
        if cell is None:
            raise FileFormatError(path, block.start_line, f"{where}: PlusStress given without a Supercell")
        atoms.info["plus_stress"] = list(block.plus_stress)
        labels["stress"] = plus_stress_to_stress(block.plus_stress, atoms.get_volume())
    if block.features:
        atoms.info["cfg_features"] = dict(block.features)
    if labels:
        atoms.calc = SinglePointCalculator(atoms, **labels)
    return atoms


def iread_cfg(path: str | Path, species: Sequence[str]) -> Iterator[Atoms]:
    """Yield the configurations of an MLIP ``.cfg`` file one by one (constant memory)."""
    path = Path(path)
    for index, block in enumerate(_iter_blocks(path)):
        yield _block_to_atoms(block, species, path, index)


def read_cfg(path: str | Path, species: Sequence[str]) -> list[Atoms]:
    """Read every configuration of an MLIP ``.cfg`` file; ``species[i]`` is the element of type ``i``."""
    return list(iread_cfg(path, species))


def _fmt(x: float) -> str:
    return repr(float(x))


def format_cfg(atoms: Atoms, species: Sequence[str], index: int = 0) -> str:
    """One configuration in MLIP ``.cfg`` text; floats are written with full (round-trip) precision."""
    type_of = {s: i for i, s in enumerate(species)}
    missing = sorted(set(atoms.get_chemical_symbols()) - set(type_of))
    if missing:
        raise UnknownElementError(f"structure {index}: elements {missing} are not in the species list {list(species)}")
    results = atoms.calc.results if atoms.calc is not None else {}
    forces = results.get("forces")
    lines = ["BEGIN_CFG", " Size", f"    {len(atoms)}"]
    if atoms.pbc.any():
        lines.append(" Supercell")
        lines += ["    " + "  ".join(f"{_fmt(v):>22}" for v in row) for row in atoms.cell.array]
    header = " AtomData:  id type       cartes_x      cartes_y      cartes_z"
    lines.append(header + ("           fx          fy          fz" if forces is not None else ""))
    ids = atoms.arrays.get("cfg_id", np.arange(1, len(atoms) + 1))
    for i, (sym, pos) in enumerate(zip(atoms.get_chemical_symbols(), atoms.positions)):
        row = f"    {int(ids[i]):>6} {type_of[sym]:>4} " + " ".join(f"{_fmt(v):>22}" for v in pos)
        if forces is not None:
            row += " " + " ".join(f"{_fmt(v):>22}" for v in forces[i])
        lines.append(row)
    if "energy" in results:
        lines += [" Energy", f"    {_fmt(results['energy'])}"]
    if "stress" in results and atoms.pbc.any():
        stress = np.asarray(results["stress"], dtype=float)
        stress = stress if stress.shape == (6,) else full_3x3_to_voigt_6_stress(stress)
        plus = stress_to_plus_stress(stress, atoms.get_volume())
        kept = atoms.info.get("plus_stress")
        if kept is not None and np.allclose(kept, plus, rtol=1e-10, atol=1e-12):
            plus = kept
        lines += [" PlusStress:  xx          yy          zz          yz          xz          xy",
                  "    " + " ".join(f"{_fmt(v):>22}" for v in plus)]
    for name, value in atoms.info.get("cfg_features", {}).items():
        lines.append(f" Feature   {name} {value}".rstrip())
    lines.append("END_CFG")
    return "\n".join(lines) + "\n"


def write_cfg(path: str | Path, images: Iterable[Atoms], species: Sequence[str]) -> None:
    """Write configurations to an MLIP ``.cfg`` file atomically."""
    text = "\n".join(format_cfg(atoms, species, i) for i, atoms in enumerate(images))
    atomic_write(path, lambda fh: fh.write(text))
