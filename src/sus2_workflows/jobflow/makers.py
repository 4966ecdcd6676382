"""jobflow Makers in atomate2's style: dataclasses with a ``name`` whose ``make`` returns a Job or Flow."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from jobflow import Flow, Job, Maker

from ..documents import atoms_to_dict
from ..spec import CampaignSpec
from ..steps.seeds import generate_seeds, isolated_atom
from .jobs import active_learning, curate, label, screen_eos_job, select_dbs, train_sus2


def _named(job: Job, name: str) -> Job:
    job.name = name
    return job


@dataclass
class _CampaignStepMaker(Maker):
    """Fields every campaign step shares: the campaign folder and the store holding its cache."""

    name: str = "sus2 step"
    folder: str = "."
    store_uri: str | None = None


@dataclass
class CurateDatasetMaker(_CampaignStepMaker):
    """Import existing labelled datasets (one task each): check, deduplicate, drop outliers, references, split."""

    name: str = "sus2 curate"
    settings: dict = field(default_factory=lambda: {"max_force": 50.0, "max_energy_per_atom": 1e3,
                                                    "test_fraction": 0.1})

    def make(self, imports: list[dict]) -> Job:
        return _named(curate(imports, self.settings, self.folder, self.store_uri), self.name)


@dataclass
class DBSSelectionMaker(_CampaignStepMaker):
    """Choose the domain-bridging set from curated datasets, for relabelling by the campaign's labeler."""

    name: str = "sus2 dbs"
    settings: dict = field(default_factory=lambda: {"fraction": 0.001, "min_count": 4, "max_atoms": 64})

    def make(self, curated: dict) -> Job:
        return _named(select_dbs(curated, self.settings, self.folder, self.store_uri), self.name)


@dataclass
class LabelMaker(_CampaignStepMaker):
    """Label structures (and a domain-bridging set) with the campaign's reference method."""

    name: str = "sus2 label"
    labeler: dict = field(default_factory=dict)

    def make(self, structures: list[dict], previous: dict | None = None, bridging: dict | None = None) -> Job:
        return _named(label(structures, self.labeler, self.folder, self.store_uri, previous, bridging), self.name)


@dataclass
class TrainSus2Maker(_CampaignStepMaker):
    """Train a SUS2 model on a labelled dataset document (plus curated imported tasks, when given)."""

    name: str = "sus2 train"
    training: dict = field(default_factory=dict)
    task: str | None = None

    def make(self, dataset: dict, sources: dict | None = None) -> Job:
        return _named(train_sus2(dataset, self.training, self.folder, self.store_uri, sources, self.task), self.name)


@dataclass
class ActiveLearningMaker(_CampaignStepMaker):
    """Active learning until converged or ``spec['active_learning']['iterations']`` (a self-extending job)."""

    name: str = "sus2 active learning"
    spec: dict = field(default_factory=dict)

    def make(self, model: dict, dataset: dict, sources: dict | None = None) -> Job:
        job = active_learning(0, model, dataset, self.spec, self.folder, self.store_uri, sources=sources)
        return _named(job, self.name)


@dataclass
class EosScreeningMaker(_CampaignStepMaker):
    """Equations of state of target structures with the final model."""

    name: str = "sus2 eos"
    targets: list = field(default_factory=list)

    def make(self, result: dict) -> Job:
        return _named(screen_eos_job(result, self.targets, self.folder, self.store_uri), self.name)


@dataclass
class Sus2CampaignMaker(_CampaignStepMaker):
    """The whole chain: [curate imported data -> DBS] -> label seeds (+ DBS) -> train -> active learning -> EOS.

    The sub-makers are fields (atomate2's habit): replace one to change its name or defaults; ``make`` fills in
    what the campaign spec and this maker's folder/store decide."""

    name: str = "sus2 campaign"
    curate_maker: CurateDatasetMaker = field(default_factory=CurateDatasetMaker)
    dbs_maker: DBSSelectionMaker = field(default_factory=DBSSelectionMaker)
    label_maker: LabelMaker = field(default_factory=LabelMaker)
    train_maker: TrainSus2Maker = field(default_factory=TrainSus2Maker)
    active_learning_maker: ActiveLearningMaker = field(default_factory=ActiveLearningMaker)
    eos_maker: EosScreeningMaker = field(default_factory=EosScreeningMaker)

    def make(self, spec: CampaignSpec) -> Flow:
        seeds = []
        for k, s in enumerate(spec.seeds):
            seeds += generate_seeds(s.element, s.prototype, s.a, s.supercell, s.strains, s.rattle, s.copies, seed=k)
        if spec.curation.isolated_atoms:
            seeds += [isolated_atom(e) for e in sorted({s.element for s in spec.seeds})]
        where = {"folder": self.folder, "store_uri": self.store_uri}
        jobs: list[Job] = []
        sources = bridging = None
        if spec.datasets:
            settings = spec.curation.model_dump(exclude={"isolated_atoms"})
            curated = replace(self.curate_maker, settings=settings, **where).make([d.model_dump() for d in spec.datasets])
            sources, jobs = curated.output, [curated]
            if spec.dbs is not None:
                chosen = replace(self.dbs_maker, settings=spec.dbs.model_dump(), **where).make(curated.output)
                bridging, jobs = chosen.output, jobs + [chosen]
        labelled = replace(self.label_maker, labeler=spec.labeler.model_dump(), **where).make(
            [atoms_to_dict(a) for a in seeds], bridging=bridging)
        model = replace(self.train_maker, training=spec.training, task=spec.target_task, **where).make(
            labelled.output, sources)
        learned = replace(self.active_learning_maker, spec=spec.model_dump(mode="json"), **where).make(
            model.output, labelled.output, sources)
        screened = replace(self.eos_maker, targets=[t.model_dump() for t in spec.screening.eos], **where).make(
            learned.output)
        jobs += [labelled, model, learned, screened]
        return Flow(jobs, output=screened.output, name=f"{self.name}: {spec.name}")
