"""The ``sus2`` command line."""

from __future__ import annotations

import json

from sus2_model.cli import main
from sus2_model.demo import emt_dataset, fitted_emt_model
from sus2_model.io import write_cfg, write_mtp


def test_eval_and_info(tmp_path, capsys):
    model = fitted_emt_model(n_train=16)
    write_mtp(model.to_mtp(), tmp_path / "m.mtp")
    write_cfg(tmp_path / "d.cfg", emt_dataset(5, seed=3), ["Cu", "Ni"])
    assert main(["eval", str(tmp_path / "m.mtp"), str(tmp_path / "d.cfg"), "--species", "Cu,Ni", "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["n_structures"] == 5 and metrics["n_atoms"] > 5
    for key in ("energy_mae_mev_atom", "energy_rmse_mev_atom", "force_mae_ev_a", "force_rmse_ev_a",
                "stress_mae_gpa", "seconds"):
        assert metrics[key] >= 0
    assert metrics["energy_mae_mev_atom"] < 100
    assert main(["info", str(tmp_path / "m.mtp"), "--species", "Cu,Ni", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["parameters"] == model.parameter_count() and info["L"] == 2


def test_eval_reports_bad_files(tmp_path, capsys):
    (tmp_path / "bad.mtp").write_text("MTP\nversion = 1.1.0\nL = 2\n")
    write_cfg(tmp_path / "d.cfg", emt_dataset(1), ["Cu", "Ni"])
    assert main(["eval", str(tmp_path / "bad.mtp"), str(tmp_path / "d.cfg"), "--species", "Cu,Ni"]) == 2
    assert "bad.mtp:3: missing required key 'scaling_map'" in capsys.readouterr().err
