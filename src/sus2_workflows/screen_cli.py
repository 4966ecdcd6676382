"""``sus2 screen``: screens without a campaign, for users and scripts — one record per structure (``eos``), per
surface/adsorbate pair (``adsorption``) or per framework and guest (``mof``), computed by the same engine-neutral
stages a campaign runs."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any, Sequence

from rich.console import Console

from .documents import AdsorptionDocument, EosDocument, MofDocument, ScreeningFailureDocument, WidomDocument, \
    success_summary
from .errors import Sus2WorkflowError


def eos_record(document: EosDocument | ScreeningFailureDocument) -> dict:
    """What ``sus2 screen eos`` prints for one structure: its name and numbers, or the error that stopped it."""
    if isinstance(document, ScreeningFailureDocument):
        return {"file": document.name, "error": document.error}
    return {"file": document.name, "formula": document.formula, "v0_a3_atom": document.v0,
            "b0_gpa": document.b0_gpa, "b1": document.b1,
            "volume_range": [min(document.volumes), max(document.volumes)],
            "rms_residual_mev": document.rms_residual_mev, "vinet": document.other_fits.get("vinet")}


def adsorption_record(document: AdsorptionDocument | ScreeningFailureDocument) -> dict:
    """What ``sus2 screen adsorption`` prints for one surface/adsorbate pair: its ranked minima (site, adsorption
    energy in eV), the placements tried and rejected, or the error that stopped it."""
    if isinstance(document, ScreeningFailureDocument):
        return {"pair": document.name, "error": document.error}
    dft = document.dft
    return {"pair": document.name, "bulk": document.bulk, "best_site": document.minima[0].site,
            "adsorption_energy_ev": document.minima[0].adsorption_energy,
            "minima": [{"site": m.site, "adsorption_energy_ev": m.adsorption_energy, "placements": len(m.placements),
                        "labeler_adsorption_energy_ev": m.dft_adsorption_energy} for m in document.minima],
            "n_placements": document.n_placements, "rejected": document.rejected,
            "gas_references": document.references["molecules"], "references_by": document.references["method"],
            "labeler_mae_ev": dft.mae if dft else None, "success": dft.success if dft else None,
            "success_at": dft.success_at if dft else {}}


def mof_record(document: MofDocument | ScreeningFailureDocument) -> dict:
    """What ``sus2 screen mof`` prints for one framework and guest: the binding energy (eV), the Henry coefficient
    and Q_st with their standard errors, the insertion counts, or the error that stopped it."""
    if isinstance(document, ScreeningFailureDocument):
        return {"framework": document.name, "error": document.error}
    w = document.widom
    best = lambda sites: sites[0].binding_energy if sites else None  # noqa: E731
    return {"framework": document.framework, "guest": document.guest, "binding_energy_ev": best(document.sites),
            "binding_energy_d3_ev": best(document.sites_d3),
            "site": document.sites[0].closest_atom if document.sites else None,
            "henry_mol_kg_pa": w.henry, "henry_error": w.henry_error, "qst_kj_mol": -w.enthalpy_kj_mol,
            "qst_error": w.enthalpy_error, "temperature_k": w.temperature, "insertions": w.n_trials,
            "evaluated": w.n_evaluated, "overlap_rejected": w.n_overlap, "converged": w.converged,
            "open_fraction": w.open_fraction, "blocked_fraction": w.pocket_fraction,
            "supercell": document.supercell, **_widom_d3(document.widom_d3)}


def _widom_d3(w: WidomDocument | None) -> dict:
    """The Widom figures with D3(BJ) added, or nothing where dispersion was not asked for."""
    if w is None:
        return {}
    return {"henry_d3_mol_kg_pa": w.henry, "henry_d3_error": w.henry_error, "qst_d3_kj_mol": -w.enthalpy_kj_mol,
            "qst_d3_error": w.enthalpy_error, "converged_d3": w.converged}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sus2 screen", description="screens without a campaign")
    sub = parser.add_subparsers(dest="screen", required=True)
    eos = sub.add_parser("eos", help="relax, E(V) on a ±6 %% grid, Birch-Murnaghan and Vinet fits")
    adsorption = sub.add_parser("adsorption", help="slabs of a bulk crystal, adsorbates placed (sites + random), "
                                                   "relaxed, filtered and ranked by adsorption energy")
    mof = sub.add_parser("mof", help="Widom insertions of a guest in frameworks (Henry coefficient, Q_st) and the "
                                     "relaxed binding sites")
    for command in (eos, adsorption, mof):
        command.add_argument("files", nargs="+", help="structure files or folders (CIF, POSCAR, extxyz, xsf, "
                                                      "pymatgen JSON)" + {adsorption: ": bulk crystals",
                                                                          mof: ": frameworks"}.get(command, ""))
        command.add_argument("--model", required=True, help="a SUS2 model: .mtp or native .pt")
        command.add_argument("--species", help="elements of the model's types (list, 'A,B' or a file)")
        command.add_argument("--task", help="the task of a multi-task model whose surface screens")
        command.add_argument("--json", action="store_true", help="one JSON record per line")
    adsorption.add_argument("--miller", action="append", help="Miller indices, e.g. --miller 111 --miller 1-10 "
                                                              "(repeatable; default 111)")
    adsorption.add_argument("--adsorbate", nargs="+", default=["O"], help="library names (H, O, N, OH, CO, H2O) or "
                                                                         "molecule files (default O)")
    adsorption.add_argument("--random-placements", type=int, default=4)
    adsorption.add_argument("--labeler", metavar="MODULE:CALLABLE", help="an ASE calculator (e.g. "
                            "ase.calculators.emt:EMT) for the gas references and the single points on the best k")
    adsorption.add_argument("--dft-top-k", type=int, default=0, help="single points on the k lowest minima (and on "
                                                                      "all minima, for the success metric)")
    mof.add_argument("--guest", nargs="+", default=["CO2"], help="g2 molecules (CO2, H2O, N2, CH4, H2) or molecule "
                                                                 "files (default CO2)")
    mof.add_argument("--temperature", type=float, default=298.0, help="K (default 298)")
    mof.add_argument("--dispersion", choices=["none", "d3"], default="none", help="d3: Widom and binding energies also "
                                                                                  "D3(BJ)")
    mof.add_argument("--binding-sites", type=int, default=3)
    mof.add_argument("--min-trials", type=int, default=20_000)
    mof.add_argument("--max-trials", type=int, default=500_000)
    mof.add_argument("--rtol", type=float, default=0.05, help="target relative error of the Henry coefficient")
    mof.add_argument("--seed", type=int, default=0)
    mof.add_argument("--probe-radius", type=float, help="Å: also block the pockets a probe sphere this size cannot "
                                                        "reach (Zeo++), e.g. 1.65 for CO2")
    mof.add_argument("--no-checks", action="store_true", help="screen frameworks the mofchecker-style checks refuse")
    return parser


def _mof_documents(args: argparse.Namespace, model: Any) -> list[MofDocument | ScreeningFailureDocument]:
    from .campaign import MemoryCache, Workspace
    from .campaign.mof import screen_mof
    from .spec import EosTarget, MofTarget

    documents: list[MofDocument | ScreeningFailureDocument] = []
    with tempfile.TemporaryDirectory(prefix="sus2-screen-") as folder:
        ws = Workspace(Path(folder), MemoryCache())
        for path in args.files:
            target = MofTarget(framework=EosTarget(path=path), guests=args.guest, temperature=args.temperature,
                               dispersion=args.dispersion, binding_sites=args.binding_sites,
                               min_trials=args.min_trials, max_trials=args.max_trials, rtol=args.rtol, seed=args.seed,
                               probe_radius=args.probe_radius, check_framework=not args.no_checks)
            screened = screen_mof(model, [target], ws, progress=True)
            documents += screened.results + screened.failures
    return documents


def _miller(text: str) -> tuple[int, int, int]:
    """Miller indices from '111', '1-10', '1,1,0' or '1 -1 0'."""
    import re

    digits = re.split(r"[,\s]+", text.strip()) if re.search(r"[,\s]", text.strip()) else re.findall(r"-?\d", text)
    if len(digits) != 3 or not all(re.fullmatch(r"-?\d+", d) for d in digits):
        raise Sus2WorkflowError(f"--miller {text}: give three indices, e.g. 111, 1-10 or 1,1,0")
    return tuple(int(d) for d in digits)


def _adsorption_documents(args: argparse.Namespace, model: Any) -> list[AdsorptionDocument | ScreeningFailureDocument]:
    from .campaign import MemoryCache, Workspace, screen_adsorption
    from .spec import AdsorptionTarget, EosTarget

    labeler = None
    if args.labeler:
        from .labelers import make_labeler

        module, _, name = args.labeler.partition(":")
        labeler = make_labeler({"type": "ase", "module": module, "callable": name})
    elif args.dft_top_k:
        raise Sus2WorkflowError("--dft-top-k needs a --labeler")
    target = {"miller": [_miller(m) for m in args.miller or ["111"]], "adsorbates": args.adsorbate,
              "random_placements": args.random_placements, "dft_top_k": args.dft_top_k,
              "references": "labeler" if labeler else "model"}
    documents: list[AdsorptionDocument | ScreeningFailureDocument] = []
    with tempfile.TemporaryDirectory(prefix="sus2-screen-") as folder:
        ws = Workspace(Path(folder), MemoryCache())
        for path in _progress(args.files, "adsorption"):
            screened = screen_adsorption(model, [AdsorptionTarget(bulk=EosTarget(path=path), **target)], labeler, ws)
            documents += screened.results + screened.failures
    return documents


def _progress(items: Sequence, what: str):
    from rich.progress import track

    return track(items, description=what, console=Console(stderr=True), transient=True)


def screen_main(argv: Sequence[str]) -> int:
    """``sus2 screen eos|adsorption|mof FILE... --model MODEL``: one record per structure, surface/adsorbate pair or
    framework and guest;
    exit 1 when every one failed, 2 when nothing could be screened."""
    args = _parser().parse_args(argv)
    from sus2_model.species import parse_species

    from .campaign.screening import eos_document, named_model
    from .spec import ScreeningModelSpec
    from .steps.targets import read_targets

    try:
        model = named_model(ScreeningModelSpec(path=args.model, species=parse_species(args.species), task=args.task))
        if args.screen == "eos":
            from .campaign.screening import model_calculator

            from .steps.eos import relax_all

            targets = read_targets(args.files)
            calculator = model_calculator(model) if targets else None
            readable = [t for t in targets if t.atoms is not None]
            relaxed = dict(zip(map(id, readable), relax_all([t.atoms for t in readable], calculator, progress=True)))
            records = [eos_record(eos_document(t, calculator, model.model_hash, relaxed=relaxed.get(id(t))))
                       for t in _progress(targets, "EOS")]
        elif args.screen == "mof":
            records = [mof_record(d) for d in _mof_documents(args, model)]
        else:
            records = [adsorption_record(d) for d in _adsorption_documents(args, model)]
    except (Sus2WorkflowError, ValueError, OSError) as exc:
        print(f"sus2 screen {args.screen}: error: {exc}", file=sys.stderr)
        return 2
    if not records:
        print(f"sus2 screen {args.screen}: error: no structure to screen", file=sys.stderr)
        return 2
    for record in records:
        print(json.dumps(record) if args.json else _line(record))
    return 1 if all("error" in r for r in records) else 0


def _line(record: dict) -> str:
    """One record as a line of text."""
    name = record.get("file") or record.get("pair") or record["framework"]
    if "error" in record:
        return f"{name}: failed: {record['error']}"
    if "guest" in record:
        energy = lambda e: "-" if e is None else f"{e:.3f} eV"  # noqa: E731
        return (f"{name}+{record['guest']}: binding {energy(record['binding_energy_ev'])}"
                + (f" (D3 {energy(record['binding_energy_d3_ev'])})" if record["binding_energy_d3_ev"] is not None
                   else "") + f" at {record['site']}  K_H {record['henry_mol_kg_pa']:.3e} ± "
                f"{record['henry_error']:.1e} mol/kg/Pa  Q_st {record['qst_kj_mol']:.1f} ± {record['qst_error']:.1f} "
                f"kJ/mol at {record['temperature_k']:g} K  ({record['insertions']} insertions, "
                f"{record['overlap_rejected']} overlapping, {record['evaluated']} evaluated"
                + ("" if record["converged"] else ", NOT converged") + ")"
                + (f"  with D3: K_H {record['henry_d3_mol_kg_pa']:.3e} ± {record['henry_d3_error']:.1e}  Q_st "
                   f"{record['qst_d3_kj_mol']:.1f} ± {record['qst_d3_error']:.1f} kJ/mol"
                   + ("" if record["converged_d3"] else " (NOT converged)") if "qst_d3_kj_mol" in record else ""))
    if "pair" in record:
        minima = ", ".join(f"{m['site']} {m['adsorption_energy_ev']:.3f}" + (
            f" ({m['labeler_adsorption_energy_ev']:.3f})" if m["labeler_adsorption_energy_ev"] is not None else "")
            for m in record["minima"])
        checked = f"  labeler MAE {record['labeler_mae_ev']:.3f} eV, {success_summary(record) or 'no success metric'}" \
            if record["labeler_mae_ev"] is not None else ""
        return (f"{name}: E_ads (eV) {minima}  ({record['n_placements']} placements, {len(record['rejected'])} "
                f"rejected){checked}")
    return (f"{name}: {record['formula']} V0 {record['v0_a3_atom']:.3f} Å³/atom  B0 {record['b0_gpa']:.1f} GPa  "
            f"B1 {record['b1']:.2f}  grid {record['volume_range'][0]:.2f}-{record['volume_range'][1]:.2f}  "
            f"rms {record['rms_residual_mev']:.2f} meV/atom")
