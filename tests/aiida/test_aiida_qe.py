"""Quantum ESPRESSO labels under AiiDA: aiida-quantumespresso's ``PwBaseWorkChain`` with the labeler's own
pseudopotentials as an aiida-pseudo family gives labels equal to the in-process labeler's to the bit; run again it
computes nothing; an SCF that does not converge, after PwBaseWorkChain's restarts, is a named exit code recorded in the
campaign's dataset; labels the campaign's cache already holds need no pw.x at all."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from aiida import orm
from aiida.engine import run_get_node
from aiida_pseudo.groups.family import PseudoPotentialFamily
from ase.build import bulk

from sus2_workflows import campaign
from sus2_workflows.cache import store_workspace
from sus2_workflows.campaign.labels import label_key
from sus2_workflows.documents import atoms_to_dict
from sus2_workflows.engines.aiida.data import DocumentData
from sus2_workflows.engines.aiida.functions import EXIT_CODES
from sus2_workflows.engines.aiida.pw import local_pw_code
from sus2_workflows.engines.aiida.workchains import Sus2LabelWorkChain
from sus2_workflows.errors import LabelingError
from sus2_workflows.labelers import make_labeler
from sus2_workflows.spec import CurationSpec
from sus2_workflows.steps.label import label_structures, labelled_copy

needs_pw = pytest.mark.skipif(shutil.which("pw.x") is None, reason="Quantum ESPRESSO (pw.x) is not installed")

# fast settings: the point is equality of the two paths, not converged physics
SILICON = {"type": "quantum_espresso", "pseudopotentials": {"Si": "Si.pbe-rrkj.UPF"}, "ecutwfc": 12.0,
           "kpts": [2, 2, 2], "smearing": "mv", "degauss": 0.02}


def _silicon() -> list:
    """Two Si cells whose cells have more decimals than pw.x's input keeps, one rattled, sheared and tagged."""
    first = bulk("Si", "diamond", a=5.43 * 1.0123456789012345)
    second = bulk("Si", "diamond", a=5.43 * 0.9876543210987654)
    second.set_cell(second.cell.array @ np.array([[1, 0.02, 0], [0, 1, 0], [0, 0, 1]]), scale_atoms=True)
    second.rattle(0.05, seed=3)
    second.set_tags([1, 0])  # as a slab's layers are tagged: no species of its own in pw.x's input
    for k, atoms in enumerate((first, second)):
        atoms.info["source"] = f"si:{k}"
    return [first, second]


def _label(structures: list, labeler: dict, folder) -> orm.WorkflowNode:
    _, node = run_get_node(Sus2LabelWorkChain, structures=DocumentData([atoms_to_dict(a) for a in structures]),
                           labeler=orm.Dict(labeler), curation=orm.Dict(CurationSpec().model_dump(mode="json")),
                           folder=orm.Str(str(folder)))
    return node


def _pw_calculations(node: orm.WorkflowNode) -> list:
    return [n for n in node.called_descendants if n.process_type == "aiida.calculations:quantumespresso.pw"]


@needs_pw
def test_pw_base_work_chain_labels_equal_the_in_process_labeler_and_a_rerun_computes_nothing(tmp_path):
    structures = _silicon()
    in_process = label_structures(structures, make_labeler(SILICON), tmp_path / "inline")
    assert not in_process.failed
    node = _label(structures, SILICON, tmp_path / "aiida")
    assert node.is_finished_ok, node.exit_message
    calculations = _pw_calculations(node)
    assert len(calculations) == 2 and all(c.is_finished_ok for c in calculations)
    dataset = node.outputs.dataset.document
    assert dataset.n_structures == 2 and not dataset.failed
    for expected, got in zip(in_process.labelled, dataset.structures):
        assert got["energy"] == expected.get_potential_energy()
        assert got["forces"] == expected.get_forces().tolist() and got["stress"] == expected.get_stress().tolist()
    # the pseudopotential is the labeler's own file, in an aiida-pseudo family; the graph runs DFT -> label -> dataset
    pseudo = calculations[0].inputs.pseudos.Si
    assert pseudo.filename == "Si.pbe-rrkj.UPF" and pseudo.element == "Si"
    assert any(g.label.startswith("sus2/") and pseudo.pk in {n.pk for n in g.nodes}
               for g in PseudoPotentialFamily.collection.all())
    merged = node.outputs.dataset.creator
    readers = [link.node.creator for link in merged.base.links.get_incoming().all() if link.link_label != "folder"
               and isinstance(link.node, DocumentData) and link.node.creator is not None]
    assert sorted(r.process_label for r in readers if r.process_label == "pw_label") == ["pw_label"] * 2
    assert all(r.inputs.retrieved.creator.pk in {c.pk for c in calculations} for r in readers
               if r.process_label == "pw_label")
    again = _label(structures, SILICON, tmp_path / "aiida")
    assert again.is_finished_ok and not _pw_calculations(again)
    assert again.outputs.dataset.document.dataset_hash == dataset.dataset_hash


@needs_pw
def test_an_scf_that_does_not_converge_after_the_restarts_is_a_named_exit_code_listed_in_the_dataset(tmp_path):
    stubborn = {**SILICON, "pw_input": {"electrons": {"electron_maxstep": 1}}}
    node = _label(_silicon()[:1], stubborn, tmp_path)
    assert node.is_finished_ok
    failed = [n for n in node.called if not n.is_finished_ok]
    assert len(failed) == 1 and failed[0].exit_status == EXIT_CODES["ERROR_SCF_NOT_CONVERGED"][0]
    assert "si:0" in failed[0].exit_message and "PwBaseWorkChain" in failed[0].exit_message
    assert len(_pw_calculations(node)) > 1  # PwBaseWorkChain restarted it with safer mixing first
    dataset = node.outputs.dataset.document
    assert dataset.n_structures == 0 and dataset.failed[0]["source"] == "si:0"


@needs_pw
def test_a_structure_pw_x_cannot_run_fails_alone_and_is_listed_in_the_dataset(tmp_path):
    germanium = bulk("Si", "diamond", a=5.5)
    germanium[0].symbol = "Ge"  # the labeler names no pseudopotential for Ge
    germanium.info["source"] = "sige"
    node = _label([_silicon()[0], germanium], SILICON, tmp_path)
    assert node.is_finished_ok
    failed = [n for n in node.called if not n.is_finished_ok]
    assert len(failed) == 1 and failed[0].exit_status == EXIT_CODES["ERROR_LABEL_FAILED"][0]
    assert "sige: the pw.x inputs" in failed[0].exit_message and "Ge" in failed[0].exit_message
    dataset = node.outputs.dataset.document
    assert dataset.n_structures == 1 and [f["source"] for f in dataset.failed] == ["sige"]


def test_labels_already_in_the_cache_need_no_pw_x_here_and_missing_ones_say_what_is_missing(tmp_path):
    elsewhere = {**SILICON, "command": "no-such-pw.x"}  # e.g. labels imported from a cluster's campaign
    labeler, structures = make_labeler(elsewhere), _silicon()
    for atoms in structures:
        labels = {"energy": -200.0, "forces": np.zeros((len(atoms), 3)), "stress": np.zeros(6)}
        campaign.store_label(label_key(atoms, labeler), atoms_to_dict(labelled_copy(atoms, labels, labeler.name, "x")),
                             labeler, store_workspace(tmp_path))
    node = _label(structures, elsewhere, tmp_path)
    assert node.is_finished_ok and node.outputs.dataset.document.n_structures == 2
    assert [n.process_label for n in node.called] == ["merge_labels"]
    new = bulk("Si", "diamond", a=5.5)
    node = _label([new], elsewhere, tmp_path)
    assert node.exit_status == EXIT_CODES["ERROR_BAD_INPUT"][0] and "no pw.x on PATH" in node.exit_message


def test_the_labelers_command_becomes_a_code_on_this_machine_with_its_mpi_processes():
    code, options, flags = local_pw_code("true")  # any executable: only its path and the launcher matter here
    assert options == {"resources": {"num_machines": 1, "num_mpiprocs_per_machine": 1}, "withmpi": False}
    assert code.computer.label == "sus2-localhost" and code.filepath_executable.name == "true" and flags == []
    code, options, _ = local_pw_code("mpirun --allow-run-as-root -np 4 true")
    assert options["withmpi"] and options["resources"]["num_mpiprocs_per_machine"] == 4
    assert code.computer.get_mpirun_command() == ["mpirun", "--allow-run-as-root", "-np", "{tot_num_mpiprocs}"]
    assert local_pw_code("mpirun --allow-run-as-root -np 2 true")[0].pk == code.pk  # one computer per launcher
    with pytest.raises(LabelingError, match="name the MPI process count"):
        local_pw_code("mpirun true")
    if shutil.which("pw.x"):  # pw.x's own flags go to its command line
        code, options, flags = local_pw_code("mpirun --allow-run-as-root -np 2 pw.x -nk 2")
        assert code.filepath_executable.name == "pw.x" and flags == ["-nk", "2"]
