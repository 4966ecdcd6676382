"""``sus2 train`` as an AiiDA CalcJob on a computer (here this machine through AiiDA's local transport and direct
scheduler, as a cluster's GPU node would be through SSH and Slurm): the model it brings back equals the one the
campaign's training stage makes of the same data and settings; a run that fails ends with a named exit code and its
error."""

from __future__ import annotations

import sys
from pathlib import Path

from aiida import orm
from aiida.engine import run_get_node
from ase.build import bulk

from sus2_workflows import campaign
from sus2_workflows.cache import store_workspace
from sus2_workflows.documents import atoms_from_dict
from sus2_workflows.engines.aiida.calculations import Sus2TrainCalculation
from sus2_workflows.engines.aiida.data import DatasetData, ModelData
from sus2_workflows.engines.aiida.pw import local_computer
from sus2_workflows.spec import CurationSpec
from sus2_workflows.steps.label import AseLabeler
from sus2_workflows.steps.train import train_model

TRAINING = {"max_rank": 2, "n_radial": 2, "max_level": 8, "radial_basis_size": 6, "cutoff": 4.5, "epochs": 3,
            "max_time": 120, "valid_fraction": 0.0}


def test_the_train_calcjob_brings_back_the_model_the_campaign_stage_trains(tmp_path, aiida_code_installed):
    structures = []
    for k, strain in enumerate((-0.02, 0.0, 0.02, 0.03)):
        atoms = bulk("Cu", "fcc", a=3.6 * (1 + strain), cubic=True)
        atoms.rattle(0.05, seed=k)
        structures.append(atoms)
    dataset = campaign.label(structures, AseLabeler("ase.calculators.emt", "EMT"), CurationSpec(),
                             store_workspace(tmp_path / "campaign"))
    code = aiida_code_installed(default_calc_job_plugin="sus2.train", computer=local_computer([]),
                                filepath_executable=str(Path(sys.executable).parent / "sus2"))
    outputs, node = run_get_node(Sus2TrainCalculation, code=code, dataset=DatasetData(dataset),
                                 training=orm.Dict(TRAINING))
    assert node.is_finished_ok, node.exit_message
    model = outputs["model"]
    expected = train_model([atoms_from_dict(d) for d in dataset.structures], TRAINING, tmp_path / "stage")
    assert isinstance(model, ModelData) and model.model_hash == expected["model_hash"]
    assert model.base.attributes.get("species") == ["Cu"] and outputs["report"]["epochs"] == 3
    document = model.document()
    assert document.dataset_hash == dataset.dataset_hash and Path(document.model_path).read_bytes() == \
        model.get_content("rb")


def test_a_training_run_that_fails_ends_with_a_named_exit_code_and_its_error(tmp_path, aiida_code_installed):
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True)
    dataset = campaign.label([atoms], AseLabeler("ase.calculators.emt", "EMT"), CurationSpec(),
                             store_workspace(tmp_path))
    code = aiida_code_installed(default_calc_job_plugin="sus2.train", computer=local_computer([]),
                                filepath_executable=str(Path(sys.executable).parent / "sus2"))
    _, node = run_get_node(Sus2TrainCalculation, code=code, dataset=DatasetData(dataset),
                           training=orm.Dict({"no_such_setting": 1}))
    assert node.exit_status == Sus2TrainCalculation.exit_codes.ERROR_TRAINING_FAILED.status
    assert "unknown key 'no_such_setting'" in node.exit_message and "model" not in node.outputs
