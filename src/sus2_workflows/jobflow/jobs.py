"""jobflow jobs: each calls engine-neutral steps and the content-addressed cache, and returns a pydantic document.
Structures always travel in the ``data`` additional store, never in the documents collection."""

from __future__ import annotations

from pathlib import Path

from jobflow import Flow, OnMissing, Response, job

from sus2_model import Sus2Calculator, load_model
from sus2_model.train.data import dataset_hash, structure_hash

from ..cache import ResultCache, cache_store, content_key, file_sha256
from ..documents import (ActiveLearningDocument, CuratedDatasetDocument, CuratedTaskDocument, DatasetDocument,
                         DbsDocument, EosDocument, ModelDocument, Provenance, atoms_from_dict, atoms_to_dict)
from ..errors import LabelingError
from ..labelers import make_labeler
from ..steps.active import explore, select_uncertain
from ..steps.curate import curate_dataset, deduplicate, drop_outliers
from ..steps.dbs import select_bridging_set, unlabelled_copies
from ..steps.eos import screen_eos
from ..steps.label import label_structures
from ..steps.seeds import prototype
from ..steps.train import held_out_errors, train_model
from ..steps.vasp import VaspLabeler, atoms_from_task_document

STRUCTURES = ["structures", "train_structures", "test_structures"]


def _cache(folder: str, store_uri: str | None) -> ResultCache:
    return ResultCache(cache_store(store_uri, folder))


def _summary(document: dict) -> dict:
    """A document without its structures (what the provenance cache keeps)."""
    if isinstance(document, dict):
        return {k: _summary(v) for k, v in document.items() if k not in STRUCTURES}
    if isinstance(document, list):
        return [_summary(v) for v in document]
    return document


@job(data=STRUCTURES)
def curate(imports: list[dict], settings: dict, folder: str, store_uri: str | None = None) -> dict:
    """Import and curate existing datasets, one training task each.  Curation is cheap and deterministic, so it
    runs every time; its summary (no structures) goes to the provenance cache."""
    tasks = []
    for entry in imports:
        part = curate_dataset(entry["path"], entry["task"], entry.get("species"), settings["max_force"],
                              settings["max_energy_per_atom"], settings["test_fraction"])
        tasks.append(CuratedTaskDocument(
            task=part.task, source=part.source, source_sha256=file_sha256(entry["path"]),
            dataset_hash=part.dataset_hash, n_read=part.n_read, n_duplicates=part.n_duplicates,
            n_outliers=part.n_outliers, n_train=len(part.train), n_test=len(part.test), references=part.references,
            train_structures=[atoms_to_dict(a) for a in part.train],
            test_structures=[atoms_to_dict(a) for a in part.test]))
    document = CuratedDatasetDocument(
        dataset_hash=content_key(sorted(t.dataset_hash for t in tasks)), tasks=tasks, settings=settings,
        provenance=Provenance(inputs={"files": {t.source: t.source_sha256 for t in tasks}})).model_dump()
    _cache(folder, store_uri).put("curated", document["dataset_hash"], _summary(document))
    return document


@job(data=STRUCTURES)
def select_dbs(curated: dict, settings: dict, folder: str, store_uri: str | None = None) -> dict:
    """Choose the domain-bridging set from the imported tasks' training structures (the choice is cached)."""
    cache = _cache(folder, store_uri)
    pool, owner = [], []
    for task in curated["tasks"]:
        pool += [atoms_from_dict(d) for d in task["train_structures"]]
        owner += [(task["task"], k) for k in range(task["n_train"])]
    key = content_key(curated["dataset_hash"], settings)
    hit = cache.get("dbs_choice", key)
    if hit is None:
        hit = {"indices": select_bridging_set(pool, settings["fraction"], settings["min_count"],
                                              settings.get("max_atoms"))}
        cache.put("dbs_choice", key, hit)
    indices = hit["indices"]
    picks = [{"task": owner[i][0], "index": owner[i][1], "structure_hash": structure_hash(pool[i])} for i in indices]
    chosen = unlabelled_copies(pool, indices, [f"{owner[i][0]}:{owner[i][1]}" for i in indices])
    document = DbsDocument(
        dbs_hash=content_key(sorted(p["structure_hash"] for p in picks)), source_dataset_hash=curated["dataset_hash"],
        n_source=len(pool), method="farthest-point sampling, standardised SUS2 descriptors", settings=settings,
        picks=picks, structures=[atoms_to_dict(a) for a in chosen],
        provenance=Provenance(inputs={"curated_dataset_hash": curated["dataset_hash"]})).model_dump()
    cache.put("dbs", document["dbs_hash"], _summary(document))
    return document


def _dataset_document(labelled: list, failed: list, computed: int, method, previous: dict | None,
                      bridging: dict | None, cache: ResultCache) -> dict:
    """Merge new labels into ``previous`` (deduplicated, outliers dropped) and record the dataset."""
    merged = [atoms_from_dict(d) for d in (previous or {}).get("structures", [])] + labelled
    merged = drop_outliers(deduplicate(merged))
    document = DatasetDocument(
        dataset_hash=dataset_hash(merged), n_structures=len(merged), n_atoms=sum(len(a) for a in merged),
        labeler=method.name, labeler_settings=method.settings(), failed=failed, n_computed=computed,
        structures=[atoms_to_dict(a) for a in merged],
        provenance=Provenance(inputs={"previous_dataset": (previous or {}).get("dataset_hash"),
                                      "dbs_hash": (bridging or {}).get("dbs_hash")})).model_dump()
    cache.put("dataset", document["dataset_hash"], _summary(document))
    return document


@job(data=STRUCTURES)
def label(structures: list[dict], labeler: dict, folder: str, store_uri: str | None = None,
          previous: dict | None = None, bridging: dict | None = None) -> dict | Response:
    """Label structures (and a domain-bridging set), each DFT result cached as soon as it exists, and merge them
    into ``previous``.  VASP labels come from atomate2 ``StaticMaker`` jobs this job adds to the flow."""
    method = make_labeler(labeler)
    cache = _cache(folder, store_uri)
    settings_key = content_key(method.settings())
    labelled, todo = [], []
    for doc in list(structures) + list((bridging or {}).get("structures", [])):
        atoms = atoms_from_dict(doc)
        key = content_key(structure_hash(atoms), settings_key)
        hit = cache.get("label", key)
        if hit is None:
            todo.append((key, atoms))
        else:
            labelled.append(atoms_from_dict(hit))
    if isinstance(method, VaspLabeler) and todo:
        from pymatgen.io.ase import AseAtomsAdaptor

        statics = [method.maker().make(AseAtomsAdaptor.get_structure(atoms)) for _, atoms in todo]
        collect = collect_vasp_labels([s.output for s in statics], [k for k, _ in todo],
                                      [a.info.get("source", "") for _, a in todo], [atoms_to_dict(a) for a in labelled],
                                      labeler, folder, store_uri, previous, bridging)
        collect.config.on_missing_references = OnMissing.NONE  # a failed VASP run is recorded, not fatal
        return Response(replace=Flow(statics + [collect], output=collect.output))
    failed, computed = [], 0
    for key, atoms in todo:
        result = label_structures([atoms], method, Path(folder) / "dft" / key[:16])
        failed += result.failed
        if not result.labelled:
            cache.put("label_failed", key, result.failed[0])  # reported; retried on the next run
            continue
        cache.put("label", key, atoms_to_dict(result.labelled[0]))
        labelled.append(result.labelled[0])
        computed += 1
    return _dataset_document(labelled, failed, computed, method, previous, bridging, cache)


@job(data=STRUCTURES)
def collect_vasp_labels(tasks: list, keys: list[str], sources: list[str], cached: list[dict], labeler: dict,
                        folder: str, store_uri: str | None = None, previous: dict | None = None,
                        bridging: dict | None = None) -> dict:
    """Turn atomate2 VASP task documents into labels (cached one by one), then merge like :func:`label`."""
    method = make_labeler(labeler)
    cache = _cache(folder, store_uri)
    labelled, failed = [atoms_from_dict(d) for d in cached], []
    for task, key, source in zip(tasks, keys, sources):
        try:
            if task is None:
                raise LabelingError(f"{source}: the VASP job failed (see its job output)")
            atoms = atoms_from_task_document(task, source)
        except LabelingError as exc:
            failed.append({"source": source, "error": str(exc)})
            cache.put("label_failed", key, failed[-1])
            continue
        cache.put("label", key, atoms_to_dict(atoms))
        labelled.append(atoms)
    return _dataset_document(labelled, failed, len(labelled) - len(cached), method, previous, bridging, cache)


@job
def train_sus2(dataset: dict, training: dict, folder: str, store_uri: str | None = None, sources: dict | None = None,
               task: str | None = None) -> dict:
    """Train a SUS2 model on a labelled dataset, with the imported tasks of ``sources`` beside it (θ_C shared,
    θ_T per task); cached by dataset hashes and training settings."""
    cache = _cache(folder, store_uri)
    source_hash = (sources or {}).get("dataset_hash")
    key = content_key(dataset["dataset_hash"], training, source_hash, task)
    hit = cache.get("model", key)
    if hit is not None and Path(hit["model_path"]).exists():
        return hit
    others = {t["task"]: ([atoms_from_dict(d) for d in t["train_structures"]], 1.0) for t in (sources or {}).get("tasks", [])}
    info = train_model([atoms_from_dict(d) for d in dataset["structures"]], training,
                       Path(folder) / "models" / key[:16], task=task if others else None, other_tasks=others)
    held_out = [t for t in (sources or {}).get("tasks", []) if t["test_structures"]]
    trained = load_model(info["model_path"]) if held_out else None
    tests = {t["task"]: held_out_errors(trained, [atoms_from_dict(d) for d in t["test_structures"]], t["task"])
             for t in held_out}
    document = ModelDocument(**info, source_dataset_hash=source_hash, test_metrics=tests,
                             provenance=Provenance(inputs={"dataset_hash": dataset["dataset_hash"],
                                                           "source_dataset_hash": source_hash}))
    cache.put("model", key, document.model_dump())
    return document.model_dump()


@job
def active_learning(iteration: int, model: dict, dataset: dict, spec: dict, folder: str,
                    store_uri: str | None = None, history: list | None = None, sources: dict | None = None) -> Response:
    """One iteration: explore with MD, grade, label the uncertain frames, retrain, and schedule the next iteration
    (``Response(replace=...)``) until no frame is uncertain or the iteration cap is reached."""
    settings = spec["active_learning"]
    history = list(history or [])
    final = {"model": model, "dataset": dataset, "iterations": history}
    if iteration >= settings["iterations"]:
        return Response(output=final)
    cache = _cache(folder, store_uri)
    key = content_key(iteration, model["model_hash"], dataset["dataset_hash"], settings)
    hit = cache.get("active_learning", key)
    if hit is None:
        sus2 = load_model(model["model_path"])
        training = [atoms_from_dict(d) for d in dataset["structures"]]
        starts = [a for a in training if a.info.get("source", "").startswith("seed:")][:2] or training[:2]
        frames = explore(sus2, starts, settings["md_temperature_k"], settings["md_steps"], settings["sample_every"],
                         seed=iteration, task=model.get("task"))
        selected, grades = select_uncertain(sus2, training, frames, settings["grade_threshold"],
                                            settings["max_new_per_iteration"])
        record = ActiveLearningDocument(
            iteration=iteration, model_hash=model["model_hash"], n_explored=len(frames),
            grades=[float(g) for g in grades], selected_hashes=[structure_hash(a) for a in selected],
            labeler_settings=make_labeler(spec["labeler"]).settings(), converged=not selected).model_dump()
        hit = {"record": record, "selected": [atoms_to_dict(a) for a in selected]}
        cache.put("active_learning", key, hit)
    record, selected = hit["record"], hit["selected"]
    history.append(record)
    if not selected:
        return Response(output={**final, "iterations": history})
    new_data = label(selected, spec["labeler"], folder, store_uri, previous=dataset)
    warm_start = {**spec["training"], "init_model": model["model_path"]}  # fine-tune the current model
    new_model = train_sus2(new_data.output, warm_start, folder, store_uri, sources, model.get("task"))
    nxt = active_learning(iteration + 1, new_model.output, new_data.output, spec, folder, store_uri, history, sources)
    for step, name in ((new_data, "sus2 label"), (new_model, "sus2 train"), (nxt, "sus2 active learning")):
        step.name = f"{name} (iteration {iteration + 1})"
    return Response(replace=Flow([new_data, new_model, nxt], output=nxt.output))


@job
def screen_eos_job(result: dict, targets: list[dict], folder: str, store_uri: str | None = None) -> list[dict]:
    """Equation of state of each target with the final model (cached by model hash and target)."""
    model = result["model"]
    cache = _cache(folder, store_uri)
    calculator = Sus2Calculator(load_model(model["model_path"]), task=model.get("task"))
    documents = []
    for target in targets:
        key = content_key(model["model_hash"], target)
        hit = cache.get("eos", key)
        if hit is None:
            atoms = prototype(target["element"], target["prototype"], target.get("a"))
            fit = screen_eos(atoms, calculator)
            hit = EosDocument(formula=atoms.get_chemical_formula(), prototype=target["prototype"],
                              structure_hash=structure_hash(atoms), model_hash=model["model_hash"],
                              volumes=fit.volumes, energies=fit.energies, v0=fit.v0, e0=fit.e0, b0_gpa=fit.b0_gpa,
                              b1=fit.b1, provenance=Provenance(inputs={"model_hash": model["model_hash"],
                                                                       "dataset_hash": model["dataset_hash"]})
                              ).model_dump()
            cache.put("eos", key, hit)
        documents.append(hit)
    return documents
