"""jobflow Makers in jobflow's own idiom: dataclasses whose ``make`` is the job (``@job``), each calling one stage of
the engine-neutral :mod:`sus2_workflows.campaign` layer.  Structures travel in jobflow's ``data`` store.

Settings live in the makers (defaults: the spec models'); :meth:`Sus2CampaignMaker.from_spec` fills them from a
campaign spec, and ``make`` then uses the makers as they are, so a customised sub-maker is never overwritten."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from jobflow import Flow, Maker, OnMissing, Response, job

from ... import campaign
from ...cache import store_workspace
from ...documents import STRUCTURE_FIELDS, ActiveLearningDocument, ActiveLearningResult, \
    AdsorptionScreeningDocument, CampaignResultDocument, CuratedDatasetDocument, DatasetDocument, DbsDocument, \
    EosScreeningDocument, ModelDocument, MofScreeningDocument, atoms_from_dict, atoms_to_dict
from ...labelers import make_labeler
from ...spec import ActiveLearningSpec, AdsorptionTarget, CampaignSpec, CurationSpec, DbsSpec, EosTarget, ImportSpec, \
    LabelerSpec, MofTarget, ScreeningModelSpec


@dataclass
class _StageMaker(Maker):
    """Fields every stage shares: the campaign folder and the store holding its cache."""

    name: str = "sus2 stage"
    folder: str = "."
    store_uri: str | None = None

    def workspace(self) -> campaign.Workspace:
        """The stage's workspace: the folder and the cache in the campaign's store."""
        return store_workspace(self.folder, self.store_uri)


@dataclass
class CurateDatasetMaker(_StageMaker):
    """Import existing labelled datasets (one task each): check, deduplicate, drop outliers, references, split."""

    name: str = "sus2 curate"
    curation: CurationSpec = field(default_factory=CurationSpec)

    @job(data=STRUCTURE_FIELDS)
    def make(self, datasets: list[ImportSpec]) -> CuratedDatasetDocument:
        """The curated datasets (:func:`campaign.curate`)."""
        return campaign.curate(datasets, self.curation, self.workspace())


@dataclass
class DBSSelectionMaker(_StageMaker):
    """Choose the domain-bridging set from curated datasets, for relabelling by the campaign's labeler."""

    name: str = "sus2 dbs"
    dbs: DbsSpec = field(default_factory=DbsSpec)

    @job(data=STRUCTURE_FIELDS)
    def make(self, curated: CuratedDatasetDocument) -> DbsDocument:
        """The domain-bridging set (:func:`campaign.choose_dbs`)."""
        return campaign.choose_dbs(curated, self.dbs, self.workspace())


@dataclass
class LabelMaker(_StageMaker):
    """Label structures (and a domain-bridging set) with the campaign's labeler and merge them into a dataset.
    An in-process labeler runs inside this job; an engine-run one (VASP) adds its own jobs to the flow."""

    name: str = "sus2 label"
    labeler: LabelerSpec | None = None
    curation: CurationSpec = field(default_factory=CurationSpec)

    @job(data=STRUCTURE_FIELDS)
    def make(self, structures: list[dict[str, Any]], previous: DatasetDocument | None = None,
             bridging: DbsDocument | None = None) -> DatasetDocument | Response:
        """The merged dataset (:func:`campaign.label`), or the labeler's jobs followed by :meth:`collect`."""
        labeler, ws = make_labeler(self.labeler), self.workspace()
        plan = campaign.plan_labels([atoms_from_dict(d) for d in structures], labeler, ws, bridging)
        if labeler.in_process or not plan.todo:
            outcome = campaign.compute_labels(plan, labeler, ws)
            return campaign.merge_labels(plan, outcome, labeler, self.curation, ws, previous, bridging)
        jobs, recorded = [], []
        for key, atoms in zip(plan.todo_keys, plan.todo):
            calculation = labeler.job(atoms)
            record = self.record(key, atoms.info.get("source", ""), calculation.output)
            record.config.on_missing_references = OnMissing.NONE  # a failed calculation is recorded, not fatal
            jobs += [calculation, record]
            recorded.append(record.output)
        collect = self.collect(structures, recorded, previous, bridging)
        return Response(replace=Flow([*jobs, collect], output=collect.output))

    @job
    def record(self, key: str, source: str, output: Any) -> dict[str, Any]:
        """Cache one engine job's labels as soon as it ends (:func:`campaign.record_output`)."""
        return campaign.record_output(key, source, output, make_labeler(self.labeler), self.workspace())

    @job(data=STRUCTURE_FIELDS)
    def collect(self, structures: list[dict[str, Any]], recorded: list[dict[str, Any]],
                previous: DatasetDocument | None = None, bridging: DbsDocument | None = None) -> DatasetDocument:
        """The merged dataset once every engine job is recorded (:func:`campaign.recorded_outcome`)."""
        labeler, ws = make_labeler(self.labeler), self.workspace()
        plan = campaign.plan_labels([atoms_from_dict(d) for d in structures], labeler, ws, bridging)
        outcome = campaign.recorded_outcome(plan, recorded)
        return campaign.merge_labels(plan, outcome, labeler, self.curation, ws, previous, bridging)


@dataclass
class TrainSus2Maker(_StageMaker):
    """Train a SUS2 model on a labelled dataset (beside the curated imported tasks, when given)."""

    name: str = "sus2 train"
    training: dict[str, Any] = field(default_factory=dict)
    task: str | None = None

    @job
    def make(self, dataset: DatasetDocument, sources: CuratedDatasetDocument | None = None) -> ModelDocument:
        """The trained model (:func:`campaign.train`)."""
        return campaign.train(dataset, self.training, self.workspace(), sources, self.task)

    @job
    def fine_tune(self, dataset: DatasetDocument, model: ModelDocument,
                  sources: CuratedDatasetDocument | None = None) -> ModelDocument:
        """``model`` fine-tuned on the grown dataset (:func:`campaign.fine_tune`)."""
        return campaign.fine_tune(dataset, model, self.training, self.workspace(), sources)


@dataclass
class ActiveLearningMaker(_StageMaker):
    """Active learning until nothing is uncertain or the iteration cap: a job that explores and selects, then
    replaces itself by its ``label_maker`` and ``train_maker`` jobs and the next iteration (``Response``)."""

    name: str = "sus2 active learning"
    settings: ActiveLearningSpec = field(default_factory=ActiveLearningSpec)
    label_maker: LabelMaker = field(default_factory=LabelMaker)
    train_maker: TrainSus2Maker = field(default_factory=TrainSus2Maker)

    @job(data=STRUCTURE_FIELDS)
    def make(self, model: ModelDocument, dataset: DatasetDocument, sources: CuratedDatasetDocument | None = None,
             iteration: int = 0, history: list[ActiveLearningDocument] | None = None) -> Response:
        """One iteration (:func:`campaign.explore_and_select`) and the next, or the final result."""
        history = list(history or [])
        if campaign.iteration_due(iteration, self.settings):
            step = campaign.explore_and_select(iteration, model, dataset, self.settings,
                                               make_labeler(self.label_maker.labeler), self.workspace())
            history.append(step)
            if not step.converged:
                labelled = self.label_maker.make(step.selected, previous=dataset)
                trained = self.train_maker.fine_tune(labelled.output, model, sources)
                following = self.make(trained.output, labelled.output, sources, iteration + 1, history)
                return Response(replace=Flow([labelled, trained, following], output=following.output))
        return Response(output=campaign.learning_result(model, dataset, history, self.settings,
                                                        make_labeler(self.label_maker.labeler), self.workspace()))


@dataclass
class ScreeningModelMaker(_StageMaker):
    """The model that screens: the campaign's final one, or the one the spec names."""

    name: str = "sus2 screening model"
    named: ScreeningModelSpec | None = None

    @job
    def make(self, learned: ActiveLearningResult) -> ModelDocument:
        """:func:`campaign.screening_model`."""
        return campaign.screening_model(learned.model, self.named)


@dataclass
class EosScreeningMaker(_StageMaker):
    """Equations of state of target structures with the screening model, checked against the labeler if asked."""

    name: str = "sus2 eos"
    targets: list[EosTarget] = field(default_factory=list)
    reference: LabelerSpec | None = None

    @job(data=STRUCTURE_FIELDS)
    def make(self, model: ModelDocument) -> EosScreeningDocument:
        """The screening results (:func:`campaign.screen`)."""
        reference = make_labeler(self.reference) if self.reference is not None else None
        return campaign.screen(model, self.targets, self.workspace(), reference)


@dataclass
class AdsorptionScreeningMaker(_StageMaker):
    """Adsorption screens of surfaces with the screening model, and the labeler's checks of the best minima."""

    name: str = "sus2 adsorption"
    targets: list[AdsorptionTarget] = field(default_factory=list)
    labeler: LabelerSpec | None = None

    @job(data=STRUCTURE_FIELDS)
    def make(self, model: ModelDocument) -> AdsorptionScreeningDocument:
        """The screening results (:func:`campaign.screen_adsorption`)."""
        labeler = make_labeler(self.labeler) if self.labeler is not None else None
        return campaign.screen_adsorption(model, self.targets, labeler, self.workspace())


@dataclass
class MofScreeningMaker(_StageMaker):
    """Gas adsorption in frameworks with the screening model: Widom insertions and binding sites."""

    name: str = "sus2 mof"
    targets: list[MofTarget] = field(default_factory=list)

    @job(data=STRUCTURE_FIELDS)
    def make(self, model: ModelDocument) -> MofScreeningDocument:
        """The screening results (:func:`campaign.screen_mof`)."""
        return campaign.screen_mof(model, self.targets, self.workspace())


@dataclass
class CampaignResultMaker(_StageMaker):
    """The campaign's result document (content hashes of its dataset, model and screening results)."""

    name: str = "sus2 result"

    @job(data=STRUCTURE_FIELDS)
    def make(self, spec: CampaignSpec, learned: ActiveLearningResult, screening: EosScreeningDocument,
             adsorption: AdsorptionScreeningDocument | None = None, screened_by: ModelDocument | None = None,
             mof: MofScreeningDocument | None = None) -> CampaignResultDocument:
        """:func:`campaign.campaign_result`."""
        return campaign.campaign_result(spec, learned, screening, adsorption, self.workspace(), screened_by, mof)


@dataclass
class Sus2CampaignMaker(Maker):
    """The whole chain: [curate imported data -> DBS] -> label seeds (+ DBS) -> train -> active learning -> EOS,
    adsorption and MOF screens.

    The sub-makers are fields (atomate2's habit); :meth:`from_spec` configures them all from a campaign spec.  The
    first labels and model come from ``active_learning_maker.label_maker`` / ``.train_maker``, the makers every
    iteration uses, so one customised maker changes them all."""

    name: str = "sus2 campaign"
    curate_maker: CurateDatasetMaker = field(default_factory=CurateDatasetMaker)
    dbs_maker: DBSSelectionMaker = field(default_factory=DBSSelectionMaker)
    active_learning_maker: ActiveLearningMaker = field(default_factory=ActiveLearningMaker)
    screening_model_maker: ScreeningModelMaker = field(default_factory=ScreeningModelMaker)
    eos_maker: EosScreeningMaker = field(default_factory=EosScreeningMaker)
    adsorption_maker: AdsorptionScreeningMaker = field(default_factory=AdsorptionScreeningMaker)
    mof_maker: MofScreeningMaker = field(default_factory=MofScreeningMaker)
    result_maker: CampaignResultMaker = field(default_factory=CampaignResultMaker)

    @classmethod
    def from_spec(cls, spec: CampaignSpec, folder: str = ".", store_uri: str | None = None) -> Sus2CampaignMaker:
        """Makers configured by ``spec``'s settings, all working in ``folder`` with their cache in ``store_uri``."""
        where = {"folder": str(folder), "store_uri": store_uri}
        label_maker = LabelMaker(labeler=spec.labeler, curation=spec.curation, **where)
        train_maker = TrainSus2Maker(training=dict(spec.training), task=spec.target_task, **where)
        reference = spec.labeler if spec.screening.eos_reference == "labeler" else None
        return cls(curate_maker=CurateDatasetMaker(curation=spec.curation, **where),
                   dbs_maker=DBSSelectionMaker(dbs=spec.dbs or DbsSpec(), **where),
                   active_learning_maker=ActiveLearningMaker(settings=spec.active_learning, label_maker=label_maker,
                                                             train_maker=train_maker, **where),
                   screening_model_maker=ScreeningModelMaker(named=spec.screening.model, **where),
                   eos_maker=EosScreeningMaker(targets=list(spec.screening.eos), reference=reference, **where),
                   adsorption_maker=AdsorptionScreeningMaker(targets=list(spec.screening.adsorption),
                                                             labeler=spec.labeler, **where),
                   mof_maker=MofScreeningMaker(targets=list(spec.screening.mof), **where),
                   result_maker=CampaignResultMaker(**where))

    def make(self, spec: CampaignSpec) -> Flow:
        """The campaign's flow for ``spec``'s seeds, imported datasets and targets."""
        jobs: list = []
        sources = bridging = None
        if spec.datasets:
            curated = self.curate_maker.make(list(spec.datasets))
            sources, jobs = curated.output, [curated]
            if spec.dbs is not None:
                chosen = self.dbs_maker.make(curated.output)
                bridging, jobs = chosen.output, jobs + [chosen]
        seeds = [atoms_to_dict(a) for a in campaign.seed_structures(spec)]
        learner = self.active_learning_maker
        labelled = learner.label_maker.make(seeds, bridging=bridging)
        model = learner.train_maker.make(labelled.output, sources)
        learned = learner.make(model.output, labelled.output, sources)
        screener = self.screening_model_maker.make(learned.output)
        screened = self.eos_maker.make(screener.output)
        adsorbed = self.adsorption_maker.make(screener.output)
        in_frameworks = self.mof_maker.make(screener.output)
        result = self.result_maker.make(spec, learned.output, screened.output, adsorbed.output, screener.output,
                                        in_frameworks.output)
        jobs += [labelled, model, learned, screener, screened, adsorbed, in_frameworks, result]
        return Flow(jobs, output=result.output, name=f"{self.name}: {spec.name}")
