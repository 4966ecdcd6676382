"""jobflow jobs: each calls engine-neutral steps and the content-addressed cache, and returns a pydantic document."""

from __future__ import annotations

from pathlib import Path
from jobflow import Flow, Response, job

from sus2_model import Sus2Calculator, load_model
from sus2_model.train.data import dataset_hash, structure_hash

from ..cache import ResultCache, cache_store, content_key
from ..documents import (ActiveLearningDocument, DatasetDocument, EosDocument, ModelDocument, Provenance,
                         atoms_from_dict, atoms_to_dict)
from ..labelers import make_labeler
from ..steps.active import explore, select_uncertain
from ..steps.curate import deduplicate, drop_outliers, prototype
from ..steps.eos import screen_eos
from ..steps.label import label_structures
from ..steps.train import train_model


def _cache(folder: str, store_uri: str | None) -> ResultCache:
    return ResultCache(cache_store(store_uri, folder))


@job(data=["structures"])
def label(structures: list[dict], labeler: dict, folder: str, store_uri: str | None = None,
          previous: dict | None = None) -> dict:
    """Label structures (each DFT result cached as soon as it exists) and merge them into ``previous``."""
    method = make_labeler(labeler)
    cache = _cache(folder, store_uri)
    settings_key = content_key(method.settings())
    labelled, failed, computed = [], [], 0
    for doc in structures:
        atoms = atoms_from_dict(doc)
        key = content_key(structure_hash(atoms), settings_key)
        hit = cache.get("label", key)
        if hit is None:
            result = label_structures([atoms], method, Path(folder) / "dft" / key[:16])
            failed += result.failed
            if not result.labelled:
                cache.put("label_failed", key, result.failed[0])  # reported; retried on the next run
                continue
            hit = atoms_to_dict(result.labelled[0])
            cache.put("label", key, hit)
            computed += 1
        labelled.append(atoms_from_dict(hit))
    merged = [atoms_from_dict(d) for d in (previous or {}).get("structures", [])] + labelled
    merged = drop_outliers(deduplicate(merged))
    return DatasetDocument(
        dataset_hash=dataset_hash(merged), n_structures=len(merged), n_atoms=sum(len(a) for a in merged),
        labeler=method.name, labeler_settings=method.settings(), failed=failed, n_computed=computed,
        structures=[atoms_to_dict(a) for a in merged],
        provenance=Provenance(inputs={"previous_dataset": (previous or {}).get("dataset_hash")})).model_dump()


@job
def train_sus2(dataset: dict, training: dict, folder: str, store_uri: str | None = None) -> dict:
    """Train a SUS2 model on a labelled dataset (cached by dataset hash and training settings)."""
    cache = _cache(folder, store_uri)
    key = content_key(dataset["dataset_hash"], training)
    hit = cache.get("model", key)
    if hit is not None and Path(hit["model_path"]).exists():
        return hit
    info = train_model([atoms_from_dict(d) for d in dataset["structures"]], training, Path(folder) / "models" / key[:16])
    document = ModelDocument(**info, provenance=Provenance(inputs={"dataset_hash": dataset["dataset_hash"]}))
    cache.put("model", key, document.model_dump())
    return document.model_dump()


@job
def active_learning(iteration: int, model: dict, dataset: dict, spec: dict, folder: str,
                    store_uri: str | None = None, history: list | None = None) -> Response:
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
                         seed=iteration)
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
    new_model = train_sus2(new_data.output, warm_start, folder, store_uri)
    nxt = active_learning(iteration + 1, new_model.output, new_data.output, spec, folder, store_uri, history)
    return Response(replace=Flow([new_data, new_model, nxt], output=nxt.output))


@job
def screen_eos_job(result: dict, targets: list[dict], folder: str, store_uri: str | None = None) -> list[dict]:
    """Equation of state of each target with the final model (cached by model hash and target)."""
    model = result["model"]
    cache = _cache(folder, store_uri)
    calculator = Sus2Calculator(load_model(model["model_path"]))
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

