"""Structures as JSON documents and the typed result documents of a campaign (every one with provenance).

Every ``*_hash`` field is a content hash (structures, labels, parameters, numbers): never a path or a time, so the
same campaign run by any engine in any folder gives the same hashes.  Structures travel in the fields named by
:data:`STRUCTURE_FIELDS`, which engines keep out of their documents collection (jobflow's ``data`` store)."""

from __future__ import annotations

import time
from typing import Any, Literal, Sequence

import numpy as np
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator
from pydantic import BaseModel, Field

from .serialization import MsonableModel

STRUCTURE_FIELDS = ["structures", "structure", "train_structures", "test_structures", "selected"]


def code_versions() -> dict[str, str]:
    """Versions of the codes that produced a result."""
    from importlib.metadata import PackageNotFoundError, version

    from sus2_model import __version__

    out = {"sus2": __version__}
    for name in ("torch", "ase", "jobflow", "atomate2", "maggma", "pymatgen"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            pass
    return out


class Provenance(MsonableModel):
    """Who made a document, from what (``created`` and versions never enter a content hash)."""

    created: str = Field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%S"))
    code_versions: dict[str, str] = Field(default_factory=code_versions)
    inputs: dict[str, Any] = {}


def atoms_to_dict(atoms: Atoms) -> dict[str, Any]:
    """Positions, cell, labels and info of a structure as plain JSON values (full float precision)."""
    doc: dict[str, Any] = {"numbers": atoms.numbers.tolist(), "positions": atoms.positions.tolist(),
                           "cell": atoms.cell.array.tolist(), "pbc": atoms.pbc.tolist(),
                           "info": {k: v for k, v in atoms.info.items() if isinstance(v, (str, int, float, bool))}}
    if atoms.get_tags().any():  # slabs and adsorbates (OC20's tags: 0 below the surface, 1 surface, 2 adsorbate)
        doc["tags"] = atoms.get_tags().tolist()
    if atoms.calc is not None:
        for key in ("energy", "forces", "stress"):
            if key in atoms.calc.results:
                value = atoms.calc.results[key]
                doc[key] = value.tolist() if isinstance(value, np.ndarray) else float(value)
    return doc


def atoms_from_dict(doc: dict[str, Any]) -> Atoms:
    """Inverse of :func:`atoms_to_dict`."""
    atoms = Atoms(numbers=doc["numbers"], positions=doc["positions"], cell=doc["cell"], pbc=doc["pbc"])
    atoms.info.update(doc.get("info", {}))
    if "tags" in doc:
        atoms.set_tags(doc["tags"])
    labels = {k: (np.array(doc[k]) if k != "energy" else doc[k]) for k in ("energy", "forces", "stress") if k in doc}
    if labels:
        atoms.calc = SinglePointCalculator(atoms, **labels)
    return atoms


def without_fields(value: Any, fields: Sequence[str]) -> Any:
    """JSON ``value`` without the mapping entries named in ``fields``, at any depth."""
    if isinstance(value, dict):
        return {k: without_fields(v, fields) for k, v in value.items() if k not in fields}
    if isinstance(value, list):
        return [without_fields(v, fields) for v in value]
    return value


def summary_of(document: BaseModel) -> dict[str, Any]:
    """A document as JSON without its structures (what the provenance cache keeps)."""
    return without_fields(document.model_dump(mode="json"), STRUCTURE_FIELDS)


class DatasetDocument(MsonableModel):
    """The campaign's own labelled dataset (the structures go to the ``data`` store)."""

    dataset_hash: str = Field(description="content hash of the labelled structures")
    n_structures: int
    n_atoms: int
    labeler: str = Field(description="the labeler's name (quantum_espresso, vasp, ase)")
    labeler_settings: dict[str, Any] = Field(description="everything that determines the labels")
    failed: list[dict[str, str]] = Field([], description="structures whose calculation failed: source, error")
    n_computed: int = Field(0, description="labels computed for this document (the rest came from the cache)")
    n_dropped: int = Field(0, description="labels dropped by the campaign's curation caps")
    structures: list[dict[str, Any]]
    provenance: Provenance = Field(default_factory=Provenance)


class CuratedTaskDocument(MsonableModel):
    """One imported dataset after curation: a training task of its own (its structures go to the ``data`` store)."""

    task: str
    weight: float = Field(1.0, description="the task's weight in the training loss (the spec's datasets[].weight)")
    source: str = Field(description="the imported file")
    source_sha256: str = Field(description="SHA-256 of the imported file's bytes")
    dataset_hash: str = Field(description="content hash of the curated structures, training and test")
    n_read: int
    n_duplicates: int
    n_outliers: int
    n_train: int
    n_test: int
    references: dict[str, dict[str, Any]] = Field(description="per-element reference energies and their method")
    train_structures: list[dict[str, Any]]
    test_structures: list[dict[str, Any]]


class CuratedDatasetDocument(MsonableModel):
    """Every imported dataset, curated with the same settings."""

    dataset_hash: str = Field(description="content hash of the tasks' dataset hashes and weights")
    tasks: list[CuratedTaskDocument]
    settings: dict[str, Any]
    provenance: Provenance = Field(default_factory=Provenance)


class DbsDocument(MsonableModel):
    """A domain-bridging set chosen from the imported tasks, to be relabelled by the campaign's labeler."""

    dbs_hash: str = Field(description="content hash of the chosen structures")
    source_dataset_hash: str = Field(description="the curated dataset it was chosen from")
    n_source: int
    method: str
    settings: dict[str, Any]
    picks: list[dict[str, Any]] = Field(description="per pick: task, index in that task's training set, hash")
    structures: list[dict[str, Any]]
    provenance: Provenance = Field(default_factory=Provenance)


class ModelDocument(MsonableModel):
    """A model: where it is, what it was trained on and how well it does (a published one: none of that)."""

    model_path: str
    model_hash: str = Field(description="content hash of the model (species, tasks, hyperparameters, parameters)")
    dataset_hash: str | None = Field(description="the campaign's labelled dataset (DatasetDocument) it was trained "
                                                 "on; None for a model the spec names")
    training_data_hash: str | None = Field(description="what the trainer read: every task's training + validation "
                                                       "data; None for a model the spec names")
    source_dataset_hash: str | None = Field(None, description="the curated imported data trained beside it")
    init_model_hash: str | None = Field(None, description="the model it was fine-tuned from")
    previous_model_hash: str | None = Field(None, description="the model it replaces, retrained on a grown dataset")
    training_config: dict[str, Any]
    metrics: dict[str, Any] = Field(description="validation errors per task")
    test_metrics: dict[str, Any] = Field({}, description="errors on the held-out imported data, per task")
    parameters: int
    task: str | None = Field(None, description="the task the campaign's calculators use (None: shared surface)")
    species: list[str] | None = Field(None, description="the elements of its types, where the file does not name them")
    source: Literal["campaign", "spec"] = Field("campaign", description="trained by the campaign, or named in the spec")
    provenance: Provenance = Field(default_factory=Provenance)


class ActiveLearningDocument(MsonableModel):
    """One active-learning iteration: what the model explored, how uncertain it was, what it chose to label."""

    iteration: int
    model_hash: str
    n_explored: int
    grades: list[float]
    selected_hashes: list[str]
    selected: list[dict[str, Any]] = Field([], description="the chosen frames, unlabelled")
    n_minima: int = Field(0, description="how many of them are relaxation minima (the rest: uncertain frames)")
    uncertainty: str = Field("grade", description="what ``grades`` hold: the extrapolation grade, or the committee's "
                                                  "largest force deviation (eV/Å)")
    trust_levels: list[float | None] = Field([], description="lower and upper trust levels (upper None: none)")
    accurate_fraction: float | None = Field(None, description="the share of explored frames below the lower level")
    validation: dict[str, float] | None = Field(None, description="the explored model's errors on the held-out "
                                                                  "validation structures")
    labeler_settings: dict[str, Any]
    converged: bool = Field(description="the loop ends here: nothing to label, or enough frames accurate")
    provenance: Provenance = Field(default_factory=Provenance)


class ActiveLearningResult(MsonableModel):
    """Where active learning ended: the final model and dataset, and every iteration (without structures)."""

    model: ModelDocument
    dataset: DatasetDocument
    iterations: list[dict[str, Any]] = []
    validation: dict[str, float] | None = Field(None, description="the final model's errors on the validation set")
    validation_failed: list[dict[str, str]] = Field([], description="validation structures the labeler failed on")


class EosReferenceDocument(MsonableModel):
    """The same EOS workflow run with a reference method (the campaign's labeler) on the model-relaxed cell, and how
    far the model's equation of state lies from it; ``error`` where the reference could not be computed."""

    method: str = Field(description="the labeler's name")
    labeler_settings: dict[str, Any]
    volumes: list[float] = Field([], description="Å³/atom")
    energies: list[float] = Field([], description="eV/atom")
    v0: float | None = None
    e0: float | None = None
    b0_gpa: float | None = None
    b1: float | None = None
    rms_residual_mev: float | None = None
    nu: float | None = Field(None, description="ACWF ν between the model's and the reference's EOS")
    epsilon: float | None = Field(None, description="ACWF ε between the model's and the reference's EOS")
    v0_error_percent: float | None = Field(None, description="100 (V0 model - V0 reference) / V0 reference")
    b0_error_percent: float | None = Field(None, description="100 (B0 model - B0 reference) / B0 reference")
    error: str | None = None


class EosDocument(MsonableModel):
    """A screening result: the equation of state of one relaxed structure (per atom; Birch-Murnaghan, with the
    other fits beside it)."""

    result_hash: str = Field(description="content hash of the model, the structure and the fitted numbers")
    name: str = Field(description="the target: its file (file@index) or element-prototype")
    formula: str
    prototype: str | None = None
    structure_hash: str = Field(description="the structure as given, before relaxation")
    model_hash: str
    volumes: list[float] = Field(description="Å³/atom, around the relaxed cell")
    energies: list[float] = Field(description="eV/atom")
    v0: float
    e0: float
    b0_gpa: float
    b1: float
    rms_residual_mev: float = Field(description="rms misfit of the Birch-Murnaghan fit, meV/atom")
    other_fits: dict[str, dict[str, Any]] = Field({}, description="e.g. vinet: v0, b0_gpa, b1 (or its error)")
    structure: dict[str, Any] | None = Field(None, description="the relaxed cell the volume grid strains")
    reference: EosReferenceDocument | None = Field(None, description="the reference's EOS, where the spec asks")
    extrapolation: str | None = Field(None, description="where the grid leaves the volumes of the campaign's "
                                                        "training structures of this composition (its own model)")
    provenance: Provenance = Field(default_factory=Provenance)


class ScreeningFailureDocument(MsonableModel):
    """A target a screen gave no result for, and why (unreadable, unknown element, unbracketed minimum, ...)."""

    name: str
    screen: str
    model_hash: str
    error: str
    provenance: Provenance = Field(default_factory=Provenance)


class EosScreeningDocument(MsonableModel):
    """An equation-of-state screen: a result or a named failure for every target."""

    results: list[EosDocument] = []
    failures: list[ScreeningFailureDocument] = []


class AdsorptionMinimumDocument(MsonableModel):
    """One distinct minimum of an adsorbate on a surface, ranked by adsorption energy."""

    rank: int = Field(description="1 = the lowest adsorption energy")
    site: str = Field(description="from the relaxed geometry, e.g. 'fcc hollow Cu3'")
    energy: float = Field(description="total energy of the relaxed configuration, eV")
    adsorption_energy: float = Field(description="E(slab+adsorbate) - E(slab) - Σ n_X μX, eV")
    placements: list[str] = Field(description="the initial placements that relaxed into it")
    structure_hash: str
    dft_energy: float | None = None
    dft_adsorption_energy: float | None = Field(None, description="the labeler's, on the same relaxed structure")


class AdsorptionDftDocument(MsonableModel):
    """The labeler's single points on the model's minima and AdsorbML's success metric: the best DFT energy among
    the k lowest minima (by the model) is within ``threshold`` eV of the best DFT energy of all minima."""

    labeler: str
    labeler_settings: dict[str, Any]
    k: int
    n_checked: int
    slab_energy: float | None = Field(description="None where the labeler failed on the clean slab")
    gas_energies: dict[str, float]
    mae: float | None = Field(None, description="mean |model - labeler| adsorption energy over the checked minima, eV")
    threshold: float
    success: bool | None = Field(None, description="None where not every minimum was checked (no reference) or "
                                 "there are k minima or fewer (true by construction)")
    success_at: dict[int, bool] = Field({}, description="the success at every k below the number of minima, where "
                                        "every minimum was checked (AdsorbML's success curve)")
    best_dft_rank: int | None = Field(None, description="model rank of the minimum the labeler finds lowest")
    failed: list[dict[str, str]] = []


def success_summary(dft: dict[str, Any]) -> str:
    """An :class:`AdsorptionDftDocument`'s (JSON form) success curve, e.g. ``success@1 False, @2 True``; empty where
    it has none."""
    curve = sorted((int(k), v) for k, v in (dft.get("success_at") or {}).items())
    return "success" + ", ".join(f"@{k} {v}" for k, v in curve) if curve else ""


class AdsorptionDocument(MsonableModel):
    """An adsorption screen of one adsorbate on one surface: the ranked minima, the placements the anomaly filter
    rejected, the gas references, and the labeler's check."""

    result_hash: str = Field(description="content hash of the model, slab, adsorbate, settings and minima")
    name: str = Field(description="surface+adsorbate, e.g. 'Cu(111)+O'")
    surface: str
    adsorbate: str
    bulk: str = Field(description="the bulk target's name")
    model_hash: str
    slab_hash: str = Field(description="the clean slab before relaxation")
    slab_energy: float
    n_slab_atoms: int
    references: dict[str, Any] = Field(description="method, gas molecules' energies and chemical potentials (eV)")
    n_placements: int
    minima: list[AdsorptionMinimumDocument]
    rejected: list[dict[str, str]] = Field([], description="placement and reason (overlap, not converged, anomaly)")
    dft: AdsorptionDftDocument | None = None
    structures: list[dict[str, Any]] = Field([], description="the relaxed clean slab, then each minimum by rank")
    provenance: Provenance = Field(default_factory=Provenance)


class AdsorptionScreeningDocument(MsonableModel):
    """An adsorption screen: a result or a named failure for every surface and adsorbate."""

    results: list[AdsorptionDocument] = []
    failures: list[ScreeningFailureDocument] = []


class BindingSiteDocument(MsonableModel):
    """A guest's binding site in a framework, relaxed from one of the lowest Widom insertions."""

    rank: int = Field(description="1 = the lowest binding energy")
    binding_energy: float = Field(description="E(framework+guest) - E(framework) - E(guest), each relaxed, eV")
    binding_energy_kj_mol: float
    closest_atom: str = Field(description="the framework atom nearest the guest, e.g. 'Mg336 (guest O)'")
    closest_distance: float = Field(description="Å")
    insertion_energy: float = Field(description="the Widom insertion it was relaxed from, eV")
    structure_hash: str


class WidomDocument(MsonableModel):
    """Widom insertions of a rigid guest in a rigid framework: counts, the Henry coefficient and the adsorption
    enthalpy with one standard error from block averages."""

    temperature: float = Field(description="K")
    n_trials: int
    n_overlap: int = Field(description="trials rejected by overlap, never evaluated")
    n_blocked: int = Field(description="trials in pockets the guest cannot reach")
    open_fraction: float = Field(1.0, description="the share of the cell trials were drawn from: the rest overlaps "
                                                  "the framework whatever the guest's orientation (steps.pores)")
    pocket_fraction: float = Field(0.0, description="the share of the cell in blocked pockets (closed cavities, and "
                                                    "with probe_radius the pockets the probe cannot reach): weight "
                                                    "0, never sampled")
    n_evaluated: int
    henry: float = Field(description="K_H, mol kg^-1 Pa^-1")
    henry_error: float
    enthalpy_kj_mol: float = Field(description="dH_ads = <dU w>/<w> - RT; Q_st = -dH_ads")
    enthalpy_error: float
    converged: bool = Field(description="False: max_trials ran out before the relative error reached rtol")
    wall_s: float
    histogram_edges: list[float] = Field(description="eV")
    histogram: list[int] = Field(description="evaluated insertion energies per bin (the end bins hold the tails)")
    lowest_energy: float = Field(description="the lowest insertion energy, eV")


class MofDocument(MsonableModel):
    """Gas adsorption of one guest in one framework: Widom statistics and the relaxed binding sites."""

    result_hash: str = Field(description="content hash of the model, framework, guest and settings")
    name: str = Field(description="framework+guest, e.g. 'Mg-MOF-74.cif+CO2'")
    framework: str
    guest: str
    model_hash: str
    framework_hash: str = Field(description="the framework as read, before the supercell")
    supercell: list[int]
    n_framework_atoms: int = Field(description="in the supercell")
    density: float = Field(description="framework density, kg/m^3")
    settings: dict[str, Any]
    widom: WidomDocument
    widom_d3: WidomDocument | None = Field(None, description="the same insertions with the model + D3(BJ)")
    sites: list[BindingSiteDocument] = []
    sites_d3: list[BindingSiteDocument] = Field([], description="the lowest insertions of widom_d3, relaxed with the "
                                                                "model + D3(BJ)")
    rejected_sites: list[dict[str, str]] = []
    structures: list[dict[str, Any]] = Field([], description="the best site's loaded cell (model), then with D3")
    provenance: Provenance = Field(default_factory=Provenance)


class MofScreeningDocument(MsonableModel):
    """A MOF screen: a result or a named failure for every framework and guest."""

    results: list[MofDocument] = []
    failures: list[ScreeningFailureDocument] = []


class CampaignResultDocument(MsonableModel):
    """What a campaign produced, by content hash: equal for every engine that runs the same spec."""

    campaign: str
    spec_hash: str
    dataset_hash: str
    model_hash: str
    screening_model_hash: str | None = Field(None, description="the model that screened: model_hash, or the one the "
                                                               "spec names")
    iterations: int
    history: list[dict[str, Any]] = Field([], description="per active-learning iteration: frames explored, "
                                                          "selected, the accurate share, the explored model's "
                                                          "validation errors")
    validation: dict[str, float] | None = Field(None, description="the final model's errors on the validation set")
    eos: list[EosDocument]
    adsorption: list[AdsorptionDocument] = []
    mof: list[MofDocument] = []
    failures: list[ScreeningFailureDocument] = []
    result_hashes: list[str]
