"""Campaign stage for gas adsorption in metal-organic frameworks: for every framework and guest, Widom insertions
with SUS2's local energy update (Henry coefficient, heat of adsorption) and the lowest distinct insertions relaxed
into binding sites; where asked, the same again with D3(BJ) dispersion added (its local update in Widom, the dftd3
library in the relaxations).  Each result is cached by model, framework, guest and
settings, so a killed screen resumes; a framework or guest that cannot be screened is a named failure and the rest
of the screen goes on."""

from __future__ import annotations

from typing import Sequence

from ase import Atoms

from sus2_model import Sus2Calculator, Sus2ModelError
from sus2_model.insertion import LocalInsertion, guest_shape
from sus2_model.train.data import structure_hash

from ..documents import BindingSiteDocument, ModelDocument, MofDocument, MofScreeningDocument, Provenance, \
    ScreeningFailureDocument, WidomDocument, atoms_to_dict
from ..errors import ScreeningError
from ..hashing import content_key
from ..spec import MofTarget
from ..steps import mof
from ..steps.dispersion import DispersedInsertion, LocalDispersion, with_dispersion
from ..steps.frameworks import framework_problems
from ..steps.pores import pore_map, without_pockets, without_probe_pockets
from ..steps.targets import Target
from ..steps.widom import EV_TO_KJ_MOL, HISTOGRAM_EDGES, WidomResult, WidomSettings, framework_density, widom
from ..steps.zeopp import probe_nodes
from .cache import Workspace
from .screening import eos_targets, model_calculator

WIDOM_KEYS = ("temperature", "min_trials", "max_trials", "rtol", "max_binding_ev", "seed")
SITE_KEYS = ("dispersion", "binding_sites", "relax_framework", "block_pockets", "probe_radius")


def _sites(found: list[mof.BindingSite]) -> list[BindingSiteDocument]:
    return [BindingSiteDocument(rank=s.rank, binding_energy=s.binding_energy,
                                binding_energy_kj_mol=s.binding_energy * EV_TO_KJ_MOL, closest_atom=s.closest_atom,
                                closest_distance=s.closest_distance, insertion_energy=s.insertion_energy,
                                structure_hash=structure_hash(s.atoms)) for s in found]


def _widom(result: WidomResult) -> WidomDocument:
    return WidomDocument(
        temperature=result.temperature, n_trials=result.n_trials, n_overlap=result.n_overlap,
        n_blocked=result.n_blocked, n_evaluated=result.n_evaluated, henry=result.henry,
        henry_error=result.henry_error, enthalpy_kj_mol=result.enthalpy_kj_mol,
        enthalpy_error=result.enthalpy_error, converged=result.converged, wall_s=result.wall_s,
        open_fraction=result.open_fraction, pocket_fraction=result.pocket_fraction,
        histogram_edges=HISTOGRAM_EDGES.tolist(), histogram=result.histogram,
        lowest_energy=float(result.lowest_energies[0]))


def screen_framework(target: Target, guest: Atoms, spec: MofTarget, model: ModelDocument, calculator: Sus2Calculator,
                     progress: bool = False) -> MofDocument:
    """One framework and one guest (:func:`steps.mof.guest_molecule`) with ``model`` (``calculator``: its ASE
    calculator): Widom with the local update, then the binding sites, and with ``dispersion: d3`` both again
    with D3(BJ); :class:`ScreeningError` (or the model's own
    error, naming the structure) where it cannot be screened."""
    potential = calculator.model
    name = f"{target.name}+{guest.info['guest']}"
    framework = mof.framework_supercell(target.atoms, potential.r_cut, guest)
    energy = LocalInsertion(potential, framework, guest, task=model.task, name=target.name)
    settings = WidomSettings(**spec.model_dump(include=set(WIDOM_KEYS)))
    pores = pore_map(energy.images, guest_shape(guest))  # the model's contact rule, for D3 too
    pores = without_pockets(pores) if spec.block_pockets else pores
    if spec.probe_radius is not None:
        pores = without_probe_pockets(pores, *probe_nodes(framework, spec.probe_radius, target.name))
    result = widom(energy, framework, guest, settings, name=name, progress=progress, pores=pores)
    sites, rejected = mof.binding_sites(framework, guest, result.lowest_positions, result.lowest_energies,
                                        calculator, spec.binding_sites, spec.relax_framework, name)
    result_d3: WidomResult | None = None
    sites_d3: list[mof.BindingSite] = []
    if spec.dispersion == "d3":
        with_d3 = DispersedInsertion(energy, LocalDispersion(framework, guest, name=target.name))
        result_d3 = widom(with_d3, framework, guest, settings, name=f"{name} (D3)", progress=progress, pores=pores)
        sites_d3, rejected_d3 = mof.binding_sites(framework, guest, result_d3.lowest_positions,
                                                  result_d3.lowest_energies, with_dispersion(calculator),
                                                  spec.binding_sites, spec.relax_framework, f"{name} (D3)")
        rejected += rejected_d3
    framework_hash = structure_hash(target.atoms)
    numbers = [f"{r.henry:.6e}" for r in (result, result_d3) if r] + [[round(s.binding_energy, 6)
                                                                      for s in sites + sites_d3]]
    inputs = spec.model_dump(include=set(WIDOM_KEYS) | set(SITE_KEYS))
    return MofDocument(
        result_hash=content_key(model.model_hash, framework_hash, structure_hash(guest), inputs, numbers),
        name=name, framework=target.name, guest=guest.info["guest"], model_hash=model.model_hash,
        framework_hash=framework_hash, supercell=framework.info["supercell"], n_framework_atoms=len(framework),
        density=framework_density(framework), settings=inputs, widom=_widom(result),
        widom_d3=_widom(result_d3) if result_d3 else None, sites=_sites(sites),
        sites_d3=_sites(sites_d3), rejected_sites=rejected,
        structures=[atoms_to_dict(s[0].atoms) for s in (sites, sites_d3) if s],
        provenance=Provenance(inputs={"model_hash": model.model_hash, "framework_hash": framework_hash,
                                      "settings": inputs, "vdw_contact": mof.contact_rule()}))


def screen_mof(model: ModelDocument, targets: Sequence[MofTarget], ws: Workspace,
               progress: bool = False) -> MofScreeningDocument:
    """Gas adsorption in every framework of ``targets`` for each guest, with ``model``; results cached in ``ws``."""
    results, failures = [], []
    calculator: Sus2Calculator | None = None

    def failure(name: str, error: str) -> None:
        failures.append(ScreeningFailureDocument(name=name, screen="mof", model_hash=model.model_hash,
                                                 error=(error if error.startswith(name) else f"{name}: {error}")[:500]))

    for spec in targets:
        for target in eos_targets([spec.framework]):
            if target.atoms is None:
                failure(target.name, target.error or "unreadable")
                continue
            if spec.check_framework and (problems := framework_problems(target.atoms)):
                failure(target.name, "; ".join(problems) + " (check_framework: false screens it as it is)")
                continue
            for name in spec.guests:
                try:
                    guest = mof.guest_molecule(name)
                except ScreeningError as exc:
                    failure(f"{target.name}+{name}", str(exc))
                    continue
                key = content_key(model.model_hash, model.task, structure_hash(target.atoms), structure_hash(guest),
                                  spec.model_dump(include=set(WIDOM_KEYS) | set(SITE_KEYS)), mof.contact_rule())
                hit = ws.cache.get("mof", key)
                if hit is None:
                    calculator = calculator or model_calculator(model)
                    try:
                        hit = screen_framework(target, guest, spec, model, calculator, progress).model_dump(mode="json")
                    except (ScreeningError, Sus2ModelError) as exc:
                        failure(f"{target.name}+{name}", str(exc))
                        continue
                    ws.cache.put("mof", key, hit)
                results.append(MofDocument.model_validate(hit))
    return MofScreeningDocument(results=results, failures=failures)
