"""Campaign stage for surface adsorption: slabs of each bulk target (relaxed with the model), every adsorbate placed,
relaxed, filtered and ranked by adsorption energy with OC20-style gas references; then, optionally, the labeler's
single points on the best k minima and AdsorbML's success metric.  Slabs, screens and labels are cached, so a killed
run resumes; every surface and adsorbate gets a result or a named failure, and the rest of the screen goes on."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator
from ase.constraints import FixAtoms

from sus2_model import Sus2Calculator, Sus2ModelError
from sus2_model.train.data import structure_hash

from ..documents import AdsorptionDftDocument, AdsorptionDocument, AdsorptionMinimumDocument, \
    AdsorptionScreeningDocument, ModelDocument, Provenance, ScreeningFailureDocument, atoms_from_dict, atoms_to_dict
from ..errors import LabelingError, ScreeningError
from ..hashing import content_key
from ..spec import AdsorptionTarget
from ..steps import adsorption as ads
from ..steps.adsorbates import adsorbate, chemical_potentials, gas_molecule, molecules_for, reference_energy
from ..steps.eos import relax as relax_bulk
from ..steps.label import Labeler
from .cache import Workspace
from .labels import labeler_energies
from .screening import eos_targets, model_calculator

SUCCESS_THRESHOLD = 0.1  # eV: AdsorbML's success criterion
SLAB_SETTINGS = ("min_slab", "min_vacuum", "min_lateral", "fixed_layers")
SURFACE_SEED_RATTLE = 0.05  # Å: rattle of the slab and placement seeds a learning campaign labels


def _model_gas_energy(molecule: Atoms, calculator: Calculator) -> float:
    """A gas molecule's energy with the model, relaxed with it first."""
    try:
        relaxed, energy, converged = ads.relax_positions(molecule, calculator)
    except Sus2ModelError as exc:
        raise ScreeningError(f"gas reference {molecule.info['source']}: the model cannot relax it ({exc}); let the "
                             "labeler compute the gas references") from None
    if not converged:
        raise ScreeningError(f"gas reference {molecule.info['source']}: the relaxation did not converge")
    return energy


def gas_references(symbols: list[str], method: str, calculator: Calculator | None, labeler: Labeler | None,
                   ws: Workspace) -> dict[str, Any]:
    """The gas molecules' energies and the chemical potentials an adsorbate of ``symbols`` needs, computed by the
    model (relaxed) or by the labeler (single points on ASE's geometries)."""
    names = molecules_for(symbols)
    molecules = [gas_molecule(n) for n in names]
    if method == "model":
        energies = [_model_gas_energy(m, calculator) for m in molecules]
    else:
        if labeler is None:
            raise ScreeningError("gas references by the labeler: the screen has no labeler")
        energies, failed = labeler_energies(molecules, labeler, ws)
        if failed:
            raise ScreeningError(f"gas references: the labeler failed on {failed[0]['source']}: {failed[0]['error']}")
    gas = dict(zip(names, map(float, energies)))
    return {"method": method, "molecules": gas, "potentials": chemical_potentials(gas),
            "labeler_settings": labeler.settings() if method == "labeler" else None}


def target_slabs(bulk: Atoms, miller: tuple[int, int, int], target: AdsorptionTarget) -> list[Atoms]:
    """Every termination of ``bulk``'s ``miller`` surface with the target's slab settings."""
    return ads.make_slabs(bulk, miller, target.min_slab, target.min_vacuum, target.min_lateral, target.fixed_layers)


def target_slab_problems(target: AdsorptionTarget, cutoff: float) -> list[str]:
    """Why the slabs of ``target`` — cut from its bulk as given, before the model relaxes it — are too thin, or have
    too little vacuum, for a model of ``cutoff`` Å, or have no layer above the fixed ones: one message per slab and
    problem (bulk files that cannot be read are left to the screen to report)."""
    problems = []
    for bulk in eos_targets([target.bulk]):
        for miller in target.miller if bulk.atoms is not None else []:
            try:
                slabs = target_slabs(bulk.atoms, miller, target)
            except ScreeningError as exc:  # too few layers for the fixed ones
                problems.append(str(exc))
                continue
            problems += [f"{slab.info['surface']}: {p}" for slab in slabs for p in ads.slab_problems(slab, cutoff)]
    return problems


def _slab_record(slab: Atoms) -> dict[str, Any]:
    return {"atoms": atoms_to_dict(slab), "fixed": [int(i) for c in slab.constraints for i in c.index]}


def _slab_from(record: dict[str, Any]) -> Atoms:
    slab = atoms_from_dict(record["atoms"])
    slab.set_constraint(FixAtoms(indices=record["fixed"]))
    return slab


def screen_pair(slab: Atoms, molecule: Atoms, target: AdsorptionTarget, calculator: Calculator,
                labeler: Labeler | None, model_hash: str, bulk_name: str, ws: Workspace) -> AdsorptionDocument:
    """Relax the clean slab and every placement of ``molecule`` on it with the model, filter, merge and rank the
    minima by adsorption energy; :class:`ScreeningError` if no placement survives."""
    if isinstance(calculator, Sus2Calculator):
        unknown = set(slab.get_chemical_symbols() + molecule.get_chemical_symbols()) - set(calculator.model.species)
        if unknown:
            raise ScreeningError(f"the model does not know {', '.join(sorted(unknown))}")
        problems = ads.slab_problems(slab, calculator.model.r_cut)
        if problems:
            raise ScreeningError("; ".join(problems))
    clean, slab_energy, converged = ads.relax_positions(slab, calculator)
    if not converged:
        raise ScreeningError("the clean slab's relaxation did not converge")
    configurations, overlapping = ads.placements(clean, molecule, target.random_placements, target.seed)
    rejected = [{"placement": label, "reason": reason} for label, reason in overlapping]
    relaxed = []
    for configuration in configurations:
        try:
            final, energy, converged = ads.relax_positions(configuration, calculator)
        except Sus2ModelError as exc:  # e.g. atoms driven closer than the model's inner cutoff: this placement only
            rejected.append({"placement": configuration.info["placement"], "reason": "collapsed",
                             "detail": str(exc)[:200]})
            continue
        problem = "not converged" if not converged else ads.anomaly(configuration, final, len(slab))
        if problem is None:
            relaxed.append((final, energy))
        else:
            rejected.append({"placement": configuration.info["placement"], "reason": problem})
    if not relaxed:
        reasons = "; ".join(sorted({r["reason"] for r in rejected}))
        raise ScreeningError(f"all {len(configurations) + len(overlapping)} placements were rejected ({reasons})")
    references = gas_references(molecule.get_chemical_symbols(), target.references, calculator, labeler, ws)
    e_gas = reference_energy(molecule.get_chemical_symbols(), references["potentials"])
    found = ads.merge_minima(relaxed, len(slab))
    minima = [AdsorptionMinimumDocument(rank=k + 1, site=m.site, energy=m.energy,
                                        adsorption_energy=m.energy - slab_energy - e_gas, placements=m.placements,
                                        structure_hash=structure_hash(m.atoms)) for k, m in enumerate(found)]
    numbers = [(m.site, round(m.adsorption_energy, 6)) for m in minima]
    slab_hash, molecule_hash = structure_hash(slab), structure_hash(molecule)
    return AdsorptionDocument(
        result_hash=content_key(model_hash, slab_hash, molecule_hash, numbers, references["molecules"]),
        name=f"{slab.info['surface']}+{molecule.info['adsorbate']}", surface=slab.info["surface"],
        adsorbate=molecule.info["adsorbate"], bulk=bulk_name, model_hash=model_hash, slab_hash=slab_hash,
        slab_energy=slab_energy, n_slab_atoms=len(slab), references=references,
        n_placements=len(configurations) + len(overlapping), minima=minima, rejected=rejected,
        structures=[atoms_to_dict(clean)] + [atoms_to_dict(m.atoms) for m in found],
        provenance=Provenance(inputs={"model_hash": model_hash, "adsorbate_hash": molecule_hash,
                                      "settings": ads.SETTINGS}))


def check_with_labeler(document: AdsorptionDocument, target: AdsorptionTarget, labeler: Labeler,
                       ws: Workspace) -> AdsorptionDocument:
    """The labeler's single points on the relaxed clean slab, the gas molecules and the ``dft_top_k`` lowest minima
    (every minimum with ``dft_all_minima``), the DFT adsorption energies beside the model's, and AdsorbML's success:
    the best DFT energy among the model's k lowest is within :data:`SUCCESS_THRESHOLD` of the best of all (reported
    only where there are more than k minima), at ``dft_top_k`` and at every k below the number of minima."""
    k = target.dft_top_k
    checked = document.minima if target.dft_all_minima else document.minima[:k]
    structures = [atoms_from_dict(d) for d in document.structures[:1 + len(checked)]]
    symbols = atoms_from_dict(document.structures[1]).get_chemical_symbols()[document.n_slab_atoms:]
    names = molecules_for(symbols)
    energies, failed = labeler_energies(structures + [gas_molecule(n) for n in names], labeler, ws)
    slab_energy, gas = energies[0], dict(zip(names, energies[1 + len(checked):]))
    minima = [m.model_copy() for m in document.minima]
    if slab_energy is not None and None not in gas.values():
        e_gas = reference_energy(symbols, chemical_potentials(gas))
        for minimum, energy in zip(minima, energies[1:1 + len(checked)]):
            if energy is not None:
                minimum.dft_energy, minimum.dft_adsorption_energy = energy, energy - slab_energy - e_gas
    done = [m for m in minima if m.dft_adsorption_energy is not None]
    complete = target.dft_all_minima and len(done) == len(minima)  # the reference: every minimum checked
    best = min(done, key=lambda m: m.dft_adsorption_energy) if done else None
    # with k minima or fewer the k picks hold them all: success would be true by construction
    curve = {n: min(m.dft_adsorption_energy for m in done if m.rank <= n) <= best.dft_adsorption_energy +
             SUCCESS_THRESHOLD for n in range(1, len(minima))} if complete else {}
    dft = AdsorptionDftDocument(
        labeler=labeler.name, labeler_settings=labeler.settings(), k=k, n_checked=len(done), slab_energy=slab_energy,
        gas_energies={n: e for n, e in gas.items() if e is not None},
        mae=float(np.mean([abs(m.adsorption_energy - m.dft_adsorption_energy) for m in done])) if done else None,
        threshold=SUCCESS_THRESHOLD, best_dft_rank=best.rank if complete else None, success=curve.get(k),
        success_at=curve, failed=failed)
    return document.model_copy(update={"minima": minima, "dft": dft})


def screen_adsorption(model: ModelDocument, targets: Sequence[AdsorptionTarget], labeler: Labeler | None,
                      ws: Workspace) -> AdsorptionScreeningDocument:
    """Adsorption screens of every target's surfaces and adsorbates with ``model`` (on its task's surface), each
    result cached by model, slab, adsorbate and settings; then the labeler's checks where the target asks for them."""
    calculator: Calculator | None = None
    results, failures = [], []

    def failure(name: str, error: str) -> None:
        failures.append(ScreeningFailureDocument(name=name, screen="adsorption", model_hash=model.model_hash,
                                                 error=f"{name}: {error}"[:500]))

    for target in targets:
        molecules = []
        for name in target.adsorbates:
            try:
                molecules.append(adsorbate(name))
            except ScreeningError as exc:
                failure(name, str(exc))
        for bulk in eos_targets([target.bulk]):
            if bulk.atoms is None:
                failures.append(ScreeningFailureDocument(name=bulk.name, screen="adsorption",
                                                         model_hash=model.model_hash, error=bulk.error))
                continue
            for miller in target.miller:
                where = f"{bulk.name}({''.join(map(str, miller))})"
                key = content_key(model.model_hash, model.task, structure_hash(bulk.atoms), miller,
                                  target.model_dump(include=set(SLAB_SETTINGS)))
                hit = ws.cache.get("slabs", key)
                if hit is None:
                    calculator = calculator or model_calculator(model)
                    try:
                        relaxed = relax_bulk(bulk.atoms, calculator)
                        hit = {"slabs": [_slab_record(s) for s in target_slabs(relaxed, miller, target)]}
                    except (ScreeningError, Sus2ModelError) as exc:
                        failure(where, str(exc))
                        continue
                    ws.cache.put("slabs", key, hit)
                for slab in map(_slab_from, hit["slabs"]):
                    for molecule in molecules:
                        name = f"{slab.info['surface']}+{molecule.info['adsorbate']}"
                        settings = target.model_dump(include={"random_placements", "seed", "references"})
                        key = content_key(model.model_hash, model.task, structure_hash(slab),
                                          structure_hash(molecule), ads.SETTINGS, settings,
                                          labeler.settings() if target.references == "labeler" else None)
                        document = ws.cache.get("adsorption", key)
                        if document is None:
                            calculator = calculator or model_calculator(model)
                            try:
                                document = screen_pair(slab, molecule, target, calculator, labeler, model.model_hash,
                                                       bulk.name, ws).model_dump(mode="json")
                            except (ScreeningError, Sus2ModelError) as exc:
                                failure(name, str(exc))
                                continue
                            ws.cache.put("adsorption", key, document)
                        result = AdsorptionDocument.model_validate(document)
                        if target.dft_top_k and labeler is not None:
                            try:
                                result = check_with_labeler(result, target, labeler, ws)
                            except LabelingError as exc:  # e.g. an engine-run labeler: the model's result stands
                                failure(name, f"the labeler's check: {exc}")
                        results.append(result)
    return AdsorptionScreeningDocument(results=results, failures=failures)


def surface_seeds(target: AdsorptionTarget) -> list[Atoms]:
    """What a campaign that learns ``target``'s surfaces labels first: each clean slab (of the bulk as given), every
    adsorbate on its heuristic sites, and each of those pressed onto the surface (:func:`~..steps.adsorption.pressed`),
    rattled, named ``seed:surface:<surface+adsorbate>:<n>``, with the slab's size and fixed layers in their ``info``
    (``n_slab``, ``fixed_layers``) for the model's relaxations in active learning.

    The pressed placements are there because relaxations descend: in a Quantum ESPRESSO Cu(111)+O campaign seeded
    without them, three active-learning iterations did not teach the model the O-Cu repulsion, and every one of its
    relaxations collapsed, desorbed or disrupted the surface."""
    rng = np.random.default_rng(target.seed)
    seeds: list[Atoms] = []
    for bulk in eos_targets([target.bulk]):
        if bulk.atoms is None:
            continue  # the screen reports it
        for miller in target.miller:
            for slab in target_slabs(bulk.atoms, miller, target):
                group = [slab]
                for name in target.adsorbates:
                    placed = ads.placements(slab, adsorbate(name), 0, target.seed)[0]
                    group += placed + [p for p in (ads.pressed(a, len(slab)) for a in placed) if p is not None]
                for k, atoms in enumerate(group):
                    atoms = atoms.copy()
                    atoms.set_constraint()
                    atoms.positions += rng.normal(0.0, SURFACE_SEED_RATTLE, atoms.positions.shape)
                    atoms.info = {"source": f"seed:surface:{slab.info['surface']}:{k}", "n_slab": len(slab),
                                  "fixed_layers": target.fixed_layers}
                    seeds.append(atoms)
    return seeds
