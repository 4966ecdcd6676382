"""Campaign stages for the model: training (single task, or the campaign's task beside the imported ones with their
spec weights; fine-tuning from a previous model; held-out metrics) and one active-learning iteration (explore with
MD, measure the uncertainty, select between the trust levels, measure the model on the validation set) with the rule
that ends the loop."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms

from sus2_model import Sus2Potential, load_model
from sus2_model.train.config import load_config
from sus2_model.train.data import structure_hash

from ..documents import ActiveLearningDocument, ActiveLearningResult, CuratedDatasetDocument, DatasetDocument, \
    ModelDocument, Provenance, atoms_from_dict, atoms_to_dict, summary_of
from ..hashing import content_key
from ..spec import ActiveLearningSpec
from ..steps.active import explore, new_minima, relaxation_frames, select_uncertain, uncertainties, \
    uncertainty_measure
from ..steps.seeds import generate_seeds
from ..steps.label import Labeler
from ..steps.train import held_out_errors, train_model
from .cache import Workspace
from .labels import labelled_here

MD_STARTS = 2  # structures each iteration starts MD from
SEED_SOURCE = "seed:"  # the ``info["source"]`` prefix of seed structures (see steps.seeds)
VALIDATION_SOURCE = "validation"  # the ``info["source"]`` prefix of validation structures: never a seed
VALIDATION_SEED = 1000  # their random strains and rattles are drawn apart from the seeds' (seed k uses k)
SURFACE_SOURCE = "seed:surface:"  # ... of the slab seeds of learned surfaces (see campaign.adsorption)
NOT_IN_MODEL_KEY = ("train", "valid", "init_model", "device", "threads", "checkpoint_every")  # where, not what


def training_settings(training: dict[str, Any]) -> dict[str, Any]:
    """Every training setting that determines the model, defaults resolved (a changed default is a new model)."""
    resolved = load_config(None, train=["-"], **training).to_dict()
    return {k: v for k, v in resolved.items() if k not in NOT_IN_MODEL_KEY}


def training_tasks(sources: CuratedDatasetDocument | None) -> dict[str, tuple[list[Atoms], float]]:
    """The imported tasks trained beside the campaign's own labels: {task: (training structures, spec weight)}."""
    tasks = sources.tasks if sources else []
    return {t.task: ([atoms_from_dict(d) for d in t.train_structures], t.weight) for t in tasks}


def train(dataset: DatasetDocument, training: dict[str, Any], ws: Workspace,
          sources: CuratedDatasetDocument | None = None, task: str | None = None,
          init_model: ModelDocument | None = None, previous: ModelDocument | None = None) -> ModelDocument:
    """Train on the campaign's dataset — as ``task`` beside the imported tasks of ``sources`` when there are any,
    else single-domain — fine-tuning ``init_model`` when given (``previous``: the model a retraining replaces, for
    the lineage); held-out errors on the imported test sets.  Cached by the content of everything that determines
    the model."""
    others = training_tasks(sources)
    task = task if others else None
    settings = dict(training, **({"init_model": init_model.model_path} if init_model else {}))
    key = content_key(dataset.dataset_hash, training_settings(training), sources.dataset_hash if sources else None,
                      task, init_model.model_hash if init_model else None,
                      *([previous.model_hash] if previous else []))  # a first training keeps its key
    hit = ws.cache.get("model", key)
    if hit is not None and Path(hit["model_path"]).exists():
        return ModelDocument.model_validate(hit)
    info = train_model([atoms_from_dict(d) for d in dataset.structures], settings, ws.model_dir(key), task=task,
                       other_tasks=others)
    held_out = [t for t in (sources.tasks if sources else []) if t.test_structures]
    trained = load_model(info["model_path"]) if held_out else None
    tests = {t.task: held_out_errors(trained, [atoms_from_dict(d) for d in t.test_structures], t.task)
             for t in held_out}
    inputs = {"dataset_hash": dataset.dataset_hash, "source_dataset_hash": sources.dataset_hash if sources else None,
              "init_model_hash": init_model.model_hash if init_model else None,
              "previous_model_hash": previous.model_hash if previous else None}
    document = ModelDocument(**info, **inputs, task=task, test_metrics=tests, provenance=Provenance(inputs=inputs))
    ws.cache.put("model", key, document.model_dump(mode="json"))
    return document


def fine_tune(dataset: DatasetDocument, model: ModelDocument, training: dict[str, Any], ws: Workspace,
              sources: CuratedDatasetDocument | None = None) -> ModelDocument:
    """The active-learning retraining policy.  A single-domain model is retrained on the grown dataset from the
    closed-form starting point: in a Quantum ESPRESSO Cu(111)+O campaign, a warm start from the previous model ended
    at a force MAE of 0.68 eV/Å on its 19 training structures where retraining reached 0.14, and its relaxations drove
    O into the slab.  A multi-task model (θ_T beside imported tasks, which keep θ_C general) is fine-tuned from the
    current one on its task."""
    if model.task is None:
        return train(dataset, training, ws, sources, previous=model)
    return train(dataset, training, ws, sources, model.task, init_model=model)


def md_starts(images: list[Atoms]) -> list[Atoms]:
    """Where exploration starts: the first seed structures of the dataset (its first structures if none), and the
    first adsorbate placement of every learned surface (``seed:surface:<surface>:1``)."""
    sources = [a.info.get("source", "") for a in images]
    bulk = [a for a, s in zip(images, sources) if s.startswith(SEED_SOURCE) and not s.startswith(SURFACE_SOURCE)]
    surfaces = [a for a, s in zip(images, sources) if s.startswith(SURFACE_SOURCE) and s.endswith(":1")]
    return (bulk[:MD_STARTS] or ([] if surfaces else images[:MD_STARTS])) + surfaces


def relaxation_starts(images: list[Atoms]) -> list[Atoms]:
    """The clean slab and adsorbate placements of every learned surface (``seed:surface:<surface>:<n>``, 0 the clean
    slab): where each iteration also relaxes with the model, as the screen will."""
    return [a for a in images if a.info.get("source", "").startswith(SURFACE_SOURCE)]


def iteration_due(iteration: int, settings: ActiveLearningSpec) -> bool:
    """Whether the loop runs iteration ``iteration`` (counting from 0): the spec's cap."""
    return iteration < settings.iterations


def validation_set(settings: ActiveLearningSpec, labeler: Labeler, ws: Workspace
                   ) -> tuple[list[Atoms], list[dict[str, str]]]:
    """The held-out structures of ``settings.validation`` (generated as seeds are, named ``validation:...``),
    labelled in this process through the campaign's cache, and the labeler's failures on them."""
    structures = [atoms for k, s in enumerate(settings.validation)
                  for atoms in generate_seeds(s.element, s.prototype, s.a, s.supercell, s.strains, s.rattle, s.copies,
                                              seed=VALIDATION_SEED + k, prefix=VALIDATION_SOURCE)]
    labelled, failed = labelled_here(structures, labeler, ws)
    return [a for a in labelled if a is not None], failed


def validation_errors(model: Sus2Potential, structures: list[Atoms], task: str | None) -> dict[str, float] | None:
    """``model``'s errors on the labelled validation ``structures`` (None where there are none)."""
    return held_out_errors(model, structures, task) if structures else None


def explore_and_select(iteration: int, model: ModelDocument, dataset: DatasetDocument, settings: ActiveLearningSpec,
                       labeler: Labeler, ws: Workspace) -> ActiveLearningDocument:
    """One iteration: MD with the current model from :func:`md_starts` (a trajectory stops at the upper trust
    level) and relaxations from :func:`relaxation_starts`, the uncertainty of every frame (extrapolation grade or
    committee), the most informative frames between the trust levels to label and, with ``label_minima``, the
    relaxations' minima no label is near yet (:func:`~..steps.active.new_minima`); the model's errors on the
    validation set.  ``converged`` (nothing to label, or ``accurate_fraction`` of the frames below the lower level
    and no new minimum) ends the loop."""
    key = content_key(iteration, model.model_hash, dataset.dataset_hash, settings.model_dump(mode="json"))
    hit = ws.cache.get("active_learning", key)
    if hit is not None:
        return ActiveLearningDocument.model_validate(hit)
    sus2 = load_model(model.model_path)
    training = [atoms_from_dict(d) for d in dataset.structures]
    measure = uncertainty_measure(sus2, training, settings.uncertainty, settings.committee_size, seed=iteration)
    lower, upper = settings.trust_levels()
    frames = explore(sus2, md_starts(training), settings.md_temperature_k, settings.md_steps, settings.sample_every,
                     seed=iteration, task=model.task, uncertainty=measure if math.isfinite(upper) else None,
                     upper=upper, pressures_gpa=settings.md_pressure_gpa)
    frames += relaxation_frames(sus2, relaxation_starts(training), settings.md_steps, settings.sample_every,
                                task=model.task)
    values = uncertainties(frames, measure)
    selected = select_uncertain(sus2, frames, values, lower, upper, settings.max_new_per_iteration,
                                first_per_trajectory=settings.uncertainty == "grade")
    minima = new_minima(frames, training, settings.max_new_per_iteration) if settings.label_minima else []
    accurate = float(np.mean(values < lower)) if len(values) else 1.0
    converged = not (selected or minima) or (accurate >= settings.accurate_fraction and not minima)
    document = ActiveLearningDocument(
        iteration=iteration, model_hash=model.model_hash, n_explored=len(frames), grades=[float(g) for g in values],
        selected_hashes=[structure_hash(a) for a in selected + minima],
        selected=[atoms_to_dict(a) for a in selected + minima], n_minima=len(minima),
        uncertainty=settings.uncertainty, trust_levels=[lower, upper if math.isfinite(upper) else None],
        accurate_fraction=accurate, validation=validation_errors(sus2, validation_set(settings, labeler, ws)[0],
                                                                 model.task),
        labeler_settings=labeler.settings(), converged=converged,
        provenance=Provenance(inputs={"model_hash": model.model_hash, "dataset_hash": dataset.dataset_hash}))
    ws.cache.put("active_learning", key, document.model_dump(mode="json"))
    return document


def learning_result(model: ModelDocument, dataset: DatasetDocument, iterations: list[ActiveLearningDocument],
                    settings: ActiveLearningSpec, labeler: Labeler, ws: Workspace) -> ActiveLearningResult:
    """Where the loop ended, with every iteration's record (without structures) and the final model's errors on
    the validation set."""
    structures, failed = validation_set(settings, labeler, ws)
    errors = validation_errors(load_model(model.model_path), structures, model.task) if structures else None
    return ActiveLearningResult(model=model, dataset=dataset, iterations=[summary_of(r) for r in iterations],
                                validation=errors, validation_failed=failed)
