"""Campaign status, provenance export and a markdown report with plots, read from the campaign's result cache."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .cache import cache_store


def _documents(folder: str | Path, store_uri: str | None) -> dict[str, list[dict[str, Any]]]:
    store = cache_store(store_uri, folder)
    store.connect()
    kinds: dict[str, list[dict[str, Any]]] = {}
    for doc in store.query({}):
        kinds.setdefault(doc["kind"], []).append(doc["value"])
    return kinds


def campaign_status(folder: str | Path, store_uri: str | None = None) -> dict[str, int]:
    """How many DFT labels, models, active-learning iterations and screening results the campaign holds."""
    return {kind: len(docs) for kind, docs in sorted(_documents(folder, store_uri).items())}


def export_campaign(folder: str | Path, store_uri: str | None = None) -> list[dict[str, Any]]:
    """Every screening result with its provenance chain: dataset hash -> model hash + training config -> the
    active-learning iterations that led to it (structures chosen, DFT settings) -> result, with code versions."""
    docs = _documents(folder, store_uri)
    models = {m["model_hash"]: m for m in docs.get("model", [])}
    iterations = sorted((d["record"] for d in docs.get("active_learning", [])), key=lambda r: r["iteration"])
    chain = []
    for result in docs.get("eos", []):
        model = models.get(result["model_hash"], {})
        lineage = [r for r in iterations if r["model_hash"] in models]
        chain.append({
            "result": {k: result[k] for k in ("formula", "prototype", "structure_hash", "v0", "e0", "b0_gpa", "b1")},
            "model": {k: model.get(k) for k in ("model_hash", "dataset_hash", "training_config", "metrics", "parameters")},
            "active_learning": [{k: r[k] for k in ("iteration", "model_hash", "n_explored", "selected_hashes",
                                                   "labeler_settings", "converged")} for r in lineage],
            "code_versions": result["provenance"]["code_versions"],
            "created": result["provenance"]["created"],
        })
    return chain


def write_report(folder: str | Path, store_uri: str | None = None) -> Path:
    """``report.md`` with an E(V) plot per screening result and the active-learning history."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from .steps.eos import birch_murnaghan

    folder = Path(folder)
    docs = _documents(folder, store_uri)
    lines = [f"# Campaign report: {folder.name}", "", "## Status", ""]
    lines += [f"- {kind}: {n}" for kind, n in campaign_status(folder, store_uri).items()]
    lines += ["", "## Equations of state (SUS2)", "", "| structure | V0 (Å³/atom) | E0 (eV/atom) | B0 (GPa) | B1 |",
              "|---|---|---|---|---|"]
    for k, eos in enumerate(docs.get("eos", [])):
        lines.append(f"| {eos['formula']} {eos['prototype']} | {eos['v0']:.3f} | {eos['e0']:.4f} | "
                     f"{eos['b0_gpa']:.1f} | {eos['b1']:.2f} |")
        v = np.linspace(min(eos["volumes"]), max(eos["volumes"]), 100)
        fig, ax = plt.subplots(figsize=(4.5, 3.5))
        ax.plot(eos["volumes"], eos["energies"], "o", label="SUS2")
        ax.plot(v, birch_murnaghan(v, eos["e0"], eos["v0"], eos["b0_gpa"] / 160.21766208, eos["b1"]), "-",
                label="Birch-Murnaghan")
        ax.set(xlabel="volume (Å³/atom)", ylabel="energy (eV/atom)", title=f"{eos['formula']} {eos['prototype']}")
        ax.legend()
        fig.tight_layout()
        name = f"eos_{k}.png"
        fig.savefig(folder / name, dpi=120)
        plt.close(fig)
        lines += ["", f"![EOS]({name})", ""]
    failures = docs.get("label_failed", [])
    if failures:
        lines += ["## Failed reference calculations", ""] + [f"- {f['source']}: {f['error'][:160]}" for f in failures]
        lines += [""]
    lines += ["## Active learning", "", "| iteration | frames explored | selected | max grade |", "|---|---|---|---|"]
    for r in sorted((d["record"] for d in docs.get("active_learning", [])), key=lambda r: r["iteration"]):
        lines.append(f"| {r['iteration']} | {r['n_explored']} | {len(r['selected_hashes'])} | "
                     f"{max(r['grades'], default=0):.2f} |")
    path = folder / "report.md"
    path.write_text("\n".join(lines) + "\n")
    (folder / "export.json").write_text(json.dumps(export_campaign(folder, store_uri), indent=2, default=str))
    return path
