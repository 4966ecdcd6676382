"""The report's PNG plots: E(V) with fits and reference points, V0/B0 parity against the reference, the adsorption
ranking with the labeler's checks.  Each takes result documents as JSON dicts and writes one file atomically."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from sus2_model.io.atomic import atomic_path

from .documents import success_summary


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    _pyplot().close(fig)


def _fit_curve(volumes: Sequence[float], energies: Sequence[float]) -> tuple[Any, Any]:
    """The Birch-Murnaghan curve through ``energies`` (pymatgen's fit, as the screen made it), relative to E0."""
    import numpy as np
    from pymatgen.analysis.eos import EOS

    fit = EOS("birch_murnaghan").fit(volumes, energies)
    v = np.linspace(min(volumes), max(volumes), 100)
    return v, fit.func(v) - fit.e0


def eos_plot(eos: dict[str, Any], path: Path) -> None:
    """E(V) - E0 per atom of one result: the model's points and fit, and the reference's where there is one."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4.5, 3.5))
    series = [("SUS2", eos)]
    reference = eos.get("reference")
    if reference and reference.get("v0") is not None:
        series.append((reference["method"], reference))
    for (label, data), marker in zip(series, ("o", "s")):
        v, e = _fit_curve(data["volumes"], data["energies"])
        line, = ax.plot(v, e, "-")
        ax.plot(data["volumes"], [x - data["e0"] for x in data["energies"]], marker, color=line.get_color(),
                label=f"{label}: V0 {data['v0']:.2f}, B0 {data['b0_gpa']:.0f} GPa")
    title = f"{eos['formula']} {eos.get('prototype') or eos['name']}"
    ax.set(xlabel="volume (Å³/atom)", ylabel="E - E0 (eV/atom)", title=title)
    ax.legend(fontsize=7)
    fig.tight_layout()
    _save(fig, path)


def parity_plot(results: Sequence[dict[str, Any]], path: Path) -> bool:
    """V0 and B0 of the model against the reference, one point per structure; False (no file) with no reference."""
    pairs = [(r, r["reference"]) for r in results if r.get("reference") and r["reference"].get("v0") is not None]
    if not pairs:
        return False
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.8))
    for ax, key, unit in ((axes[0], "v0", "Å³/atom"), (axes[1], "b0_gpa", "GPa")):
        x, y = [ref[key] for _, ref in pairs], [r[key] for r, _ in pairs]
        low, high = min(x + y) * 0.95, max(x + y) * 1.05
        ax.plot([low, high], [low, high], "k--", lw=0.8)
        ax.plot(x, y, "o")
        for (r, _), xi, yi in zip(pairs, x, y):
            ax.annotate(r["name"], (xi, yi), fontsize=7, xytext=(3, 3), textcoords="offset points")
        name = "V0" if key == "v0" else "B0"
        ax.set(xlabel=f"{name} {pairs[0][1]['method']} ({unit})", ylabel=f"{name} SUS2 ({unit})", xlim=(low, high),
               ylim=(low, high))
    fig.tight_layout()
    _save(fig, path)
    return True


def adsorption_plot(result: dict[str, Any], path: Path) -> None:
    """The ranked minima of one surface/adsorbate pair: the model's adsorption energies and the labeler's on the
    same structures, the model's top k shaded."""
    plt = _pyplot()
    minima = result["minima"]
    fig, ax = plt.subplots(figsize=(max(4.5, 0.9 * len(minima) + 2), 3.5))
    ranks = range(len(minima))
    ax.plot(ranks, [m["adsorption_energy"] for m in minima], "o", label="SUS2")
    checked = [(k, m["dft_adsorption_energy"]) for k, m in enumerate(minima) if m.get("dft_adsorption_energy") is not None]
    dft = result.get("dft")
    if checked:
        ax.plot(*zip(*checked), "s", mfc="none", label=dft["labeler"])
    if dft and dft["k"]:
        ax.axvspan(-0.5, min(dft["k"], len(minima)) - 0.5, color="0.9", zorder=0, label=f"top {dft['k']}")
    ax.set_xticks(list(ranks), [m["site"] for m in minima], rotation=30, ha="right", fontsize=7)
    success = f", {success_summary(dft)}" if dft and success_summary(dft) else ""
    ax.set(ylabel="adsorption energy (eV)", title=f"{result['name']}{success}")
    ax.legend(fontsize=7)
    fig.tight_layout()
    _save(fig, path)


def insertion_plot(result: dict[str, Any], path: Path) -> None:
    """The distribution of one framework and guest's Widom insertion energies (the evaluated trials; with D3 as an
    outline where asked), with the binding energies of its relaxed sites marked."""
    plt = _pyplot()
    widom = result["widom"]
    edges, counts = widom["histogram_edges"], widom["histogram"]
    fig, ax = plt.subplots(figsize=(5.0, 3.4))
    ax.stairs(counts, edges, fill=True, alpha=0.6, label=f"{widom['n_evaluated']} evaluated insertions")
    if result.get("widom_d3"):
        ax.stairs(result["widom_d3"]["histogram"], edges, alpha=0.8, label="the same with D3")
    for sites, style, label in ((result["sites"], "-", "binding site (SUS2)"),
                                (result.get("sites_d3", []), "--", "binding site (SUS2 + D3)")):
        for k, site in enumerate(sites):
            ax.axvline(site["binding_energy"], color="k", ls=style, lw=0.8, label=label if k == 0 else None)
    ax.set_yscale("log")
    ax.set(xlabel="insertion energy (eV)", ylabel="trials",
           title=f"{result['name']}: K_H {widom['henry']:.2e} mol/kg/Pa, Q_st {-widom['enthalpy_kj_mol']:.1f} kJ/mol")
    ax.title.set_fontsize(8)
    ax.legend(fontsize=7)
    fig.tight_layout()
    _save(fig, path)
