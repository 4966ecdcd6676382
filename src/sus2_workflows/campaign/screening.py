"""Campaign stage for screening with the final model (equations of state), and the campaign's result document."""

from __future__ import annotations

from typing import Sequence

from sus2_model import Sus2Calculator, load_model
from sus2_model.train.data import structure_hash

from ..documents import ActiveLearningResult, CampaignResultDocument, EosDocument, ModelDocument, Provenance
from ..hashing import content_key
from ..spec import CampaignSpec, EosTarget
from ..steps.eos import screen_eos
from ..steps.seeds import prototype
from .cache import Workspace


def screen(model: ModelDocument, targets: Sequence[EosTarget], ws: Workspace) -> list[EosDocument]:
    """Equation of state of each target with ``model`` on its task's surface (cached by model hash and target)."""
    calculator = None  # loaded only when a result is not cached
    documents = []
    for target in targets:
        key = content_key(model.model_hash, target.model_dump())
        hit = ws.cache.get("eos", key)
        if hit is None:
            calculator = calculator or Sus2Calculator(load_model(model.model_path), task=model.task)
            atoms = prototype(target.element, target.prototype, target.a)
            fit = screen_eos(atoms, calculator)
            numbers = {"volumes": fit.volumes, "energies": fit.energies, "v0": fit.v0, "e0": fit.e0,
                       "b0_gpa": fit.b0_gpa, "b1": fit.b1}
            hit = EosDocument(
                result_hash=content_key(model.model_hash, structure_hash(atoms), numbers),
                formula=atoms.get_chemical_formula(), prototype=target.prototype, structure_hash=structure_hash(atoms),
                model_hash=model.model_hash, **numbers,
                provenance=Provenance(inputs={"model_hash": model.model_hash, "dataset_hash": model.dataset_hash}),
            ).model_dump(mode="json")
            ws.cache.put("eos", key, hit)
        documents.append(EosDocument.model_validate(hit))
    return documents


def campaign_result(spec: CampaignSpec, learned: ActiveLearningResult,
                    eos: Sequence[EosDocument]) -> CampaignResultDocument:
    """The campaign's result by content hash: final dataset and model, iterations run, screening results."""
    return CampaignResultDocument(campaign=spec.name, spec_hash=spec.spec_hash(),
                                  dataset_hash=learned.dataset.dataset_hash, model_hash=learned.model.model_hash,
                                  iterations=len(learned.iterations), eos=list(eos),
                                  result_hashes=[e.result_hash for e in eos])
