"""Campaign stage for reference labels: which structures still need a calculation (each label is cached by structure
and labeler settings), computing them in process or collecting the engine's job outputs, and merging the new labels
into the campaign's dataset under the spec's curation caps.  A failed calculation is recorded against its structure
(and retried on the next run); the other labels go on.  Labels move between campaigns (another cluster, another
store) as an export file that the receiving campaign checks against its own labeler's settings."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

from ase import Atoms

from sus2_model.errors import StructureError
from sus2_model.train.data import check_labels, dataset_hash, structure_hash

from ..documents import DatasetDocument, DbsDocument, Provenance, atoms_from_dict, atoms_to_dict, summary_of
from ..errors import LabelingError
from ..hashing import content_key
from ..spec import CurationSpec
from ..steps.curate import deduplicate, drop_outliers
from ..steps.label import ExternalLabeler, Labeler, label_structures
from .cache import Workspace

LABELS_FORMAT = "sus2-labels/1"  # the format of :func:`export_labels`' files
SETTINGS_KEY = "labeler_settings_key"  # a cached label's record of the labeler settings it was computed with


@dataclass
class LabelPlan:
    """Every structure's label key in input order, the labels found in the cache, the calculations still to run."""

    keys: list[str] = field(default_factory=list)
    cached: dict[str, Atoms] = field(default_factory=dict)
    todo_keys: list[str] = field(default_factory=list)
    todo: list[Atoms] = field(default_factory=list)


@dataclass
class LabelOutcome:
    """Labels computed for a plan's ``todo`` (by key) and the calculations that failed (source, error)."""

    labelled: dict[str, Atoms] = field(default_factory=dict)
    failed: list[dict[str, str]] = field(default_factory=list)


def label_key(atoms: Atoms, labeler: Labeler) -> str:
    """Cache key of one structure's labels: its content hash and everything that determines the labels."""
    return content_key(structure_hash(atoms), content_key(labeler.settings()))


def plan_labels(structures: Sequence[Atoms], labeler: Labeler, ws: Workspace,
                bridging: DbsDocument | None = None) -> LabelPlan:
    """Split ``structures`` (and the domain-bridging set's) into cached labels and the calculations still to run."""
    plan = LabelPlan()
    for atoms in list(structures) + [atoms_from_dict(d) for d in (bridging.structures if bridging else [])]:
        key = label_key(atoms, labeler)
        plan.keys.append(key)
        hit = ws.cache.get("label", key)
        if hit is None:
            plan.todo_keys.append(key)
            plan.todo.append(atoms)
        else:
            plan.cached[key] = atoms_from_dict(hit)
    return plan


def _store_label(key: str, document: dict[str, Any], settings_key: str, ws: Workspace) -> None:
    """Cache one structure's labels (``document``: :func:`atoms_to_dict`'s) with the key of the labeler settings
    they were computed with; an earlier failed attempt at it is no longer a failure."""
    ws.cache.put("label", key, {**document, SETTINGS_KEY: settings_key})
    ws.cache.delete("label_failed", key)


def store_label(key: str, document: dict[str, Any], labeler: Labeler, ws: Workspace) -> None:
    """Put one structure's labels (``document``: :func:`atoms_to_dict`'s, computed with ``labeler``) in the cache
    under ``key`` where it lacks them: an engine that reused a calculation (AiiDA's caching) brings its labels back."""
    if ws.cache.get("label", key) is None:
        _store_label(key, document, content_key(labeler.settings()), ws)


def record_failure(key: str, failure: dict[str, str], ws: Workspace) -> None:
    """Record that the calculation of ``key``'s labels failed (``failure``: its source and error): the campaign's
    dataset lists it, and the next run tries again."""
    ws.cache.put("label_failed", key, failure)


def _record(outcome: LabelOutcome, key: str, labelled: Atoms | None, failure: dict[str, str] | None,
            settings_key: str, ws: Workspace) -> None:
    """Cache one calculation's result the moment it exists (a killed run loses no finished label)."""
    if labelled is None:
        outcome.failed.append(failure)
        record_failure(key, failure, ws)
    else:
        outcome.labelled[key] = labelled
        _store_label(key, atoms_to_dict(labelled), settings_key, ws)


def compute_labels(plan: LabelPlan, labeler: Labeler, ws: Workspace) -> LabelOutcome:
    """Run the plan's calculations here, one folder each under the workspace's ``dft/``."""
    if plan.todo and not labeler.in_process:
        raise LabelingError(f"labeler {labeler.name!r} runs as workflow-engine jobs: use --engine local, fireworks "
                            "or jobflow-remote")
    outcome = LabelOutcome()
    for key, atoms in zip(plan.todo_keys, plan.todo):
        result = label_structures([atoms], labeler, ws.dft_dir(key))
        _record(outcome, key, result.labelled[0] if result.labelled else None,
                result.failed[0] if result.failed else None, content_key(labeler.settings()), ws)
    return outcome


def record_output(key: str, source: str, output: Any, labeler: ExternalLabeler, ws: Workspace) -> dict[str, Any]:
    """Cache the labels in one engine job's output (None: the job failed) the moment it exists; returns what was
    recorded: ``{"key": key, "failure": None or {source, error}}``."""
    try:
        _store_label(key, atoms_to_dict(labeler.labels_from_output(output, source)), content_key(labeler.settings()),
                     ws)
        return {"key": key, "failure": None}
    except LabelingError as exc:
        failure = {"source": source, "error": str(exc)}
        record_failure(key, failure, ws)
        return {"key": key, "failure": failure}


def recorded_outcome(plan: LabelPlan, recorded: Sequence[dict[str, Any] | None]) -> LabelOutcome:
    """The outcome of the engine's labelling jobs, from what :func:`record_output` returned for each (``plan`` made
    after they ran, so their labels are among its cached ones)."""
    outcome = LabelOutcome()
    for entry in filter(None, recorded):
        if entry["failure"] is not None:
            outcome.failed.append(entry["failure"])
        elif entry["key"] in plan.cached:
            outcome.labelled[entry["key"]] = plan.cached[entry["key"]]
    return outcome


def merge_labels(plan: LabelPlan, outcome: LabelOutcome, labeler: Labeler, curation: CurationSpec, ws: Workspace,
                 previous: DatasetDocument | None = None, bridging: DbsDocument | None = None) -> DatasetDocument:
    """The campaign's dataset: ``previous`` plus the plan's labels in input order (cached or new alike, so a resumed
    run gives the same dataset as an uninterrupted one), deduplicated, with labels beyond the spec's curation caps
    dropped (failed or unconverged DFT)."""
    labels = {**plan.cached, **outcome.labelled}
    merged = [atoms_from_dict(d) for d in (previous.structures if previous else [])]
    merged += [labels[k] for k in plan.keys if k in labels]
    unique = deduplicate(merged)
    kept = drop_outliers(unique, curation)
    document = DatasetDocument(
        dataset_hash=dataset_hash(kept), n_structures=len(kept), n_atoms=sum(len(a) for a in kept),
        labeler=labeler.name, labeler_settings=labeler.settings(), failed=outcome.failed,
        n_computed=len(outcome.labelled), n_dropped=len(unique) - len(kept),
        structures=[atoms_to_dict(a) for a in kept],
        provenance=Provenance(inputs={"previous_dataset": previous.dataset_hash if previous else None,
                                      "dbs_hash": bridging.dbs_hash if bridging else None}))
    ws.cache.put("dataset", document.dataset_hash, summary_of(document))
    return document


def label(structures: Sequence[Atoms], labeler: Labeler, curation: CurationSpec, ws: Workspace,
          previous: DatasetDocument | None = None, bridging: DbsDocument | None = None) -> DatasetDocument:
    """The whole label stage in one process: plan, compute, merge."""
    plan = plan_labels(structures, labeler, ws, bridging)
    return merge_labels(plan, compute_labels(plan, labeler, ws), labeler, curation, ws, previous, bridging)


def labelled_here(structures: Sequence[Atoms], labeler: Labeler, ws: Workspace
                  ) -> tuple[list[Atoms | None], list[dict[str, str]]]:
    """Each structure with its labels (None where the calculation failed), computed in this process through the
    campaign's label cache (a label computed once is never computed again), and the failures."""
    plan = plan_labels(structures, labeler, ws)
    outcome = compute_labels(plan, labeler, ws)
    labels = {**plan.cached, **outcome.labelled}
    return [labels.get(k) for k in plan.keys], outcome.failed


def labeler_energies(structures: Sequence[Atoms], labeler: Labeler, ws: Workspace
                     ) -> tuple[list[float | None], list[dict[str, str]]]:
    """The labeler's energy of each structure (None where the calculation failed), through the campaign's label
    cache."""
    labelled, failed = labelled_here(structures, labeler, ws)
    return [a.get_potential_energy() if a is not None else None for a in labelled], failed


def _label_error(atoms: Atoms) -> str:
    """Why training would refuse the label ``atoms`` carries (:func:`check_labels`), or ``""``."""
    try:
        check_labels([atoms])
    except StructureError as exc:
        return str(exc)
    return ""


def _labels_of(key: str, document: dict[str, Any], labeler: Labeler, settings_key: str) -> bool:
    """Whether the cached label ``document`` under ``key`` was computed with ``labeler``'s settings: as recorded with
    it, or (labels cached before the record existed) as its key says of the structure it holds."""
    if SETTINGS_KEY in document:
        return document[SETTINGS_KEY] == settings_key
    atoms = atoms_from_dict(document)
    atoms.calc = None
    return label_key(atoms, labeler) == key


def export_labels(labeler: Labeler, ws: Workspace) -> dict[str, Any]:
    """Every label the campaign's cache holds for ``labeler`` (other settings' labels are left out, and so are
    labels that training would refuse (no finite energy and forces, see :func:`check_labels`), under their cache keys,
    with the settings they were computed with and how many were left out (``n_other_settings``, ``n_invalid``): what
    :func:`import_labels` loads into another campaign's cache, e.g. on another cluster or store."""
    settings_key = content_key(labeler.settings())
    labels, other, invalid = [], 0, 0
    for key, document in sorted(ws.cache.items("label"), key=lambda item: item[0]):
        if not _labels_of(key, document, labeler, settings_key):
            other += 1
        elif _label_error(atoms_from_dict(document)):
            invalid += 1
        else:
            labels.append({"key": key, "label": {k: v for k, v in document.items() if k != SETTINGS_KEY}})
    return {"format": LABELS_FORMAT, "labeler": labeler.name, "labeler_settings": labeler.settings(),
            "n_other_settings": other, "n_invalid": invalid, "labels": labels}


def import_labels(exported: dict[str, Any], labeler: Labeler, ws: Workspace, where: str = "labels") -> int:
    """Load :func:`export_labels`' output into the cache under its keys (an earlier failure of the same calculation
    is then no longer one), so the campaign computes none of these labels again; returns how many were new.
    :class:`LabelingError` naming ``where`` (and the label) if the file is not such an export, was computed with
    other settings than ``labeler``'s, or holds a malformed label or one that training would refuse; nothing
    is loaded then."""
    if not isinstance(exported, dict) or exported.get("format") != LABELS_FORMAT:
        raise LabelingError(f"{where}: not a label export (format {LABELS_FORMAT!r}; `sus2 campaign export-labels`)")
    settings = labeler.settings()
    settings_key = content_key(settings)
    theirs = exported.get("labeler_settings")
    if not isinstance(theirs, dict) or content_key(theirs) != settings_key:
        theirs = theirs if isinstance(theirs, dict) else {}
        differ = sorted(k for k in set(theirs) | set(settings)
                        if content_key(theirs.get(k)) != content_key(settings.get(k)))
        raise LabelingError(f"{where}: labels of other labeler settings than this campaign's (differing: "
                            f"{', '.join(differ)}); they would never be used")
    checked = []
    for k, entry in enumerate(exported.get("labels", [])):
        try:
            key, document = entry["key"], entry["label"]
            atoms = atoms_from_dict(document)
        except (KeyError, TypeError, ValueError) as exc:
            raise LabelingError(f"{where}: label {k} is malformed ({type(exc).__name__}: {exc})") from None
        error = _label_error(atoms)
        if error:
            raise LabelingError(f"{where}: label {k}: {error}")
        checked.append((str(key), document))
    new = [(key, document) for key, document in checked if ws.cache.get("label", key) is None]
    for key, document in new:
        _store_label(key, document, settings_key, ws)
    return len(new)
