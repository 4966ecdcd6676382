"""jobflow Makers in atomate2's style: dataclasses with a ``name`` whose ``make`` returns a Job or Flow."""

from __future__ import annotations

from dataclasses import dataclass, field

from jobflow import Flow, Job, Maker

from ..documents import atoms_to_dict
from ..spec import CampaignSpec
from ..steps.curate import generate_seeds
from .jobs import active_learning, label, screen_eos_job, train_sus2


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
class LabelMaker(_CampaignStepMaker):
    """Label structures with the campaign's reference method."""

    name: str = "sus2 label"
    labeler: dict = field(default_factory=dict)

    def make(self, structures: list[dict], previous: dict | None = None) -> Job:
        return _named(label(structures, self.labeler, self.folder, self.store_uri, previous), self.name)


@dataclass
class TrainSus2Maker(_CampaignStepMaker):
    """Train a SUS2 model on a labelled dataset document."""

    name: str = "sus2 train"
    training: dict = field(default_factory=dict)

    def make(self, dataset: dict) -> Job:
        return _named(train_sus2(dataset, self.training, self.folder, self.store_uri), self.name)


@dataclass
class ActiveLearningMaker(_CampaignStepMaker):
    """Active learning until converged or ``spec['active_learning']['iterations']`` (a self-extending job)."""

    name: str = "sus2 active learning"
    spec: dict = field(default_factory=dict)

    def make(self, model: dict, dataset: dict) -> Job:
        return _named(active_learning(0, model, dataset, self.spec, self.folder, self.store_uri), self.name)


@dataclass
class EosScreeningMaker(_CampaignStepMaker):
    """Equations of state of target structures with the final model."""

    name: str = "sus2 eos"
    targets: list = field(default_factory=list)

    def make(self, result: dict) -> Job:
        return _named(screen_eos_job(result, self.targets, self.folder, self.store_uri), self.name)


@dataclass
class Sus2CampaignMaker(_CampaignStepMaker):
    """The whole chain: seeds -> labels -> training -> active learning -> EOS screening."""

    name: str = "sus2 campaign"

    def make(self, spec: CampaignSpec) -> Flow:
        seeds = []
        for k, s in enumerate(spec.seeds):
            seeds += generate_seeds(s.element, s.prototype, s.a, s.supercell, s.strains, s.rattle, s.copies, seed=k)
        common = {"folder": self.folder, "store_uri": self.store_uri}
        labelled = LabelMaker(labeler=spec.labeler.model_dump(), **common).make([atoms_to_dict(a) for a in seeds])
        model = TrainSus2Maker(training=spec.training, **common).make(labelled.output)
        learned = ActiveLearningMaker(spec=spec.model_dump(mode="json"), **common).make(model.output, labelled.output)
        screened = EosScreeningMaker(targets=[t.model_dump() for t in spec.screening.eos], **common).make(learned.output)
        return Flow([labelled, model, learned, screened], output=screened.output, name=f"{self.name}: {spec.name}")
