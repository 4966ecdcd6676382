"""VASP labels through atomate2: the label job adds atomate2 StaticMaker jobs to the flow, and their task documents
become labelled, cached structures (VASP itself cannot run here; the task documents are built by hand)."""

from __future__ import annotations

import numpy as np
from ase import units
from ase.build import bulk
from jobflow import OnMissing, Response
from pymatgen.io.ase import AseAtomsAdaptor

from sus2_workflows.campaign import plan_labels
from sus2_workflows.cache import store_workspace
from sus2_workflows.documents import atoms_to_dict
from sus2_workflows.engines.jobflow import LabelMaker
from sus2_workflows.labelers import make_labeler
from sus2_workflows.provenance import campaign_status
from sus2_workflows.spec import LabelerSpec

VASP = {"type": "vasp", "incar": {"ENCUT": 520, "EDIFF": 1e-6}, "kpoints": {"reciprocal_density": 100}}


def test_label_job_adds_atomate2_static_jobs(tmp_path):
    structures = [atoms_to_dict(bulk("Si", "diamond", a=a, cubic=True)) for a in (5.40, 5.47)]
    maker = LabelMaker(labeler=LabelerSpec(**VASP), folder=str(tmp_path))
    response = LabelMaker.make.original(maker, structures)
    assert isinstance(response, Response)
    jobs = response.replace.jobs
    statics, records = jobs[:-1:2], jobs[1:-1:2]
    assert [j.name for j in statics] == ["sus2 vasp static"] * 2
    generator = statics[0].maker.input_set_generator
    assert type(generator).__name__ == "StaticSetGenerator" and generator.user_incar_settings["ENCUT"] == 520
    assert all(r.config.on_missing_references == OnMissing.NONE for r in records)  # a failed run is recorded
    assert make_labeler(VASP).settings()["incar"] == {"ENCUT": 520, "EDIFF": 1e-6}


def test_task_documents_become_labels_and_failures_are_recorded(tmp_path):
    atoms = bulk("Si", "diamond", a=5.43, cubic=True)
    forces = np.arange(24, dtype=float).reshape(8, 3) / 100
    kbar = np.diag([10.0, 20.0, 30.0]) + np.array([[0, 1, 2], [1, 0, 3], [2, 3, 0]])
    task = {"output": {"structure": AseAtomsAdaptor.get_structure(atoms).as_dict(), "energy": -43.2,
                       "forces": forces.tolist(), "stress": kbar.tolist()}}
    seeds = [atoms.copy(), atoms.copy()]
    seeds[1].rattle(0.01, seed=2)
    for k, seed in enumerate(seeds):
        seed.info["source"] = f"seed:{k}"
    structures = [atoms_to_dict(a) for a in seeds]
    maker = LabelMaker(labeler=LabelerSpec(**VASP), folder=str(tmp_path))
    keys = plan_labels(seeds, make_labeler(VASP), store_workspace(tmp_path)).todo_keys
    recorded = [LabelMaker.record.original(maker, key, seed.info["source"], output)
                for key, seed, output in zip(keys, seeds, [task, None])]
    assert campaign_status(tmp_path) == {"label": 1, "label_failed": 1}  # cached before the merge: a kill keeps it
    doc = LabelMaker.collect.original(maker, structures, recorded).model_dump()
    assert doc["n_structures"] == 1 and doc["n_computed"] == 1
    assert doc["failed"] == [{"source": "seed:1", "error": "seed:1: the VASP job failed (see its job output)"}]
    labelled = doc["structures"][0]
    assert labelled["energy"] == -43.2 and np.allclose(labelled["forces"], forces)
    # VASP prints kB with compression positive; ASE wants eV/Å³, tension positive, Voigt xx yy zz yz xz xy
    expected = -0.1 * units.GPa * np.array([10.0, 20.0, 30.0, 3.0, 2.0, 1.0])
    assert np.allclose(labelled["stress"], expected)
    assert campaign_status(tmp_path) == {"label": 1, "label_failed": 1, "dataset": 1}
