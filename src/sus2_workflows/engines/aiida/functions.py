"""calcfunctions around the engine-neutral campaign stages: each one decodes its input nodes, calls exactly one
:mod:`sus2_workflows.campaign` function in the campaign's workspace (``folder`` and the cache in ``store_uri``, the
same cache the inline and jobflow engines use), and returns new nodes, so AiiDA's graph holds every data dependency
and the documents equal the other engines' to the bit.  Settings travel as ``Dict``/``List`` nodes (the spec's own
values), documents as :class:`DocumentData`.  A stage that fails on bad input or a failed calculation returns a
named exit code (:data:`EXIT_CODES`) instead of raising."""

from __future__ import annotations

import functools
from typing import Any, Callable

from aiida import orm
from aiida.engine import ExitCode, Process, calcfunction

from sus2_model.errors import Sus2ModelError

from ... import campaign
from ...campaign.labels import label_key
from ...cache import store_workspace
from ...documents import ActiveLearningDocument, DbsDocument, atoms_from_dict, atoms_to_dict
from ...errors import LabelingError, ScreeningError, SpecError, Sus2WorkflowError
from ...labelers import make_labeler
from ...spec import ActiveLearningSpec, AdsorptionTarget, CampaignSpec, CurationSpec, DbsSpec, EosTarget, ImportSpec, \
    MofTarget, ScreeningModelSpec
from .data import DatasetData, DocumentData, ModelData

# name: (exit status, message); the work chains declare them, the calcfunctions return them
EXIT_CODES: dict[str, tuple[int, str]] = {
    "ERROR_BAD_INPUT": (300, "bad input: {message}"),
    "ERROR_LABEL_FAILED": (310, "the labeler failed: {message}"),
    "ERROR_SCF_NOT_CONVERGED": (311, "the SCF did not converge, restarts with safer settings included: {message}"),
    "ERROR_SCREEN_FAILED": (320, "the screen failed: {message}"),
    "ERROR_STAGE_FAILED": (330, "the stage failed: {message}"),
    "ERROR_SUB_PROCESS_FAILED": (400, "{process} failed: {message}"),
}


def exit_code(name: str, **message: Any) -> ExitCode:
    """The exit code ``name`` of :data:`EXIT_CODES` with its message filled in."""
    status, text = EXIT_CODES[name]
    return ExitCode(status, text.format(**message))


def never_a_cache_source() -> None:
    """Mark the running process as no source for AiiDA's caching: a failure is retried on the next run (the input may
    be mended, a calculation may converge), and some stages read more than their input nodes (the campaign's store,
    files by path), so the same inputs need not give the same result."""
    Process.current().node.base.caching.is_valid_cache = False


def _exit_code_of(error: Exception) -> ExitCode:
    """The named exit code of a campaign error: bad input, a failed calculation, a failed screen, the rest."""
    if isinstance(error, (SpecError, Sus2ModelError)):
        return exit_code("ERROR_BAD_INPUT", message=error)
    if isinstance(error, LabelingError):
        return exit_code("ERROR_LABEL_FAILED", message=error)
    if isinstance(error, ScreeningError):
        return exit_code("ERROR_SCREEN_FAILED", message=error)
    return exit_code("ERROR_STAGE_FAILED", message=error)


def _named_failures(stage: Callable) -> Callable:
    """``stage`` returning its named exit code where the campaign layer raises one of its own errors (anything else
    is a bug and excepts the process, with its traceback); a failed stage is never a cache source."""

    @functools.wraps(stage)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        try:
            result = stage(*args, **kwargs)
        except (Sus2WorkflowError, Sus2ModelError) as exc:
            result = _exit_code_of(exc)
        if isinstance(result, ExitCode):
            never_a_cache_source()
        return result

    return wrapped


def workspace(folder: orm.Str, store_uri: orm.Str | None) -> campaign.Workspace:
    """The campaign's workspace: its folder and the cache in its store (the embedded one where ``store_uri`` is
    None)."""
    return store_workspace(folder.value, store_uri.value if store_uri is not None else None)


def source_of(atoms: Any, index: int) -> str:
    """How failures and labels name structure ``index``: its ``source``, else its position."""
    return str(atoms.info.get("source", f"structure {index}"))


def structures_of(value: Any) -> list:
    """The structures a node holds: a list of structure dicts, an active-learning step's selection, or a
    domain-bridging set."""
    if isinstance(value, ActiveLearningDocument):
        value = value.selected
    elif isinstance(value, DbsDocument):
        value = value.structures
    return [atoms_from_dict(d) for d in value]


@calcfunction
@_named_failures
def seed_structures(spec: orm.Dict) -> DocumentData:
    """The structures the campaign labels first (:func:`campaign.seed_structures`)."""
    seeds = campaign.seed_structures(CampaignSpec.model_validate(spec.get_dict()))
    return DocumentData([atoms_to_dict(a) for a in seeds])


@calcfunction
@_named_failures
def curate_datasets(datasets: orm.List, curation: orm.Dict, folder: orm.Str,
                    store_uri: orm.Str | None = None) -> DocumentData:
    """Imported datasets checked, deduplicated and split (:func:`campaign.curate`); they are read by path, so this is
    never a cache source."""
    never_a_cache_source()
    imports = [ImportSpec.model_validate(d) for d in datasets.get_list()]
    return DocumentData(campaign.curate(imports, CurationSpec.model_validate(curation.get_dict()),
                                        workspace(folder, store_uri)))


@calcfunction
@_named_failures
def choose_bridging_set(curated: DocumentData, dbs: orm.Dict, folder: orm.Str,
                        store_uri: orm.Str | None = None) -> DocumentData:
    """The domain-bridging set (:func:`campaign.choose_dbs`)."""
    return DocumentData(campaign.choose_dbs(curated.value, DbsSpec.model_validate(dbs.get_dict()),
                                            workspace(folder, store_uri)))


@calcfunction
@_named_failures
def label_structure(structures: DocumentData, index: orm.Int, labeler: orm.Dict, folder: orm.Str,
                    store_uri: orm.Str | None = None) -> DocumentData:
    """One structure's labels, computed here by the (in-process) labeler and cached by structure and settings;
    ``ERROR_LABEL_FAILED`` (recorded against the structure, retried on the next run) where the calculation fails."""
    ws, chosen = workspace(folder, store_uri), make_labeler(labeler.get_dict())
    plan = campaign.plan_labels([structures_of(structures.value)[index.value]], chosen, ws)
    outcome = campaign.compute_labels(plan, chosen, ws)
    if outcome.failed:
        failure = outcome.failed[0]
        return exit_code("ERROR_LABEL_FAILED", message=f"{failure['source']}: {failure['error']}")
    key = plan.keys[0]
    return DocumentData({"key": key, "label": atoms_to_dict({**plan.cached, **outcome.labelled}[key])})


@calcfunction
@_named_failures
def pw_label(structures: DocumentData, index: orm.Int, labeler: orm.Dict, retrieved: orm.FolderData, folder: orm.Str,
             store_uri: orm.Str | None = None) -> DocumentData:
    """One structure's labels from its finished pw.x calculation (the ``retrieved`` files of aiida-quantumespresso's
    ``PwCalculation``), read as the in-process labeler reads its own run, and stored in the campaign's cache."""
    chosen = make_labeler(labeler.get_dict())
    atoms = structures_of(structures.value)[index.value]
    output = retrieved.creator.get_option("output_filename")
    with retrieved.base.repository.open(output) as handle:
        labelled = chosen.labels_from_output(handle, atoms, source_of(atoms, index.value))
    key, document = label_key(atoms, chosen), atoms_to_dict(labelled)
    campaign.store_label(key, document, chosen, workspace(folder, store_uri))
    return DocumentData({"key": key, "label": document})


@calcfunction
@_named_failures
def merge_labels(structures: DocumentData, labeler: orm.Dict, curation: orm.Dict, folder: orm.Str,
                 store_uri: orm.Str | None = None, previous: DatasetData | None = None,
                 bridging: DocumentData | None = None, **labels: DocumentData) -> DatasetData:
    """The campaign's dataset: ``previous`` plus every structure's labels, those computed by this stage's
    :func:`label_structure` or :func:`pw_label` processes (``labels``; stored in the campaign's cache where it lacks
    them, e.g. when AiiDA
    reused a calculation from another campaign) and those in the cache alike (:func:`campaign.merge_labels`); the
    structures whose calculation failed are listed in it.  It reads the cache, so it is never a cache source."""
    never_a_cache_source()
    ws, chosen = workspace(folder, store_uri), make_labeler(labeler.get_dict())
    for node in labels.values():
        campaign.store_label(node.value["key"], node.value["label"], chosen, ws)
    dbs = bridging.value if bridging is not None else None
    plan = campaign.plan_labels(structures_of(structures.value), chosen, ws, dbs)
    computed = {node.value["key"] for node in labels.values()}
    failed = [{"key": key, "failure": ws.cache.get("label_failed", key)} for key in plan.todo_keys]
    recorded = [{"key": key, "failure": None} for key in sorted(computed)] + [f for f in failed if f["failure"]]
    outcome = campaign.recorded_outcome(plan, recorded)
    return DatasetData(campaign.merge_labels(plan, outcome, chosen, CurationSpec.model_validate(curation.get_dict()),
                                             ws, previous.document if previous is not None else None, dbs))


@calcfunction
@_named_failures
def train_model(dataset: DatasetData, training: orm.Dict, folder: orm.Str, store_uri: orm.Str | None = None,
                sources: DocumentData | None = None, task: orm.Str | None = None) -> ModelData:
    """A model trained on the dataset (:func:`campaign.train`)."""
    return ModelData(campaign.train(dataset.document, training.get_dict(), workspace(folder, store_uri),
                                    sources.value if sources is not None else None,
                                    task.value if task is not None else None))


@calcfunction
@_named_failures
def fine_tune_model(dataset: DatasetData, model: ModelData, training: orm.Dict, folder: orm.Str,
                    store_uri: orm.Str | None = None, sources: DocumentData | None = None) -> ModelData:
    """``model`` retrained or fine-tuned on the grown dataset (:func:`campaign.fine_tune`)."""
    return ModelData(campaign.fine_tune(dataset.document, model.document(), training.get_dict(),
                                        workspace(folder, store_uri), sources.value if sources is not None else None))


@calcfunction
@_named_failures
def explore_and_select(iteration: orm.Int, model: ModelData, dataset: DatasetData, settings: orm.Dict,
                       labeler: orm.Dict, folder: orm.Str, store_uri: orm.Str | None = None) -> DocumentData:
    """One active-learning exploration and the frames it selects (:func:`campaign.explore_and_select`)."""
    return DocumentData(campaign.explore_and_select(
        iteration.value, model.document(), dataset.document, ActiveLearningSpec.model_validate(settings.get_dict()),
        make_labeler(labeler.get_dict()), workspace(folder, store_uri)))


@calcfunction
@_named_failures
def learning_result(model: ModelData, dataset: DatasetData, settings: orm.Dict, labeler: orm.Dict, folder: orm.Str,
                    store_uri: orm.Str | None = None, **iterations: DocumentData) -> DocumentData:
    """The final model and dataset with the iterations' summaries and its validation errors
    (:func:`campaign.learning_result`)."""
    history = [iterations[name].value for name in sorted(iterations, key=lambda n: int(n.rsplit("_", 1)[1]))]
    return DocumentData(campaign.learning_result(
        model.document(), dataset.document, history, ActiveLearningSpec.model_validate(settings.get_dict()),
        make_labeler(labeler.get_dict()), workspace(folder, store_uri)))


@calcfunction
@_named_failures
def named_model(named: orm.Dict) -> ModelData:
    """The model the spec names to screen with (:func:`campaign.named_model`); it is read by path, so this is never a
    cache source."""
    never_a_cache_source()
    return ModelData(campaign.named_model(ScreeningModelSpec.model_validate(named.get_dict())))


@calcfunction
@_named_failures
def screen_eos(model: ModelData, targets: orm.List, folder: orm.Str, store_uri: orm.Str | None = None,
               reference: orm.Dict | None = None) -> DocumentData:
    """Equations of state of the targets, with the reference labeler's where given (:func:`campaign.screen`)."""
    return DocumentData(campaign.screen(model.document(), [EosTarget.model_validate(t) for t in targets.get_list()],
                                        workspace(folder, store_uri),
                                        make_labeler(reference.get_dict()) if reference is not None else None))


@calcfunction
@_named_failures
def screen_adsorption(model: ModelData, targets: orm.List, folder: orm.Str, store_uri: orm.Str | None = None,
                      labeler: orm.Dict | None = None) -> DocumentData:
    """Adsorption screens, checked by the labeler where the targets ask (:func:`campaign.screen_adsorption`)."""
    return DocumentData(campaign.screen_adsorption(
        model.document(), [AdsorptionTarget.model_validate(t) for t in targets.get_list()],
        make_labeler(labeler.get_dict()) if labeler is not None else None, workspace(folder, store_uri)))


@calcfunction
@_named_failures
def screen_mof(model: ModelData, targets: orm.List, folder: orm.Str, store_uri: orm.Str | None = None) -> DocumentData:
    """Gas adsorption in frameworks (:func:`campaign.screen_mof`)."""
    return DocumentData(campaign.screen_mof(model.document(), [MofTarget.model_validate(t) for t in targets.get_list()],
                                            workspace(folder, store_uri)))


@calcfunction
@_named_failures
def campaign_result(spec: orm.Dict, learned: DocumentData, eos: DocumentData, folder: orm.Str,
                    store_uri: orm.Str | None = None, adsorption: DocumentData | None = None,
                    screened_by: ModelData | None = None, mof: DocumentData | None = None) -> DocumentData:
    """The campaign's result by content hash (:func:`campaign.campaign_result`)."""
    return DocumentData(campaign.campaign_result(
        CampaignSpec.model_validate(spec.get_dict()), learned.value, eos.value,
        adsorption.value if adsorption is not None else None, workspace(folder, store_uri),
        screened_by.document() if screened_by is not None else None, mof.value if mof is not None else None))
