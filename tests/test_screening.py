"""Equation-of-state screening: targets from files with named failures, pymatgen fits that refuse what they cannot
justify, re-centring of an unbracketed grid, ACWF's ν/ε, and `sus2 screen eos`."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml
from ase import Atoms
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.io import write

from sus2_model.demo import fitted_emt_model
from sus2_model.io.native import save_native
from sus2_workflows.cli import main
from sus2_workflows.errors import ScreeningError, SpecError, Sus2WorkflowError
from sus2_workflows.spec import load_spec
from sus2_workflows.steps.eos import birch_murnaghan, delta_metrics, energies_per_atom, eos_of, fit_eos, screen_eos
from sus2_workflows.steps.targets import read_targets

from .test_campaign import SPEC

PARTIAL_CIF = """data_CuNi
_cell_length_a 3.6
_cell_length_b 3.6
_cell_length_c 3.6
_cell_angle_alpha 90
_cell_angle_beta 90
_cell_angle_gamma 90
_symmetry_space_group_name_H-M 'P 1'
loop_
_atom_site_label
_atom_site_type_symbol
_atom_site_fract_x
_atom_site_fract_y
_atom_site_fract_z
_atom_site_occupancy
Cu1 Cu 0 0 0 0.5
Ni1 Ni 0 0 0 0.5
"""


@pytest.fixture
def structure_files(tmp_path):
    folder = tmp_path / "targets"
    folder.mkdir()
    write(folder / "Cu.cif", bulk("Cu", "fcc", a=3.6, cubic=True))
    write(folder / "two.extxyz", [bulk("Cu", "fcc", a=3.55), bulk("Ni", "fcc", a=3.52)])
    overlapping = bulk("Cu", "fcc", a=3.6, cubic=True)
    overlapping.positions[1] = overlapping.positions[0] + 0.1
    write(folder / "overlap.extxyz", overlapping)
    (folder / "partial.cif").write_text(PARTIAL_CIF)
    (folder / "broken.cif").write_text("data_x\n_cell_length_a oops\n")
    return folder


def test_targets_from_files_name_every_failure(structure_files):
    targets = {t.name: t for t in read_targets([structure_files])}
    assert set(targets) == {"Cu.cif", "two.extxyz@0", "two.extxyz@1", "overlap.extxyz", "partial.cif", "broken.cif"}
    assert targets["Cu.cif"].atoms is not None and len(targets["Cu.cif"].atoms) == 4
    assert targets["two.extxyz@1"].atoms.get_chemical_formula() == "Ni"
    assert "overlap" in targets["overlap.extxyz"].error and "0.173 Å" in targets["overlap.extxyz"].error
    assert "partial occupancies" in targets["partial.cif"].error
    assert targets["broken.cif"].error.startswith(str(structure_files / "broken.cif"))


def test_fits_that_are_no_result_are_named_failures():
    v = np.linspace(10.0, 13.0, 7)
    with pytest.raises(ScreeningError, match="minimum is outside the grid"):
        fit_eos(v, birch_murnaghan(v, -3.0, 14.0, 0.8, 4.5))  # minimum above the grid: energies fall monotonically
    with pytest.raises(ScreeningError, match="not convex"):
        fit_eos(v, -0.1 * (v - 11.5) ** 2)
    with pytest.raises(ScreeningError, match="at least 5 finite"):
        fit_eos(v, [np.nan] * 7)
    with pytest.raises(ScreeningError, match="B1 = -2 is not positive"):
        fit_eos(v, birch_murnaghan(v, -3.0, 11.5, 0.8, -2.0))  # convex and bracketed, but B0 falls under compression
    fit = fit_eos(v, birch_murnaghan(v, -3.0, 11.5, 0.8, 4.5))
    assert fit.v0 == pytest.approx(11.5, abs=1e-6) and fit.b1 == pytest.approx(4.5, abs=1e-4)


def test_an_unbracketed_grid_is_recentred():
    compressed = bulk("Cu", "fcc", a=3.6 * 0.93, cubic=True)  # -20 % volume: EMT's minimum is far above the grid
    fit = eos_of(compressed, lambda images: energies_per_atom(images, EMT()))
    assert min(fit.volumes) < fit.v0 < max(fit.volumes)
    assert fit.v0 == pytest.approx(11.57, abs=0.05) and "vinet" in fit.others  # EMT Cu, as from the relaxed cell


def test_a_too_large_cell_is_recentred_and_odd_inputs_are_named(tmp_path):
    expanded = bulk("Cu", "fcc", a=3.6 * 1.08, cubic=True)  # +26 % volume: the minimum is below the grid
    fit = eos_of(expanded, lambda images: energies_per_atom(images, EMT()))
    assert min(fit.volumes) < fit.v0 < max(fit.volumes) and fit.v0 == pytest.approx(11.57, abs=0.05)
    (tmp_path / "empty").mkdir()
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / ".DS_Store").write_bytes(b"\0\1")
    write(tmp_path / "notes" / "molecule.xyz", Atoms("Cu2", positions=[[0, 0, 0], [2.5, 0, 0]], pbc=False))
    targets = {t.name: t for t in read_targets([tmp_path / "empty", tmp_path / "missing", tmp_path / "notes"])}
    assert "holds no file" in targets["empty"].error and "no such file" in targets["missing"].error
    assert set(targets) == {"empty", "missing", "molecule.xyz"}  # the hidden file is skipped
    with pytest.raises(ScreeningError, match="not periodic in all three directions"):
        screen_eos(targets["molecule.xyz"].atoms, EMT())


def test_delta_metrics_of_acwf():
    same = delta_metrics((11.5, 140.0, 5.0), (11.5, 140.0, 5.0))
    assert same == {"nu": 0.0, "epsilon": 0.0}
    shifted = delta_metrics((11.5, 140.0, 5.0), (11.615, 140.0, 5.0))  # +1 % volume
    assert shifted["nu"] == pytest.approx(100 * 2 * 0.115 / 23.115, rel=1e-9) and shifted["epsilon"] > 0.1


def test_sus2_screen_eos_prints_a_record_or_an_error_per_structure(tmp_path, structure_files, capsys):
    model = tmp_path / "cu_ni.pt"
    save_native(fitted_emt_model(), model)
    assert main(["screen", "eos", str(structure_files), "--model", str(model), "--json"]) == 0
    records = {r["file"]: r for r in map(json.loads, capsys.readouterr().out.splitlines())}
    assert len(records) == 6
    good = records["Cu.cif"]
    assert good["volume_range"][0] < good["v0_a3_atom"] < good["volume_range"][1] and good["b0_gpa"] > 0
    assert {k for k, r in records.items() if "error" in r} == {"overlap.extxyz", "partial.cif", "broken.cif"}


def test_spec_eos_targets_from_files(tmp_path, structure_files):
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump({**SPEC, "screening": {"eos": [{"path": "targets"}, {"element": "Cu",
                                                                                      "prototype": "fcc"}]}}))
    assert load_spec(path).screening.eos[0].path == str(structure_files)
    path.write_text(yaml.safe_dump({**SPEC, "screening": {"eos": [{"element": "Cu"}]}}))
    with pytest.raises(SpecError, match="give either element and prototype, or path"):
        load_spec(path)
    path.write_text(yaml.safe_dump({**SPEC, "screening": {"eos": [{"path": "missing"}]}}))
    with pytest.raises(SpecError, match=r"screening\.eos\.0\.path: missing does not exist"):
        load_spec(path)


def test_spec_named_model_screens_with_an_emt_reference(tmp_path):
    """``screening.model`` names a model file that screens instead of the campaign's, recorded by content hash;
    ``eos_reference: labeler`` runs the same EOS workflow with the labeler (EMT) and gives ν and ε."""
    from sus2_model.io.native import model_hash
    from sus2_model.predict import load_model
    from sus2_workflows import campaign
    from sus2_workflows.labelers import make_labeler

    fitted = fitted_emt_model()
    save_native(fitted, tmp_path / "cu_ni.pt")
    path = tmp_path / "spec.yaml"
    screening = {"model": {"path": "cu_ni.pt"}, "eos": [{"element": "Cu", "prototype": "fcc"}],
                 "eos_reference": "labeler"}
    path.write_text(yaml.safe_dump({**SPEC, "screening": screening}))
    spec = load_spec(path)
    assert spec.screening.model.path == str(tmp_path / "cu_ni.pt")
    model = campaign.screening_model(None, spec.screening.model)
    assert model.source == "spec" and model.model_hash == model_hash(load_model(tmp_path / "cu_ni.pt"))
    labeler = make_labeler({"type": "ase", "module": "ase.calculators.emt", "callable": "EMT"})
    ws = campaign.Workspace(tmp_path, campaign.MemoryCache())
    (result,) = campaign.screen(model, spec.screening.eos, ws, labeler).results
    reference = result.reference
    assert result.model_hash == model.model_hash and reference.error is None
    exact = screen_eos(bulk("Cu", "fcc", a=3.6, cubic=True), EMT())  # EMT's own EOS from the model-relaxed cell
    assert reference.v0 == pytest.approx(exact.v0, rel=2e-3) and reference.b0_gpa == pytest.approx(exact.b0_gpa, rel=0.02)
    assert reference.nu == pytest.approx(delta_metrics((result.v0, result.b0_gpa, result.b1),
                                                       (reference.v0, reference.b0_gpa, reference.b1))["nu"])
    n_cached = len(ws.cache.documents)
    assert campaign.screen(model, spec.screening.eos, ws, labeler).results[0].reference == reference
    assert len(ws.cache.documents) == n_cached  # nothing recomputed
    (tmp_path / "broken.pt").write_text("not a model")
    for name, message in (("missing.pt", "is not a file"), ("broken.pt", r"screening\.model: .*broken\.pt")):
        path.write_text(yaml.safe_dump({**SPEC, "screening": {**screening, "model": {"path": name}}}))
        with pytest.raises(SpecError, match=message):
            load_spec(path)


def test_curation_drops_failed_dft_but_keeps_large_total_energies():
    """A total energy of thousands of eV per atom (Cu with semicore states) is a label; a non-finite one, or one far
    from the composition fit of the others, is failed DFT."""
    from ase.calculators.singlepoint import SinglePointCalculator

    from sus2_workflows.spec import CurationSpec
    from sus2_workflows.steps.curate import drop_outliers

    images = []
    for k, energy in enumerate([-5900.0, -5900.1, -5899.9, -5900.05, -5000.0, float("nan")]):
        atoms = bulk("Cu", "fcc", a=3.6 + 0.01 * k, cubic=True)
        atoms.calc = SinglePointCalculator(atoms, energy=4 * energy, forces=np.zeros((4, 3)))
        images.append(atoms)
    lone = bulk("Ge", "diamond", a=5.66, cubic=True)  # the only Ge structure: the others cannot judge it
    lone.calc = SinglePointCalculator(lone, energy=8 * -2232.0, forces=np.zeros((8, 3)))
    kept = drop_outliers(images + [lone], CurationSpec())
    assert [a.get_potential_energy() / len(a) for a in kept] == [-5900.0, -5900.1, -5899.9, -5900.05, -2232.0]
    mixed = bulk("Cu", "fcc", a=3.6, cubic=True)  # Cu3Ge: both elements known from the others, energy 1000 eV off
    mixed.symbols[0] = "Ge"
    mixed.calc = SinglePointCalculator(mixed, energy=3 * -5900.0 - 2232.0 + 4000.0, forces=np.zeros((4, 3)))
    second = lone.copy()
    second.calc = SinglePointCalculator(second, energy=8 * -2232.01, forces=np.zeros((8, 3)))
    assert mixed not in drop_outliers(images + [lone, second, mixed], CurationSpec())


def test_an_engine_run_labeler_cannot_give_an_eos_reference_and_miller_indices_parse(tmp_path):
    from sus2_workflows.screen_cli import _miller

    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump({**SPEC, "labeler": {"type": "vasp"},
                                    "screening": {**SPEC["screening"], "eos_reference": "labeler"}}))
    with pytest.raises(SpecError, match="eos_reference: the labeler's EOS runs in process"):
        load_spec(path)
    assert [_miller(t) for t in ("111", "1-10", "1,1,0", "1 -1 0")] == [(1, 1, 1), (1, -1, 0), (1, 1, 0), (1, -1, 0)]
    with pytest.raises(Sus2WorkflowError, match="give three indices"):
        _miller("12")


def test_a_grid_beyond_the_training_volumes_is_named(tmp_path):
    """A campaign's EOS result says where its grid leaves the volumes of the training structures of its composition
    (the extrapolation grade misses this); a grid inside them, or within the margin, says nothing."""
    from sus2_workflows import campaign
    from sus2_workflows.campaign.screening import with_training_coverage
    from sus2_workflows.documents import DatasetDocument, atoms_to_dict
    from sus2_workflows.spec import EosTarget, ScreeningModelSpec
    from sus2_workflows.steps.eos import TRAINING_MARGIN, beyond_training

    assert beyond_training([10.0, 12.0], [9.9, 11.0, 12.1]) is None
    assert beyond_training([10.0, 12.0 * (1 + TRAINING_MARGIN / 2)], [10.0, 12.0]) is None
    assert "leaves the training volumes" in beyond_training([10.0, 13.0], [10.0, 12.0])
    assert "no training structure" in beyond_training([10.0, 12.0], [])

    save_native(fitted_emt_model(), tmp_path / "cu_ni.pt")
    model = campaign.screening_model(None, ScreeningModelSpec(path=str(tmp_path / "cu_ni.pt")))
    ws = campaign.Workspace(tmp_path, campaign.MemoryCache())
    (result,) = campaign.screen(model, [EosTarget(element="Cu", prototype="fcc")], ws).results

    def dataset(*structures: Atoms) -> DatasetDocument:
        return DatasetDocument(dataset_hash="x", n_structures=len(structures), n_atoms=0, labeler="emt",
                               labeler_settings={}, structures=[atoms_to_dict(a) for a in structures])

    v0 = result.v0
    spanning = [bulk("Cu", "fcc", a=(4 * v0 * s) ** (1 / 3), cubic=True) for s in (0.9, 1.1)]
    (covered,) = with_training_coverage([result], dataset(*spanning, bulk("Ni", "fcc", a=3.5)))
    assert covered.extrapolation is None and covered.v0 == result.v0
    (compressed,) = with_training_coverage([result], dataset(spanning[0], bulk("Ni", "fcc", a=4.0)))
    assert f"{max(result.volumes):.2f}" in compressed.extrapolation
    (other,) = with_training_coverage([result], dataset(bulk("Ni", "fcc", a=3.5)))
    assert "no training structure" in other.extrapolation
