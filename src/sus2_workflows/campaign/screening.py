"""Campaign stage for screening with a model (equations of state of prototypes and of structures from files), and
the campaign's result document.  Every target gets a result or a named failure; the rest of the screen goes on."""

from __future__ import annotations

import time
from typing import Any, Sequence

from ase import Atoms
from ase.calculators.calculator import Calculator
from ase.formula import Formula

from sus2_model import Sus2Calculator, Sus2ModelError
from sus2_model.train.data import structure_hash

from ..documents import ActiveLearningResult, AdsorptionScreeningDocument, CampaignResultDocument, DatasetDocument, \
    MofScreeningDocument, \
    EosDocument, EosReferenceDocument, EosScreeningDocument, ModelDocument, Provenance, ScreeningFailureDocument, \
    atoms_from_dict, atoms_to_dict
from ..errors import LabelingError, ScreeningError
from ..hashing import content_key
from ..spec import CampaignSpec, EosTarget, ScreeningModelSpec
from ..steps.eos import SETTINGS as EOS_SETTINGS
from ..steps.eos import beyond_training, delta_metrics, energies_per_atom, eos_of, relax, relax_all
from ..steps.label import Labeler
from ..steps.seeds import prototype
from ..steps.targets import Target, read_targets
from .cache import Workspace
from .labels import labeler_energies


def screening_model(trained: ModelDocument, named: ScreeningModelSpec | None) -> ModelDocument:
    """The model that screens: the campaign's ``trained`` one, or the one the spec names."""
    return trained if named is None else named_model(named)


def named_model(named: ScreeningModelSpec) -> ModelDocument:
    """A model file (a published SUS2 model, say) described by its content hash, for a screen."""
    from sus2_model.io.native import model_hash
    from sus2_model.predict import load_model

    try:
        model = load_model(named.path, named.species)
        model.task_index(named.task)
    except (Sus2ModelError, OSError, ValueError, KeyError) as exc:
        raise ScreeningError(f"model {named.path}: {exc}") from None
    return ModelDocument(model_path=named.path, model_hash=model_hash(model), dataset_hash=None,
                         training_data_hash=None, training_config={}, metrics={},
                         parameters=sum(p.numel() for p in model.parameters()), task=named.task,
                         species=named.species, source="spec")


def model_calculator(model: ModelDocument) -> Sus2Calculator:
    """An ASE calculator of ``model`` on its task's surface."""
    return Sus2Calculator(model.model_path, species=model.species, task=model.task)


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


def eos_document(target: Target, calculator: Calculator, model_hash: str, inputs: dict | None = None,
                 relaxed: Atoms | Exception | None = None) -> EosDocument | ScreeningFailureDocument:
    """The equation of state of one target with ``calculator`` — relaxed first, or ``relaxed`` already (by
    :func:`relax_all`: the relaxed copy or the error that stopped it) — or the failure that stopped it."""
    if target.atoms is None:
        return ScreeningFailureDocument(name=target.name, screen="eos", model_hash=model_hash, error=target.error)
    try:
        if isinstance(relaxed, Exception):
            raise relaxed
        fit = eos_of(relax(target.atoms, calculator) if relaxed is None else relaxed,
                     lambda images: energies_per_atom(images, calculator))
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
                       structure_hash=digest, model_hash=model_hash, **numbers, structure=atoms_to_dict(fit.structure),
                       provenance=Provenance(inputs={"model_hash": model_hash, **(inputs or {})}))


def reference_eos(document: EosDocument, labeler: Labeler, ws: Workspace) -> EosReferenceDocument:
    """The same EOS workflow with ``labeler`` on the model-relaxed cell (its grid re-centred where the reference's
    minimum lies elsewhere), the labels through the campaign's cache; ν, ε and the V0/B0 errors of the model."""
    relaxed = atoms_from_dict(document.structure)

    def energies(images: Sequence[Atoms]) -> list[float]:
        for image in images:
            image.info["source"] = f"eos:{document.name}:{image.get_volume() / len(image):.3f}"
        values, failed = labeler_energies(images, labeler, ws)
        if failed:
            raise ScreeningError(f"the labeler failed on {failed[0]['source']}: {failed[0]['error']}")
        return [e / len(a) for e, a in zip(values, images)]

    where = {"method": labeler.name, "labeler_settings": labeler.settings()}
    try:
        fit = eos_of(relaxed, energies)
    except (ScreeningError, LabelingError) as exc:
        return EosReferenceDocument(**where, error=f"{document.name}: reference EOS: {exc}"[:500])
    delta = delta_metrics((document.v0, document.b0_gpa, document.b1), (fit.v0, fit.b0_gpa, fit.b1))
    return EosReferenceDocument(**where, volumes=fit.volumes, energies=fit.energies, v0=fit.v0, e0=fit.e0,
                                b0_gpa=fit.b0_gpa, b1=fit.b1, rms_residual_mev=fit.rms_residual_mev, **delta,
                                v0_error_percent=100 * (document.v0 - fit.v0) / fit.v0,
                                b0_error_percent=100 * (document.b0_gpa - fit.b0_gpa) / fit.b0_gpa)


def screen(model: ModelDocument, targets: Sequence[EosTarget], ws: Workspace,
           reference: Labeler | None = None) -> EosScreeningDocument:
    """Equations of state of the spec's targets with ``model`` on its task's surface, each checked against the same
    workflow with the ``reference`` labeler where one is given; each result and each failure is cached by model,
    structure and grid, each reference by result and labeler settings, so a rerun recomputes nothing (but a reference
    that failed, which is tried again)."""
    results: dict[int, EosDocument] = {}
    failures: dict[int, ScreeningFailureDocument] = {}
    todo: list[tuple[int, Target, str]] = []
    targets = eos_targets(targets)
    for k, target in enumerate(targets):
        if target.atoms is None:  # unreadable input: reported every run, never cached
            failures[k] = eos_document(target, None, model.model_hash)
            continue
        key = content_key(model.model_hash, model.task, structure_hash(target.atoms), EOS_SETTINGS)
        hit, failed = ws.cache.get("eos", key), ws.cache.get("eos_failed", key)
        if failed is not None:
            failures[k] = ScreeningFailureDocument.model_validate({**failed, "name": target.name})
        elif hit is not None and (reference is None or hit.get("structure") is not None):
            results[k] = EosDocument.model_validate({**hit, "name": target.name})
        else:
            todo.append((k, target, key))
    if todo:  # every structure still to screen relaxes in lockstep, one batched model call per step
        calculator = model_calculator(model)
        relaxed = relax_all([t.atoms for _, t, _ in todo], calculator)
        for (k, target, key), cell in zip(todo, relaxed):
            document = eos_document(target, calculator, model.model_hash, {"dataset_hash": model.dataset_hash}, cell)
            if isinstance(document, ScreeningFailureDocument):
                failures[k] = document
                ws.cache.put("eos_failed", key, document.model_dump(mode="json"))
            else:
                results[k] = document
                ws.cache.put("eos", key, document.model_dump(mode="json"))
    if reference is not None:
        for result in results.values():
            result.reference = _cached_reference(result, reference, ws)
    return EosScreeningDocument(results=[results[k] for k in sorted(results)],
                                failures=[failures[k] for k in sorted(failures)])


def _cached_reference(result: EosDocument, labeler: Labeler, ws: Workspace) -> EosReferenceDocument:
    """:func:`reference_eos`, cached by result and labeler settings; a reference that failed is tried again next run
    (its labels may have failed for a transient reason)."""
    key = content_key(result.result_hash, labeler.settings(), EOS_SETTINGS)
    hit = ws.cache.get("eos_reference", key)
    if hit is not None:
        return EosReferenceDocument.model_validate(hit)
    document = reference_eos(result, labeler, ws)
    if document.error is None:
        ws.cache.put("eos_reference", key, document.model_dump(mode="json"))
    return document


def with_training_coverage(results: Sequence[EosDocument], dataset: DatasetDocument) -> list[EosDocument]:
    """Copies of ``results`` (screened with the model trained on ``dataset``) that say where each grid leaves the
    volumes of the dataset's structures of the same composition (:func:`beyond_training`)."""
    def reduced(formula: str) -> str:
        return str(Formula(formula).reduce()[0])

    volumes: dict[str, list[float]] = {}
    for atoms in map(atoms_from_dict, dataset.structures):
        volumes.setdefault(reduced(atoms.get_chemical_formula()), []).append(atoms.get_volume() / len(atoms))
    return [r.model_copy(update={"extrapolation": beyond_training(r.volumes, volumes.get(reduced(r.formula), []))})
            for r in results]


def history_entry(iteration: dict[str, Any]) -> dict[str, Any]:
    """One active-learning iteration's line of the campaign's history (from its summary)."""
    return {"iteration": iteration["iteration"], "n_explored": iteration["n_explored"],
            "n_selected": len(iteration["selected_hashes"]), "n_minima": iteration.get("n_minima", 0),
            "uncertainty": iteration.get("uncertainty", "grade"),
            "max_uncertainty": max(iteration["grades"], default=0.0),
            "accurate_fraction": iteration.get("accurate_fraction"), "validation": iteration.get("validation"),
            "converged": iteration["converged"]}


def campaign_result(spec: CampaignSpec, learned: ActiveLearningResult, screening: EosScreeningDocument,
                    adsorption: AdsorptionScreeningDocument | None = None, ws: Workspace | None = None,
                    screened_by: ModelDocument | None = None, mof: MofScreeningDocument | None = None
                    ) -> CampaignResultDocument:
    """The campaign's result by content hash: final dataset and model (and the model that screened, where the spec
    names another), iterations run, screening results; cached under the spec's hash for the report."""
    adsorption = adsorption or AdsorptionScreeningDocument()
    mof = mof or MofScreeningDocument()
    own_model = screened_by is None or screened_by.model_hash == learned.model.model_hash
    eos = with_training_coverage(screening.results, learned.dataset) if own_model else screening.results
    result = CampaignResultDocument(
        campaign=spec.name, spec_hash=spec.spec_hash(), dataset_hash=learned.dataset.dataset_hash,
        model_hash=learned.model.model_hash, screening_model_hash=(screened_by or learned.model).model_hash,
        iterations=len(learned.iterations), history=[history_entry(r) for r in learned.iterations],
        validation=learned.validation, eos=eos, adsorption=adsorption.results, mof=mof.results,
        failures=screening.failures + adsorption.failures + mof.failures,
        result_hashes=[r.result_hash for r in screening.results + adsorption.results + mof.results])
    if ws is not None:  # for the report: the numbers without the structures (a store document stays small)
        cached = result.model_dump(mode="json", exclude={"eos": {"__all__": {"structure"}},
                                                         "adsorption": {"__all__": {"structures"}},
                                                         "mof": {"__all__": {"structures"}}})
        ws.cache.put("result", result.spec_hash, {**cached, "finished": time.time()})
    return result
