"""Campaign report: ``report.md`` and ``report.html`` with E(V) plots, the data and model summary, active-learning
history and failed DFT runs, plus ``export.json`` (every result with its provenance chain)."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from sus2_model.io.atomic import atomic_path, atomic_write

from .provenance import campaign_documents, provenance_chains, status_of


def _eos_plot(eos: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from ase import units

    from .steps.eos import birch_murnaghan

    v = np.linspace(min(eos["volumes"]), max(eos["volumes"]), 100)
    fig, ax = plt.subplots(figsize=(4.5, 3.5))
    ax.plot(eos["volumes"], eos["energies"], "o", label="SUS2")
    ax.plot(v, birch_murnaghan(v, eos["e0"], eos["v0"], eos["b0_gpa"] * units.GPa, eos["b1"]), "-",
            label="Birch-Murnaghan")
    title = f"{eos['formula']} {eos.get('prototype') or eos['name']}"
    ax.set(xlabel="volume (Å³/atom)", ylabel="energy (eV/atom)", title=title)
    ax.legend()
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120)
    plt.close(fig)


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + \
           ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]


def report_markdown(folder: Path, docs: dict[str, list[dict[str, Any]]]) -> str:
    """The report of a campaign's cached documents as markdown (writes the PNG plots it links into ``folder``)."""
    lines = [f"# Campaign report: {folder.name}", "", "## Status", ""]
    lines += [f"- {kind}: {n}" for kind, n in status_of(docs).items()]
    lines += ["", "## Equations of state (SUS2)", ""]
    rows = []
    for k, eos in enumerate(docs.get("eos", [])):
        rows.append([f"{eos['formula']} {eos.get('prototype') or eos['name']}", f"{eos['v0']:.3f}", f"{eos['e0']:.4f}",
                     f"{eos['b0_gpa']:.1f}", f"{eos['b1']:.2f}", f"![EOS](eos_{k}.png)"])
        _eos_plot(eos, folder / f"eos_{k}.png")
    lines += _table(["structure", "V0 (Å³/atom)", "E0 (eV/atom)", "B0 (GPa)", "B1", "plot"], rows)
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
    screen_failures = docs.get("eos_failed", [])
    if screen_failures:
        lines += ["", "## Structures the screen gave no result for", ""]
        lines += [f"- {f['name']}: {f['error'][:200]}" for f in screen_failures]
    failures = docs.get("label_failed", [])
    if failures:
        lines += ["", "## Failed reference calculations", ""] + [f"- {f['source']}: {f['error'][:160]}" for f in failures]
    lines += ["", "## Active learning", ""]
    lines += _table(["iteration", "frames explored", "selected", "max grade"],
                    [[r["iteration"], r["n_explored"], len(r["selected_hashes"]), f"{max(r['grades'], default=0):.2f}"]
                     for r in sorted(docs.get("active_learning", []),
                                     key=lambda r: r["iteration"])])
    return "\n".join(lines) + "\n"


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
