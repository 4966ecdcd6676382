"""Engine-neutral steps: labelling (EMT and real Quantum ESPRESSO) and the EOS fit."""

from __future__ import annotations

import re
import shutil

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.emt import EMT
from pydantic import ValidationError

from sus2_workflows.errors import LabelingError, SpecError
from sus2_workflows.labelers import make_labeler
from sus2_workflows.steps.eos import birch_murnaghan, fit_eos, screen_eos
from sus2_workflows.steps.label import AseLabeler, label_structures


def test_ase_labeler_labels_and_records_failures(tmp_path):
    good = bulk("Cu", "fcc", a=3.6)
    bad = bulk("Cu", "fcc", a=3.6)
    bad.set_chemical_symbols(["U"])  # EMT has no parameters for U
    bad.info["source"] = "seed:uranium"
    result = label_structures([good, bad, good * 2], AseLabeler("ase.calculators.emt", "EMT"), tmp_path)
    assert len(result.labelled) == 2
    assert result.failed[0]["source"] == "seed:uranium" and "U" in result.failed[0]["error"]
    assert result.labelled[0].get_potential_energy() == pytest.approx(EMT().get_potential_energy(good), abs=1e-10)
    assert result.labelled[0].info["labeler"] == "ase"


@pytest.mark.skipif(shutil.which("pw.x") is None, reason="Quantum ESPRESSO (pw.x) is not installed")
def test_quantum_espresso_labeler_runs_pw(tmp_path):
    atoms = bulk("Si", "diamond", a=5.43)
    atoms.rattle(0.02, seed=1)
    labeler = make_labeler({"type": "quantum_espresso", "pseudopotentials": {"Si": "Si.pbe-rrkj.UPF"}, "ecutwfc": 20,
                            "kspacing": 0.5, "pw_input": {"electrons": {"mixing_beta": 0.4}}})
    result = label_structures([atoms], labeler, tmp_path)
    assert not result.failed
    labelled = result.labelled[0]
    assert -230 < labelled.get_potential_energy() < -180  # eV: two Si atoms with this pseudopotential
    forces = labelled.get_forces()
    assert np.abs(forces).max() > 0.01 and np.abs(forces.sum(axis=0)).max() < 1e-3
    assert labelled.get_stress().shape == (6,)
    pw_input = (tmp_path / "00000" / "espresso.pwi").read_text()
    assert "K_POINTS automatic\n5 5 5" in pw_input  # VASP's KSPACING rule: ceil(2π|b|/0.5), primitive cell
    assert re.search(r"&ELECTRONS\n\s+mixing_beta\s+= 0.4", pw_input) and "tstress" in pw_input


def test_extra_pw_input_is_checked_and_keyed():
    spec = {"type": "quantum_espresso", "pseudopotentials": {"Si": "x"}}
    assert "pw_input" not in make_labeler(spec).settings()  # earlier labels keep their cache keys
    tuned = make_labeler(dict(spec, pw_input={"electrons": {"mixing_beta": 0.3}})).settings()
    assert tuned["pw_input"] == {"electrons": {"mixing_beta": 0.3}}
    with pytest.raises(SpecError, match=r"pw_input\.system\.ecutwfc: set by the labeler"):
        make_labeler(dict(spec, pw_input={"system": {"ecutwfc": 80}}))
    with pytest.raises(SpecError, match=r"starting_magnetization\(1\): a per-species entry"):
        make_labeler(dict(spec, pw_input={"system": {"starting_magnetization(1)": 0.5}}))
    with pytest.raises(ValidationError):
        make_labeler(dict(spec, pw_input={"ions": {"ion_dynamics": "bfgs"}}))  # an SCF label has no ions


def test_kpoint_grid_follows_vasps_kspacing_rule():
    from sus2_workflows.steps.label import kpoint_grid

    assert kpoint_grid(bulk("Si", "diamond", a=5.43, cubic=True), 0.25) == (5, 5, 5)  # ceil(2π/5.43/0.25) = 5
    slab = bulk("Cu", "fcc", a=3.61, cubic=True)
    slab.pbc = (True, True, False)
    assert kpoint_grid(slab, 0.5) == (4, 4, 1)
    assert make_labeler({"type": "quantum_espresso", "pseudopotentials": {"Si": "x"}, "kpts": [2, 2, 2]}
                        ).settings()["kpts"] == [2, 2, 2]


def test_cutoffs_below_a_pseudopotentials_suggestion_are_refused(tmp_path):
    header = ("  Info: Cu scalar-relativistic PAW\n  Suggested minimum cutoff for wavefunctions:  47. Ry\n"
              "  Suggested minimum cutoff for charge density: 189. Ry\n")
    (tmp_path / "Cu.UPF").write_text(f"<UPF version=\"2.0.1\">\n<PP_INFO>\n{header}</PP_INFO>\n")
    (tmp_path / "Si.UPF").write_text("<UPF version=\"2.0.1\">\n<PP_INFO>\n</PP_INFO>\n")  # suggests nothing
    spec = {"type": "quantum_espresso", "pseudopotentials": {"Cu": "Cu.UPF", "Si": "Si.UPF"}, "pseudo_dir": str(tmp_path)}
    with pytest.raises(SpecError, match=r"ecutwfc 30 Ry is below the 47 Ry that Cu.UPF \(Cu\) suggests"):
        make_labeler(dict(spec, ecutwfc=30))
    with pytest.raises(SpecError, match="ecutrho 150 Ry is below the 189 Ry"):
        make_labeler(dict(spec, ecutwfc=50, ecutrho=150))
    settings = make_labeler(dict(spec, ecutwfc=50)).settings()
    assert settings["ecutwfc_ry"] == 50 and settings["ecutrho_ry"] == 200  # pw.x's default, 4 x ecutwfc


def test_missing_pw_x_is_a_clear_error(tmp_path):
    labeler = make_labeler({"type": "quantum_espresso", "pseudopotentials": {"Si": "Si.pbe-rrkj.UPF"},
                            "command": "no-such-pw.x"})
    with pytest.raises(LabelingError, match="no-such-pw.x not found on PATH"):
        label_structures([bulk("Si")], labeler, tmp_path)


def test_a_pw_output_without_a_result_is_a_labeling_error_naming_the_structure(tmp_path):
    (tmp_path / "aiida.out").write_text("     Program PWSCF v.6.7MaX starts on  7Dec2026\n")
    labeler = make_labeler({"type": "quantum_espresso", "pseudopotentials": {"Si": "Si.pbe-rrkj.UPF"}})
    with pytest.raises(LabelingError, match=r"seed:3: no pw.x result in .*aiida.out"):
        labeler.labels_from_output(tmp_path / "aiida.out", bulk("Si"), "seed:3")


def test_birch_murnaghan_fit_recovers_emt_copper():
    fit = screen_eos(bulk("Cu", "fcc", a=3.6), EMT())
    assert fit.v0 == pytest.approx(11.57, abs=0.05)  # EMT Cu
    assert 120 < fit.b0_gpa < 150 and 3 < fit.b1 < 7 and fit.rms_residual_mev < 0.5
    v = np.linspace(10, 13, 9)
    exact = fit_eos(v, birch_murnaghan(v, -3.0, 11.5, 0.8, 4.5))
    assert (exact.v0, exact.e0, exact.b1) == pytest.approx((11.5, -3.0, 4.5), abs=1e-6)
    assert exact.b0_gpa == pytest.approx(0.8 * 160.21766208, rel=1e-6)
