"""Campaign report: ``report.md`` and ``report.html`` with the latest run's screens (E(V) plots with the reference,
V0/B0 parity, adsorption rankings with the labeler's checks), the data and model summary, active-learning history
and failed DFT runs, plus ``export.json`` (every result with its provenance chain)."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from sus2_model.io.atomic import atomic_write

from .documents import success_summary
from .plots import adsorption_plot, eos_plot, insertion_plot, parity_plot
from .provenance import campaign_documents, provenance_chains, status_of


WORSE = 0.1  # a validation force error this much above the previous model's is marked in the history


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + \
           ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]


def latest_result(docs: dict[str, list[dict[str, Any]]]) -> dict[str, Any] | None:
    """The campaign result (screening documents included) of the latest finished run, or None."""
    return max(docs.get("result", []), key=lambda r: r.get("finished", 0), default=None)


def _number(value: float | None, digits: int, sign: bool = False) -> str:
    return "-" if value is None else f"{value:{'+' if sign else ''}.{digits}f}"


def _eos_section(folder: Path, results: list[dict[str, Any]]) -> list[str]:
    """The EOS table (and the reference's numbers beside the model's), one E(V) plot each, the V0/B0 parity."""
    lines = ["", "## Equations of state", ""]
    rows = []
    for k, eos in enumerate(results):
        ref = eos.get("reference") or {}
        eos_plot(eos, folder / f"eos_{k}.png")
        rows.append([f"{eos['formula']} {eos.get('prototype') or eos['name']}", f"{eos['v0']:.3f}",
                     f"{eos['b0_gpa']:.1f}", f"{eos['b1']:.2f}", _number(ref.get("v0"), 3),
                     _number(ref.get("b0_gpa"), 1), _number(ref.get("b1"), 2),
                     _number(ref.get("v0_error_percent"), 2, True), _number(ref.get("b0_error_percent"), 1, True),
                     _number(ref.get("nu"), 2), _number(ref.get("epsilon"), 3), f"![EOS](eos_{k}.png)"])
    lines += _table(["structure", "V0 (Å³/atom)", "B0 (GPa)", "B1", "ref V0", "ref B0", "ref B1", "ΔV0 %", "ΔB0 %",
                     "ν", "ε", "plot"], rows)
    failed = [f"- {e['name']}: reference: {e['reference']['error'][:200]}" for e in results
              if (e.get("reference") or {}).get("error")]
    if failed:
        lines += ["", "Reference equations of state that could not be computed:", ""] + failed
    beyond = [f"- {e['name']}: {e['extrapolation']}" for e in results if e.get("extrapolation")]
    if beyond:
        lines += ["", "Grids beyond the campaign's training volumes (the model extrapolates; label those volumes):",
                  ""] + beyond
    if parity_plot(results, folder / "eos_parity.png"):
        lines += ["", "V0 and B0 against the reference:", "", "![parity](eos_parity.png)"]
    return lines


def _adsorption_section(folder: Path, results: list[dict[str, Any]]) -> list[str]:
    """Per surface/adsorbate pair: the ranked minima with the labeler's checks, the success metric, a plot."""
    if not results:
        return []
    lines = ["", "## Surface adsorption", ""]
    for k, result in enumerate(results):
        dft = result.get("dft") or {}
        adsorption_plot(result, folder / f"adsorption_{k}.png")
        summary = f"{result['n_placements']} placements, {len(result['rejected'])} rejected; gas references by " \
                  f"{result['references']['method']}"
        if dft:
            summary += f"; {dft['labeler']} on {dft['n_checked']} minima: MAE {_number(dft.get('mae'), 3)} eV, " \
                       f"{success_summary(dft) or 'no success metric (not every minimum checked, or one minimum)'}"
        lines += ["", f"### {result['name']}", "", summary, ""]
        lines += _table(["rank", "site", "E_ads SUS2 (eV)", f"E_ads {dft.get('labeler', 'labeler')} (eV)",
                         "placements"],
                        [[m["rank"], m["site"], f"{m['adsorption_energy']:.3f}",
                          _number(m.get("dft_adsorption_energy"), 3), len(m["placements"])]
                         for m in result["minima"]])
        lines += ["", f"![adsorption](adsorption_{k}.png)"]
    return lines


def _mof_section(folder: Path, results: list[dict[str, Any]]) -> list[str]:
    """Per framework and guest: binding energies, the Henry coefficient and Q_st with errors (Q_st with D3 where
    asked), the insertions' plot."""
    if not results:
        return []
    best = lambda sites: f"{sites[0]['binding_energy']:.3f}" if sites else "-"  # noqa: E731
    lines = ["", "## Gas adsorption in frameworks", ""]
    lines += _table(["framework", "guest", "E_bind SUS2 (eV)", "E_bind +D3 (eV)", "site", "K_H (mol/kg/Pa)",
                     "Q_st (kJ/mol)", "Q_st +D3 (kJ/mol)", "T (K)", "insertions (evaluated, overlapping)"],
                    [[r["framework"], r["guest"], best(r["sites"]), best(r.get("sites_d3", [])),
                      r["sites"][0]["closest_atom"] if r["sites"] else "-",
                      f"{r['widom']['henry']:.3e} ± {r['widom']['henry_error']:.1e}",
                      f"{-r['widom']['enthalpy_kj_mol']:.1f} ± {r['widom']['enthalpy_error']:.1f}",
                      f"{-r['widom_d3']['enthalpy_kj_mol']:.1f} ± {r['widom_d3']['enthalpy_error']:.1f}"
                      if r.get("widom_d3") else "-",
                      f"{r['widom']['temperature']:g}",
                      f"{r['widom']['n_trials']} ({r['widom']['n_evaluated']}, {r['widom']['n_overlap']})"
                      + ("" if r["widom"]["converged"] else " not converged")] for r in results])
    for k, result in enumerate(results):
        insertion_plot(result, folder / f"mof_{k}.png")
        lines += ["", f"![{result['name']}](mof_{k}.png)"]
    return lines


def report_markdown(folder: Path, docs: dict[str, list[dict[str, Any]]]) -> str:
    """The report of a campaign's cached documents as markdown (writes the PNG plots it links into ``folder``)."""
    lines = [f"# Campaign report: {folder.name}", "", "## Status", ""]
    lines += [f"- {kind}: {n}" for kind, n in status_of(docs).items()]
    result = latest_result(docs)
    if result and result.get("screening_model_hash") not in (None, result["model_hash"]):
        lines += ["", f"Screened with the model the spec names, {result['screening_model_hash'][:12]} (the campaign "
                      f"trained {result['model_hash'][:12]})."]
    lines += _eos_section(folder, result["eos"] if result else docs.get("eos", []))
    lines += _adsorption_section(folder, result["adsorption"] if result else [])
    lines += _mof_section(folder, result.get("mof", []) if result else [])
    curated = docs.get("curated", [])
    if curated:
        lines += ["", "## Imported datasets", ""]
        lines += _table(["task", "source", "read", "duplicates", "outliers", "train", "test"],
                        [[t["task"], Path(t["source"]).name, t["n_read"], t["n_duplicates"], t["n_outliers"],
                          t["n_train"], t["n_test"]] for c in curated for t in c["tasks"]])
    for bridge in docs.get("dbs", []):
        lines += ["", f"Domain-bridging set {bridge['dbs_hash'][:12]}: {len(bridge['picks'])} of {bridge['n_source']} "
                      f"structures ({bridge['method']}), relabelled by the campaign's labeler."]
    lines += ["", "## Models", ""]
    rows = []
    for model in docs.get("model", []):
        valid = next(iter(model["metrics"].values()), {}) if model["metrics"] else {}
        tests = "; ".join(f"{t}: {m['energy_mae_mev_atom']:.2f} meV/atom, {m['force_mae_ev_a']:.3f} eV/Å"
                          for t, m in model.get("test_metrics", {}).items())
        rows.append([model["model_hash"][:12], model["parameters"], model.get("task") or "shared",
                     f"{valid.get('energy_mae_mev_atom', float('nan')):.2f}", f"{valid.get('force_mae_ev_a', float('nan')):.3f}",
                     tests or "-"])
    lines += _table(["model", "parameters", "task", "train/valid E MAE (meV/atom)", "F MAE (eV/Å)",
                     "held-out imported data"], rows)
    screen_failures = result["failures"] if result else docs.get("eos_failed", [])
    if screen_failures:
        lines += ["", "## Targets the screens gave no result for", ""]
        lines += [f"- {f['name']} ({f['screen']}): {f['error'][:200]}" for f in screen_failures]
    failures = docs.get("label_failed", [])
    if failures:
        lines += ["", "## Failed reference calculations", ""] + [f"- {f['source']}: {f['error'][:160]}" for f in failures]
    lines += history_section(result)
    return "\n".join(lines) + "\n"


def history_section(result: dict[str, Any] | None) -> list[str]:
    """The latest run's active-learning history: per iteration what was explored and chosen, the accurate share and
    the explored model's errors on the validation set, then the final model's; a validation force error that grew
    by more than :data:`WORSE` is marked."""
    lines = ["", "## Active learning", ""]
    history = result.get("history", []) if result else []
    if not history:
        return lines + ["No active-learning iteration ran."]
    rows, previous = [], None
    steps = [(str(h["iteration"]), h) for h in history] + [("final model", {"validation": result.get("validation")})]
    for name, h in steps:
        valid = h.get("validation") or {}
        force = valid.get("force_mae_ev_a")
        worse = force is not None and previous is not None and force > previous * (1 + WORSE)
        previous = force if force is not None else previous
        rows.append([name, h.get("n_explored", "-"), h.get("n_selected", "-"), h.get("n_minima", "-"),
                     _number(h.get("max_uncertainty"), 3), _number(100 * h["accurate_fraction"], 1)
                     if h.get("accurate_fraction") is not None else "-",
                     _number(valid.get("energy_mae_mev_atom"), 2),
                     _number(force, 4) + (" (worse)" if worse else "")])
    uncertainty = "force deviation (eV/Å)" if history[0].get("uncertainty") == "committee" else "grade"
    lines += _table(["iteration", "frames explored", "selected", "of them minima", f"max {uncertainty}",
                     "accurate %", "validation E MAE (meV/atom)", "validation F MAE (eV/Å)"], rows)
    if not any((h.get("validation") for h in history)) and not result.get("validation"):
        lines += ["", "No validation set (active_learning.validation): nothing measures the models on held-out "
                      "structures."]
    return lines


def markdown_to_html(markdown: str, title: str) -> str:
    """The small markdown subset the report uses (headings, lists, tables, images) as a standalone HTML page."""
    body, in_table = [], False
    for line in markdown.splitlines():
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            if set("".join(cells)) <= set("-"):
                continue
            if not in_table:
                body.append("<table>")
                in_table, tag = True, "th"
            else:
                tag = "td"
            body.append("<tr>" + "".join(f"<{tag}>{_inline(c)}</{tag}>" for c in cells) + "</tr>")
            continue
        if in_table:
            body.append("</table>")
            in_table = False
        if line.startswith("#"):
            level = len(line) - len(line.lstrip("#"))
            body.append(f"<h{level}>{html.escape(line[level:].strip())}</h{level}>")
        elif line.startswith("- "):
            body.append(f"<li>{_inline(line[2:])}</li>")
        elif line.strip():
            body.append(f"<p>{_inline(line)}</p>")
    if in_table:
        body.append("</table>")
    style = "body{font-family:sans-serif;max-width:60em;margin:auto}table{border-collapse:collapse}" \
            "td,th{border:1px solid #ccc;padding:2px 6px}img{max-width:22em}"
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{style}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")


def _inline(text: str) -> str:
    if text.startswith("![") and "](" in text and text.endswith(")"):
        alt, src = text[2:-1].split("](", 1)
        return f"<img alt='{html.escape(alt)}' src='{html.escape(src)}'>"
    return html.escape(text)


def write_report(folder: str | Path, store_uri: str | None = None) -> Path:
    """Write ``report.md``, ``report.html`` (same content), the plots and ``export.json``; returns the markdown path."""
    folder = Path(folder)
    docs = campaign_documents(folder, store_uri)
    markdown = report_markdown(folder, docs)
    path = folder / "report.md"
    page = markdown_to_html(markdown, f"SUS2 campaign {folder.name}")
    export = json.dumps(provenance_chains(docs), indent=2, default=str)
    for name, text in (("report.md", markdown), ("report.html", page), ("export.json", export)):
        atomic_write(folder / name, lambda fh, text=text: fh.write(text))
    return path
