"""Campaign stage for screening with a model (equations of state of prototypes and of structures from files), and
the campaign's result document.  Every target gets a result or a named failure; the rest of the screen goes on."""

from __future__ import annotations

from typing import Sequence

from ase.calculators.calculator import Calculator

from sus2_model import Sus2Calculator, Sus2ModelError
from sus2_model.train.data import structure_hash

from ..documents import ActiveLearningResult, AdsorptionScreeningDocument, CampaignResultDocument, EosDocument, EosScreeningDocument, \
    ModelDocument, Provenance, ScreeningFailureDocument
from ..errors import ScreeningError
from ..hashing import content_key
from ..spec import CampaignSpec, EosTarget
from ..steps.eos import SETTINGS as EOS_SETTINGS
from ..steps.eos import screen_eos
from ..steps.seeds import prototype
from ..steps.targets import Target, read_targets
from .cache import Workspace


def eos_targets(targets: Sequence[EosTarget]) -> list[Target]:
    """The structures of a spec's EOS targets: each prototype, every structure of each file or folder."""
    out: list[Target] = []
    for target in targets:
        if target.path is not None:
            out += read_targets([target.path])
        else:
            atoms = prototype(target.element, target.prototype, target.a)
            atoms.info["prototype"] = target.prototype
            out.append(Target(f"{target.element}-{target.prototype}", atoms))
    return out


def eos_document(target: Target, calculator: Calculator, model_hash: str,
                 inputs: dict | None = None) -> EosDocument | ScreeningFailureDocument:
    """The equation of state of one target with ``calculator`` (relaxed first), or the failure that stopped it."""
    if target.atoms is None:
        return ScreeningFailureDocument(name=target.name, screen="eos", model_hash=model_hash, error=target.error)
    try:
        fit = screen_eos(target.atoms, calculator)
    except (ScreeningError, Sus2ModelError) as exc:
        return ScreeningFailureDocument(name=target.name, screen="eos", model_hash=model_hash,
                                        error=f"{target.name}: {exc}")
    except Exception as exc:  # a calculator or optimizer failure on this structure must not end the whole screen
        return ScreeningFailureDocument(name=target.name, screen="eos", model_hash=model_hash,
                                        error=f"{target.name}: {type(exc).__name__}: {exc}"[:500])
    numbers = {"volumes": fit.volumes, "energies": fit.energies, "v0": fit.v0, "e0": fit.e0, "b0_gpa": fit.b0_gpa,
               "b1": fit.b1, "rms_residual_mev": fit.rms_residual_mev, "other_fits": fit.others}
    digest = structure_hash(target.atoms)
    return EosDocument(result_hash=content_key(model_hash, digest, numbers), name=target.name,
                       formula=target.atoms.get_chemical_formula(), prototype=target.atoms.info.get("prototype"),
                       structure_hash=digest, model_hash=model_hash, **numbers,
                       provenance=Provenance(inputs={"model_hash": model_hash, **(inputs or {})}))


def screen(model: ModelDocument, targets: Sequence[EosTarget], ws: Workspace) -> EosScreeningDocument:
    """Equations of state of the spec's targets with ``model`` on its task's surface; each result (and each failure)
    is cached by model, structure and grid, so a rerun recomputes nothing."""
    calculator = None  # loaded only when a result is not cached
    results, failures = [], []
    for target in eos_targets(targets):
        if target.atoms is None:  # unreadable input: reported every run, never cached
            failures.append(eos_document(target, calculator, model.model_hash))
            continue
        key = content_key(model.model_hash, model.task, structure_hash(target.atoms), EOS_SETTINGS)
        hit, failed = ws.cache.get("eos", key), ws.cache.get("eos_failed", key)
        if failed is not None:
            failures.append(ScreeningFailureDocument.model_validate({**failed, "name": target.name}))
            continue
        if hit is None:
            calculator = calculator or Sus2Calculator(model.model_path, task=model.task)
            document = eos_document(target, calculator, model.model_hash, {"dataset_hash": model.dataset_hash})
            if isinstance(document, ScreeningFailureDocument):
                failures.append(document)
                ws.cache.put("eos_failed", key, document.model_dump(mode="json"))
                continue
            hit = document.model_dump(mode="json")
            ws.cache.put("eos", key, hit)
        results.append(EosDocument.model_validate({**hit, "name": target.name}))
    return EosScreeningDocument(results=results, failures=failures)


def campaign_result(spec: CampaignSpec, learned: ActiveLearningResult, screening: EosScreeningDocument,
                    adsorption: AdsorptionScreeningDocument | None = None) -> CampaignResultDocument:
    """The campaign's result by content hash: final dataset and model, iterations run, screening results."""
    adsorption = adsorption or AdsorptionScreeningDocument()
    return CampaignResultDocument(campaign=spec.name, spec_hash=spec.spec_hash(),
                                  dataset_hash=learned.dataset.dataset_hash, model_hash=learned.model.model_hash,
                                  iterations=len(learned.iterations), eos=screening.results,
                                  adsorption=adsorption.results, failures=screening.failures + adsorption.failures,
                                  result_hashes=[r.result_hash for r in screening.results + adsorption.results])
