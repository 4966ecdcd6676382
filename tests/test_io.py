"""File formats: exact round trips, and clear errors (file and line) on malformed input."""

from __future__ import annotations

import json

import numpy as np
import pytest
from ase import Atoms

from sus2_model import FileFormatError, StructureError, Sus2Calculator, UnknownElementError
from sus2_model.demo import emt_dataset
from sus2_model.io import read_cfg, read_mtp, read_structures, write_cfg, write_mtp, write_structures
from sus2_model.io.mtp import format_mtp
from sus2_model.templates import untrained_mtp

from .conftest import random_model


def _labels_equal(a: Atoms, b: Atoms, tol: float = 0.0) -> None:
    assert a.get_chemical_symbols() == b.get_chemical_symbols()
    np.testing.assert_allclose(a.positions, b.positions, rtol=0, atol=tol)
    np.testing.assert_allclose(a.cell.array, b.cell.array, rtol=0, atol=tol)
    assert a.get_potential_energy() == pytest.approx(b.get_potential_energy(), rel=0, abs=tol)
    np.testing.assert_allclose(a.get_forces(), b.get_forces(), rtol=0, atol=tol)


def test_mtp_round_trip_is_exact(tmp_path):
    model = random_model(max_rank=3)
    write_mtp(model.to_mtp(), tmp_path / "m.mtp")
    again = read_mtp(tmp_path / "m.mtp")
    assert format_mtp(again) == (tmp_path / "m.mtp").read_text()
    for key in ("shift_coeffs", "scal_coeffs", "radial_coeffs", "species_coeffs", "moment_coeffs"):
        np.testing.assert_array_equal(getattr(again, key), getattr(model.to_mtp(), key))


def test_published_mtp_text_round_trip(shared_data):
    for path in sorted((shared_data / "sus2_published").glob("*/*.mtp")):
        assert format_mtp(read_mtp(path)) == path.read_text(), path.name


def test_cfg_round_trip_is_exact(tmp_path):
    images = emt_dataset(4)
    write_cfg(tmp_path / "a.cfg", images, ["Cu", "Ni"])
    back = read_cfg(tmp_path / "a.cfg", ["Cu", "Ni"])
    for a, b in zip(images, back):
        _labels_equal(a, b)
        np.testing.assert_allclose(a.get_stress(), b.get_stress(), rtol=1e-12, atol=1e-15)
    write_cfg(tmp_path / "b.cfg", back, ["Cu", "Ni"])
    assert (tmp_path / "a.cfg").read_text() == (tmp_path / "b.cfg").read_text()


def test_published_cfg_round_trip(shared_data, tmp_path):
    root = shared_data / "sus2_published" / "Alloy"
    species = json.loads((root / "species.json").read_text())["species"]
    images = read_cfg(root / "test_first200.cfg", species)[:20]
    write_cfg(tmp_path / "t.cfg", images, species)
    back = read_cfg(tmp_path / "t.cfg", species)
    for a, b in zip(images, back):
        _labels_equal(a, b)
        assert a.info["plus_stress"] == b.info["plus_stress"]


@pytest.mark.parametrize("suffix", ["extxyz", "db"])
def test_extxyz_and_ase_db_round_trip(tmp_path, suffix):
    images = emt_dataset(3)
    write_structures(tmp_path / f"d.{suffix}", images)
    back = read_structures(tmp_path / f"d.{suffix}")
    for a, b in zip(images, back):
        _labels_equal(a, b, tol=1e-8 if suffix == "extxyz" else 0.0)  # ASE's extxyz writes 8 decimals
        np.testing.assert_allclose(a.get_stress(), b.get_stress())


def test_mlearn_json_reader(shared_data):
    images = read_structures(shared_data / "mlearn" / "Mo" / "test.json")
    assert len(images) > 10 and all(set(a.get_chemical_symbols()) == {"Mo"} for a in images)
    assert images[0].get_forces().shape == (len(images[0]), 3)


def test_mlearn_stress_sign_and_order(shared_data):
    """Strained Mo cells: compression gives negative (ASE) stress along that axis, and a cell sheared by moving b
    along z (ε_yz > 0) gives a positive yz component (Voigt slot 3), whatever order mlearn stores."""
    images = read_structures(shared_data / "mlearn" / "Mo" / "training.json")
    checked = 0
    for atoms in images:
        cell, stress = atoms.cell.array, atoms.get_stress()
        if len(atoms) != 54 or not np.allclose(cell[0], [cell[0, 0], 0, 0]):
            continue
        if np.allclose(cell - np.diag(np.diag(cell)), 0) and cell[2, 2] < cell[0, 0] - 0.5 < cell[1, 1]:
            assert stress[2] < stress[0] < 0 and stress[2] < stress[1]  # compressed along z
            checked += 1
        sheared = {(1, 2): 3, (0, 2): 4, (1, 0): 5}  # (row, column) of the cell -> Voigt slot of that shear
        for (row, col), slot in sheared.items():
            others = [cell[r, c] for r in range(3) for c in range(3) if r != c and (r, c) != (row, col)]
            if abs(cell[row, col]) > 0.3 and np.allclose(others, 0):
                assert np.argmax(np.abs(stress[3:])) == slot - 3 and np.sign(stress[slot]) == np.sign(cell[row, col])
                checked += 1
    assert checked >= 3


@pytest.fixture
def mtp_text(tmp_path):
    path = tmp_path / "m.mtp"
    write_mtp(untrained_mtp(2, max_level=10), path)
    return path, path.read_text().splitlines()


def test_truncated_mtp_names_file(mtp_text):
    path, lines = mtp_text
    path.write_text("\n".join(lines[:12]))
    with pytest.raises(FileFormatError, match=r"m\.mtp:\d+: missing required key"):
        read_mtp(path)


def test_inconsistent_mtp_names_line(mtp_text):
    path, lines = mtp_text
    k = next(i for i, line in enumerate(lines) if line.startswith("shift_coeffs"))
    lines[k] = "shift_coeffs = {1.0, 2.0, 3.0}"
    path.write_text("\n".join(lines))
    with pytest.raises(FileFormatError, match=rf"m\.mtp:{k + 1}: shift_coeffs has 3 values, expected 2"):
        read_mtp(path)
    lines[k] = "shift_coeffs = {1.0, nan}"
    path.write_text("\n".join(lines))
    with pytest.raises(FileFormatError, match=rf"m\.mtp:{k + 1}: shift_coeffs holds a NaN"):
        read_mtp(path)


def test_malformed_cfg_names_line(tmp_path):
    write_cfg(tmp_path / "a.cfg", emt_dataset(2), ["Cu", "Ni"])
    lines = (tmp_path / "a.cfg").read_text().splitlines()
    k = next(i for i, line in enumerate(lines) if "AtomData" in line) + 2
    lines[k] = lines[k].replace(lines[k].split()[3], "x1.0", 1)
    (tmp_path / "b.cfg").write_text("\n".join(lines))
    with pytest.raises(FileFormatError, match=rf"b\.cfg:{k + 1}: expected numbers"):
        read_cfg(tmp_path / "b.cfg", ["Cu", "Ni"])
    (tmp_path / "c.cfg").write_text("\n".join(lines[: k - 1]))
    with pytest.raises(FileFormatError, match=r"c\.cfg:\d+: .*(END_CFG|Size)"):
        read_cfg(tmp_path / "c.cfg", ["Cu", "Ni"])


def test_unknown_type_and_element(tmp_path):
    write_cfg(tmp_path / "a.cfg", emt_dataset(3), ["Cu", "Ni"])
    with pytest.raises(UnknownElementError, match="type 1 has no element"):
        read_cfg(tmp_path / "a.cfg", ["Cu"])
    calc = Sus2Calculator(random_model())
    atoms = Atoms("CuAu", positions=[[0, 0, 0], [2.5, 0, 0]])
    atoms.calc = calc
    with pytest.raises(UnknownElementError, match=r"\['Au'\] not in the model's species"):
        atoms.get_potential_energy()


def test_nan_and_overlapping_atoms_name_the_structure():
    calc = Sus2Calculator(random_model())
    images = emt_dataset(3)
    images[2].positions[0, 1] = np.nan
    with pytest.raises(StructureError, match="emt:0:2: positions or cell contain NaN"):
        calc.predict(images)
    images = emt_dataset(3)
    images[1].positions[1] = images[1].positions[0] + [0.3, 0, 0]
    with pytest.raises(StructureError, match=r"emt:0:1: atoms \d+ and \d+ are 0.300 Å apart"):
        calc.predict(images)
