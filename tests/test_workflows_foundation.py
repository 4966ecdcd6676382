"""Workflow foundations: the SUS2 calculator inside atomate2's makers; embedded and MongoDB job stores."""

from __future__ import annotations

import pytest
from ase.build import bulk
from jobflow import run_locally
from pymatgen.io.ase import AseAtomsAdaptor

from sus2_model import Sus2Calculator, __version__
from sus2_model.demo import fitted_emt_model
from sus2_model.io.native import save_native
from sus2_workflows.errors import StoreError
from sus2_workflows.forcefield import sus2_maker_kwargs
from sus2_workflows.stores import check_store, job_store


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "cu_ni.pt"
    save_native(fitted_emt_model(n_train=16), path)
    return path


def test_atomate2_makers_run_sus2_and_record_it(tmp_path, model_file):
    from atomate2.forcefields.jobs import ForceFieldRelaxMaker, ForceFieldStaticMaker

    atoms = bulk("Cu", "fcc", a=3.65, cubic=True)
    atoms.rattle(0.03, seed=1)
    structure = AseAtomsAdaptor.get_structure(atoms)
    static = ForceFieldStaticMaker(**sus2_maker_kwargs(model_file)).make(structure)
    relax = ForceFieldRelaxMaker(relax_cell=True, steps=50, **sus2_maker_kwargs(model_file)).make(structure)
    store = job_store(None, tmp_path)
    responses = run_locally([static, relax], store=store, create_folders=True, root_dir=tmp_path, ensure_success=True)
    doc = responses[static.uuid][1].output
    assert doc.forcefield_name.startswith("SUS2 cu_ni.pt ")
    assert doc.forcefield_version == __version__
    atoms.calc = Sus2Calculator(str(model_file))
    assert doc.output.energy == pytest.approx(atoms.get_potential_energy(), abs=1e-6)
    relaxed = responses[relax.uuid][1].output
    assert relaxed.output.energy < doc.output.energy
    stored = store.query_one({"uuid": static.uuid})
    assert stored["output"]["forcefield_name"] == doc.forcefield_name


def test_atomate2_eos_and_md_makers_run_sus2(tmp_path, model_file):
    from atomate2.forcefields.flows.eos import ForceFieldEosMaker
    from atomate2.forcefields.md import ForceFieldMDMaker

    structure = AseAtomsAdaptor.get_structure(bulk("Cu", "fcc", a=3.6, cubic=True))
    kwargs = sus2_maker_kwargs(model_file)
    eos = ForceFieldEosMaker.from_force_field_name(kwargs["force_field_name"], kwargs["calculator_kwargs"],
                                                   number_of_frames=5).make(structure)
    md = ForceFieldMDMaker(n_steps=20, temperature=300, **kwargs).make(structure)
    responses = run_locally([eos, md], store=job_store(None, tmp_path), create_folders=True, root_dir=tmp_path,
                            ensure_success=True)
    fit = responses[eos.jobs[-1].uuid][1].output
    assert len(fit["relax"]["energy"]) == 6 and 9 < fit["relax"]["EOS"]["birch_murnaghan"]["v0"] / 4 < 14  # 5 frames + the relaxed cell
    trajectory = responses[md.uuid][1].output
    assert trajectory.forcefield_name.startswith("SUS2 cu_ni.pt ") and trajectory.output.n_steps == 21


def _roundtrip(store) -> None:
    from jobflow import job

    @job(data=["blob"])
    def make_blob(n: int) -> dict:
        return {"blob": list(range(n)), "n": n}

    flow_job = make_blob(5000)
    responses = run_locally(flow_job, store=store, ensure_success=True)
    assert responses[flow_job.uuid][1].output["n"] == 5000
    raw = store.docs_store.query_one({"uuid": flow_job.uuid})
    assert "@class" in str(raw["output"]["blob"]) and "blob_uuid" in str(raw["output"]["blob"])  # a reference only
    assert store.query_one({"uuid": flow_job.uuid}, load=True)["output"]["blob"][-1] == 4999


def test_embedded_store_keeps_blobs_out_of_documents(tmp_path):
    store = job_store(None, tmp_path)
    _roundtrip(store)
    assert (tmp_path / "store").is_dir()
    _roundtrip(job_store(None, tmp_path))  # reopens the same files


def test_mongodb_store_same_code_with_mongomock(monkeypatch):
    """No MongoDB server can run here: the production stores talk to mongomock through maggma's own MongoClient."""
    import maggma.stores.gridfs
    import maggma.stores.mongolike
    import mongomock.gridfs

    mongomock.gridfs.enable_gridfs_integration()
    server = mongomock.MongoClient()
    client = lambda *args, **kwargs: server  # noqa: E731 - every connection reaches the same in-memory server
    monkeypatch.setattr(maggma.stores.mongolike, "MongoClient", client)
    monkeypatch.setattr(maggma.stores.gridfs, "MongoClient", client)
    store = job_store("mongodb://db.example.org:27017", "unused")
    assert type(store.docs_store).__name__ == "MongoURIStore"
    assert type(store.additional_stores["data"]).__name__ == "GridFSURIStore"
    _roundtrip(store)
    assert server["sus2"]["data.files"].count_documents({}) == 1  # the blob went to GridFS


def test_bad_store_uris():
    with pytest.raises(StoreError, match="store URI 'redis://x'"):
        job_store("redis://x", "unused")
    store = job_store("mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=300", "unused")
    with pytest.raises(StoreError, match="cannot reach the job store"):
        check_store(store)
