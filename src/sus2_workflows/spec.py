"""Campaign specs (``workflows/*.yaml``): pydantic models; an unknown key or a bad value is an error naming it."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import ConfigDict, Field, ValidationError, field_validator, model_validator

from sus2_model.uncertainty import COMMITTEE_SIZE

from .errors import SpecError
from .steps.adsorbates import ADSORBATES
from .serialization import MsonableModel


class _Strict(MsonableModel):
    model_config = ConfigDict(extra="forbid")


class SeedSpec(_Strict):
    """Seed structures: a prototype lattice, strained and rattled copies."""

    element: str
    prototype: Literal["fcc", "bcc", "hcp", "diamond", "sc"]
    a: float | None = Field(None, gt=0, description="lattice constant (Å); default ASE's reference value")
    supercell: tuple[int, int, int] = (1, 1, 1)
    strains: list[float] = [-0.04, 0.0, 0.04]
    rattle: float = Field(0.05, ge=0)
    copies: int = Field(1, ge=1)

    @field_validator("element")
    @classmethod
    def _element(cls, value: str) -> str:
        from ase.data import atomic_numbers

        if value not in atomic_numbers or value == "X":
            raise ValueError(f"{value!r} is not a chemical element")
        return value


class LabelerSpec(_Strict):
    """The reference method: Quantum ESPRESSO (local), VASP (atomate2 jobs on a cluster) or any ASE calculator."""

    type: Literal["quantum_espresso", "vasp", "ase"]
    pseudopotentials: dict[str, str] = {}
    ecutwfc: float = Field(30.0, gt=0, description="Ry; at least what each pseudopotential suggests")
    ecutrho: float | None = Field(None, gt=0, description="Ry; None: Quantum ESPRESSO's 4 x ecutwfc (ultrasoft and "
                                                          "PAW files often want more)")
    kspacing: float = Field(0.25, gt=0, description="Quantum ESPRESSO: 1/Å with the 2π included (VASP's KSPACING "
                                                    "rule, n_i = max(1, ceil(2π|b_i|/kspacing)))")
    kpts: tuple[int, int, int] | None = Field(None, description="Quantum ESPRESSO: a fixed Monkhorst-Pack grid for "
                                                                "every structure (overrides kspacing; an EOS wants one "
                                                                "grid at every volume)")
    smearing: str | None = None
    degauss: float = 0.02
    pw_input: dict[Literal["control", "system", "electrons"], dict[str, Any]] = Field(
        {}, description="Quantum ESPRESSO: more pw.x namelist entries, e.g. {electrons: {mixing_beta: 0.3}} for slabs "
                        "(entries the labeler sets itself are refused)")
    pseudo_dir: str = "/usr/share/espresso/pseudo"
    command: str = "pw.x"
    module: str | None = None
    callable: str | None = None
    kwargs: dict[str, Any] = {}
    incar: dict[str, Any] = Field({}, description="VASP: user_incar_settings of atomate2's static input set")
    kpoints: dict[str, Any] = Field({}, description="VASP: user_kpoints_settings, e.g. {reciprocal_density: 100}")


class ImportSpec(_Strict):
    """An existing labelled dataset (any reader format) imported as its own training task."""

    path: str
    task: str
    species: list[str] | None = Field(None, description="type index -> element, for .cfg files")
    weight: float = Field(1.0, gt=0)


class CurationSpec(_Strict):
    """Curation of imported data and of the campaign's own labels."""

    max_force: float = Field(50.0, gt=0, description="eV/Å; larger labels are dropped as failed DFT")
    max_energy_per_atom: float = Field(20.0, gt=0, description="eV/atom from the composition fit of the labels; "
                                                               "larger deviations are dropped as failed DFT")
    test_fraction: float = Field(0.1, ge=0, lt=1)
    isolated_atoms: bool = Field(False, description="label one isolated atom per element as a reference")


class DbsSpec(_Strict):
    """Domain-bridging set: structures of the imported tasks relabelled by the campaign's labeler."""

    fraction: float = Field(0.001, gt=0, le=1)
    min_count: int = Field(4, ge=1)
    max_atoms: int | None = Field(64, ge=1)


class ActiveLearningSpec(_Strict):
    """Explore with MD (and, on learned surfaces, relaxations of every placement), measure the model's uncertainty
    on every frame, label the frames between the trust levels (and, with ``label_minima``, the relaxations' new end
    points, kept or rejected by the screen; at most ``max_new_per_iteration`` of each), retrain.  The loop ends when
    nothing is left to label, when ``accurate_fraction`` of the frames are below the lower trust level (and no new
    minimum waits), or after ``iterations``."""

    iterations: int = Field(2, ge=0)
    md_temperature_k: float | list[float] = Field(800.0, description="K, or a schedule: every start runs at each")
    md_pressure_gpa: list[float] | None = Field(None, description="NPT (Berendsen) at each pressure, for starts "
                                                                  "periodic in every direction; none: NVT Langevin")
    md_steps: int = Field(40, ge=1)
    sample_every: int = Field(5, ge=1)
    uncertainty: Literal["grade", "committee"] = Field(
        "grade", description="grade: the extrapolation grade (D-optimality, as MLIP-2), the first frame of a "
                             "trajectory above the lower trust level; committee: the largest force deviation of "
                             "models refit on resamples of the labels (as DP-GEN), every frame between the levels")
    grade_threshold: float = Field(3.0, gt=0, description="grade: the lower trust level")
    grade_break: float | None = Field(None, gt=0, description="grade: the upper trust level, where an MD trajectory "
                                                              "stops (MLIP-2's break threshold); none: never")
    committee_trust: tuple[float, float] = Field((0.1, 0.4), description="committee: lower and upper trust levels "
                                                                         "of the force deviation (eV/Å)")
    committee_size: int = Field(COMMITTEE_SIZE, ge=2)
    accurate_fraction: float = Field(0.95, gt=0, le=1, description="converged when this share of the explored "
                                                                   "frames is below the lower trust level")
    max_new_per_iteration: int = Field(4, ge=1)
    label_minima: bool = True
    validation: list[SeedSpec] = Field([], description="held-out structures, generated as seeds are (larger cells, "
                                                       "other strains and rattles) and labelled by the campaign's "
                                                       "labeler, never trained on: every iteration's model is "
                                                       "measured on them")

    @model_validator(mode="after")
    def _consistent(self) -> ActiveLearningSpec:
        temperatures = self.md_temperature_k if isinstance(self.md_temperature_k, list) else [self.md_temperature_k]
        if not temperatures or min(temperatures) <= 0:
            raise ValueError("md_temperature_k: every temperature must be positive")
        lower, upper = self.trust_levels()
        if upper <= lower:
            raise ValueError(f"the upper trust level ({upper}) must lie above the lower ({lower})")
        return self

    def trust_levels(self) -> tuple[float, float]:
        """The lower and upper trust levels of the chosen uncertainty (upper inf: no trajectory stops)."""
        if self.uncertainty == "committee":
            return self.committee_trust
        return self.grade_threshold, self.grade_break or float("inf")


class EosTarget(_Strict):
    """An equation-of-state target: a prototype (``element`` + ``prototype`` [+ ``a``]) or structure files
    (``path``: a file or a folder; relative paths start at the spec)."""

    element: str | None = None
    prototype: Literal["fcc", "bcc", "hcp", "diamond", "sc"] | None = None
    a: float | None = Field(None, gt=0)
    path: str | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> EosTarget:
        prototype = (self.element, self.prototype, self.a)
        if (self.path is None) == (self.element is None or self.prototype is None) or \
                (self.path is not None and any(v is not None for v in prototype)):
            raise ValueError("give either element and prototype, or path")
        return self


class AdsorptionTarget(_Strict):
    """Adsorption on the surfaces of one bulk crystal (AdsorbML style): slabs for each Miller index, every adsorbate
    on the heuristic sites plus ``random_placements`` random ones, relaxed with the model; optionally DFT single
    points on the best ``dft_top_k`` minima (and on all minima, for the success metric)."""

    bulk: EosTarget = Field(description="the crystal, relaxed with the model before slabs are cut")
    miller: list[tuple[int, int, int]] = [(1, 1, 1)]
    adsorbates: list[str] = Field(["O"], min_length=1, description="library names (H, O, N, OH, CO, H2O) or a "
                                                                   "molecule file whose first atom binds")
    min_slab: float = Field(8.0, gt=0, description="Å")
    min_vacuum: float = Field(12.0, gt=0, description="Å")
    min_lateral: float = Field(5.0, gt=0, description="Å: the surface cell is repeated until both vectors reach it")
    fixed_layers: int = Field(2, ge=0)
    random_placements: int = Field(4, ge=0)
    seed: int = 0
    references: Literal["model", "labeler"] = Field("model", description="who computes the gas molecules (H2, H2O, "
                                                                        "CO, N2) of the chemical potentials")
    dft_top_k: int = Field(0, ge=0, description="DFT single points on the k lowest minima (0: none)")
    dft_all_minima: bool = Field(True, description="DFT on every minimum too, so the success metric has a reference")
    learn: bool = Field(False, description="add the slab and its placements to the campaign's seeds and MD starts")


class MofTarget(_Strict):
    """Gas adsorption in one framework (or a folder of them): Widom insertions of each guest at ``temperature``
    (Henry coefficient, heat of adsorption) and the ``binding_sites`` lowest distinct sites relaxed with the model
    (binding energies); with ``dispersion: d3`` both again with D3(BJ) added."""

    framework: EosTarget = Field(description="a CIF (or any structure file) or a folder of them: {path: ...}")
    guests: list[str] = Field(["CO2"], min_length=1, description="molecules of ASE's g2 set (CO2, H2O, N2, CH4, "
                                                                  "H2, ...) or molecule files")
    temperature: float = Field(298.0, gt=0, description="K")
    dispersion: Literal["none", "d3"] = Field("none", description="d3: Widom and binding energies again with "
                                                                   "D3(BJ) added (PBE parameters, two-body)")
    binding_sites: int = Field(3, ge=0, description="distinct sites relaxed from the lowest insertions")
    relax_framework: bool = Field(False, description="relax the framework atoms too (default: held fixed)")
    block_pockets: bool = Field(True, description="closed cavities no guest from outside reaches get weight 0, as "
                                                  "RASPA's blocked pockets (false: sampled like the rest)")
    probe_radius: float | None = Field(None, gt=0, description="also block the pockets a probe sphere of this radius "
                                       "(Å; about half the guest's kinetic diameter, e.g. 1.65 for CO2) cannot "
                                       "reach from a channel, by Zeo++'s analysis with its default radii; a "
                                       "framework no channel of which admits the probe has no accessible pore")
    check_framework: bool = Field(True, description="refuse a framework with mofchecker-style problems: atoms with "
                                                    "too many bonds, carbons lacking a hydrogen, molecules bonded to "
                                                    "no framework (solvent, counter-ions)")
    min_trials: int = Field(20_000, ge=1)
    max_trials: int = Field(500_000, ge=1)
    rtol: float = Field(0.05, gt=0, description="stop when the Henry coefficient's relative error is below this")
    max_binding_ev: float = Field(3.0, gt=0, description="an insertion below -this is a failure (the model outside "
                                                         "its data); raise it for chemisorbing guests")
    seed: int = 0

    @model_validator(mode="after")
    def _from_file(self) -> MofTarget:
        if self.framework.path is None:
            raise ValueError("a framework comes from a file: framework: {path: ...}")
        return self


class ScreeningModelSpec(_Strict):
    """A published or earlier-trained SUS2 model that screens instead of the campaign's own (``path`` relative to
    the spec; ``species``: the elements of its types where the file does not name them)."""

    path: str
    species: list[str] | None = None
    task: str | None = Field(None, description="the task of a multi-task model whose surface screens")


class ScreeningSpec(_Strict):
    """What the campaign screens, with which model, checked against what."""

    model: ScreeningModelSpec | None = Field(None, description="screen with this model (default: the campaign's)")
    eos: list[EosTarget] = []
    eos_reference: Literal["none", "labeler"] = Field("none", description="labeler: the same EOS workflow with the "
                                                      "campaign's labeler on the model-relaxed cell; ν, ε, ΔV0, ΔB0")
    adsorption: list[AdsorptionTarget] = []
    mof: list[MofTarget] = Field([], description="gas adsorption in metal-organic frameworks")


class CampaignSpec(_Strict):
    """A whole campaign: seeds -> labels -> training -> active learning -> screening."""

    name: str
    seeds: list[SeedSpec]
    labeler: LabelerSpec
    task: str | None = Field(None, description="task name of the campaign's own labels when datasets are imported")
    datasets: list[ImportSpec] = []
    curation: CurationSpec = CurationSpec()
    dbs: DbsSpec | None = None
    training: dict[str, Any] = {}
    active_learning: ActiveLearningSpec = ActiveLearningSpec()
    screening: ScreeningSpec = ScreeningSpec()

    @model_validator(mode="after")
    def _learnable(self) -> CampaignSpec:
        if self.active_learning.uncertainty == "committee" and self.datasets:
            raise ValueError("active_learning.uncertainty: committee refits single-task models; a campaign that "
                             "imports datasets trains a multi-task one (use grade)")
        if self.active_learning.validation and self.labeler.type == "vasp":
            raise ValueError("active_learning.validation is labelled in the campaign's own process: a VASP labeler "
                             "runs as workflow jobs (label the structures and import them as a dataset instead)")
        return self

    @property
    def target_task(self) -> str | None:
        """The task of the campaign's own labels: none for a single-domain campaign."""
        return (self.task or self.name) if self.datasets else None

    def spec_hash(self) -> str:
        """SHA-256 of the canonical JSON of the spec, each imported dataset named by its file's SHA-256 rather than
        its path (the same spec and data in another folder have the same hash)."""
        from .hashing import file_sha256

        data = self.model_dump(mode="json")
        files = data["screening"]["eos"] + [t["bulk"] for t in data["screening"]["adsorption"]] + \
            [t["framework"] for t in data["screening"]["mof"]]
        for entry in data["datasets"] + [t for t in files if t["path"]]:
            path = Path(entry["path"])
            files = sorted(p for p in path.iterdir() if p.is_file()) if path.is_dir() else [path]
            entry["path"] = [(p.name, file_sha256(p)) for p in files if p.is_file()] or entry["path"]
        if data["screening"]["model"] is not None:  # a model by content, not by path
            data["screening"]["model"]["path"] = file_sha256(data["screening"]["model"]["path"])
        for target in data["screening"]["adsorption"]:  # a user's molecule by content, not by path
            target["adsorbates"] = [a if a in ADSORBATES or not Path(a).is_file() else (Path(a).name, file_sha256(a))
                                    for a in target["adsorbates"]]
        for target in data["screening"]["mof"]:
            target["guests"] = [g if not Path(g).is_file() else (Path(g).name, file_sha256(g))
                                for g in target["guests"]]
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def _beside(spec: Path, name: str) -> Path:
    """A path the spec gives: as it is if absolute, else relative to the spec's folder."""
    return Path(name) if Path(name).is_absolute() else (spec.parent / name).resolve()


def load_spec(path: str | Path) -> CampaignSpec:
    """Read and validate a campaign spec; errors name the file and the offending key."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise SpecError(f"{path}: cannot read YAML: {exc}") from None
    try:
        spec = CampaignSpec.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise SpecError(f"{path}: {where}: {first['msg']}") from None
    for k, entry in enumerate(spec.datasets):
        resolved = _beside(path, entry.path)
        if not resolved.exists():
            raise SpecError(f"{path}: datasets.{k}.path: {entry.path} does not exist (relative paths start at the spec)")
        entry.path = str(resolved)
    targets = [(f"eos.{k}", t) for k, t in enumerate(spec.screening.eos)]
    targets += [(f"adsorption.{k}.bulk", t.bulk) for k, t in enumerate(spec.screening.adsorption)]
    targets += [(f"mof.{k}.framework", t.framework) for k, t in enumerate(spec.screening.mof)]
    for where, target in targets:
        if target.path is not None:
            resolved = _beside(path, target.path)
            if not resolved.exists():
                raise SpecError(f"{path}: screening.{where}.path: {target.path} does not exist")
            target.path = str(resolved)
    model = spec.screening.model
    if model is not None:
        resolved = _beside(path, model.path)
        if not resolved.is_file():
            raise SpecError(f"{path}: screening.model.path: {model.path} is not a file")
        model.path = str(resolved)
        from .campaign.screening import named_model  # loads it: an unusable model fails now, not after training
        from .errors import ScreeningError

        try:
            named_model(model)
        except ScreeningError as exc:
            raise SpecError(f"{path}: screening.model: {exc}") from None
    for k, target in enumerate(spec.screening.adsorption):
        for j, name in enumerate(target.adsorbates):
            if name not in ADSORBATES:
                resolved = _beside(path, name)
                if not resolved.is_file():
                    raise SpecError(f"{path}: screening.adsorption.{k}.adsorbates.{j}: {name} is neither a library "
                                    f"adsorbate ({', '.join(ADSORBATES)}) nor a file")
                target.adsorbates[j] = str(resolved)
    for k, target in enumerate(spec.screening.mof):
        from .steps.mof import named_guest

        for j, name in enumerate(target.guests):
            if not named_guest(name):
                resolved = _beside(path, name)
                if not resolved.is_file():
                    raise SpecError(f"{path}: screening.mof.{k}.guests.{j}: {name} is neither a molecule of ASE's g2 "
                                    "set (CO2, H2O, N2, CH4, H2, ...), an element nor a file")
                target.guests[j] = str(resolved)
    if spec.labeler.type == "quantum_espresso":
        from .labelers import make_labeler  # checks the cutoffs against the pseudopotentials: before any label is paid

        try:
            make_labeler(spec.labeler)
        except SpecError as exc:
            raise SpecError(f"{path}: {exc}") from None
    if spec.screening.eos_reference == "labeler" and spec.labeler.type == "vasp":
        raise SpecError(f"{path}: screening.eos_reference: the labeler's EOS runs in process (quantum_espresso or "
                        "ase); VASP labels come from engine jobs")
    if spec.dbs is not None and not spec.datasets:
        raise SpecError(f"{path}: dbs: a domain-bridging set needs imported datasets to select from")
    if spec.datasets and len({e.task for e in spec.datasets} | {spec.target_task}) != len(spec.datasets) + 1:
        raise SpecError(f"{path}: datasets: task names must differ from each other and from the campaign's task")
    from sus2_model.train.config import ConfigError, load_config

    try:
        training = load_config(None, train=["placeholder"], **spec.training)
    except ConfigError as exc:
        raise SpecError(f"{path}: training: {exc}") from None
    if spec.screening.adsorption and model is None:  # the campaign's model screens: its cutoff is the training one
        from .campaign.adsorption import target_slab_problems

        for k, target in enumerate(spec.screening.adsorption):
            problems = target_slab_problems(target, training.cutoff)
            if problems:
                raise SpecError(f"{path}: screening.adsorption.{k}: {'; '.join(problems)} (training cutoff)")
    return spec
