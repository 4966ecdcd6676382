"""Campaign status and provenance export, read from the campaign's result cache (no structures, only hashes)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .cache import cache_store

SHOWN = ("label", "label_failed", "dataset", "curated", "dbs", "model", "active_learning", "eos", "eos_failed",
         "eos_reference", "slabs", "adsorption", "mof", "result")


def campaign_documents(folder: str | Path, store_uri: str | None = None) -> dict[str, list[dict[str, Any]]]:
    """Every cached document of a campaign, grouped by kind."""
    store = cache_store(store_uri, folder)
    store.connect()
    kinds: dict[str, list[dict[str, Any]]] = {}
    for doc in store.query({}):
        kinds.setdefault(doc["kind"], []).append(doc["value"])
    return kinds


def status_of(docs: dict[str, list[dict[str, Any]]]) -> dict[str, int]:
    """How many DFT labels, datasets, models, active-learning iterations and screening results ``docs`` hold."""
    return {kind: len(docs[kind]) for kind in SHOWN if kind in docs}


def campaign_status(folder: str | Path, store_uri: str | None = None) -> dict[str, int]:
    """:func:`status_of` the campaign's cached documents."""
    return status_of(campaign_documents(folder, store_uri))


def _model_lineage(model: dict[str, Any], models: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The model and the models it was fine-tuned from or replaces, newest first."""
    by_hash = {m["model_hash"]: m for m in models}
    lineage = [model]
    parent_of = lambda m: m.get("init_model_hash") or m.get("previous_model_hash") or ""  # noqa: E731
    while (parent := by_hash.get(parent_of(lineage[-1]))) and parent not in lineage:
        lineage.append(parent)
    return lineage


def _dataset_lineage(dataset_hash: str | None, datasets: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The labelled dataset and the ones it extends, newest first."""
    lineage = []
    while dataset_hash in datasets and len(lineage) < 1000:
        lineage.append(datasets[dataset_hash])
        dataset_hash = datasets[dataset_hash]["provenance"]["inputs"].get("previous_dataset")
    return lineage


def export_campaign(folder: str | Path, store_uri: str | None = None) -> list[dict[str, Any]]:
    """:func:`provenance_chains` of the campaign's cached documents."""
    return provenance_chains(campaign_documents(folder, store_uri))


def provenance_chains(docs: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Every screening result with its provenance chain: imported datasets (file hashes) -> domain-bridging set ->
    labelled datasets (DFT settings) -> model (hash, training config) -> active-learning iterations (structures
    chosen) -> result, with code versions."""
    models = docs.get("model", [])
    datasets = {d["dataset_hash"]: d for d in docs.get("dataset", [])}
    dbs = {d["dbs_hash"]: d for d in docs.get("dbs", [])}
    curated = {d["dataset_hash"]: d for d in docs.get("curated", [])}
    iterations = docs.get("active_learning", [])
    chain = []
    for result in docs.get("eos", []):
        model = next((m for m in models if m["model_hash"] == result["model_hash"]), None)
        lineage = _model_lineage(model, models) if model else []
        labelled = _dataset_lineage(model["provenance"]["inputs"].get("dataset_hash") if model else None, datasets)
        bridge = next((dbs[d["provenance"]["inputs"]["dbs_hash"]] for d in labelled
                       if d["provenance"]["inputs"].get("dbs_hash") in dbs), None)
        source = curated.get(model.get("source_dataset_hash")) if model else None
        hashes = {m["model_hash"] for m in lineage}
        chain.append({
            "result": {k: result.get(k) for k in ("result_hash", "name", "formula", "prototype", "structure_hash",
                                                  "model_hash", "v0", "e0", "b0_gpa", "b1", "rms_residual_mev",
                                                  "other_fits")},
            "imported": None if source is None else {
                "dataset_hash": source["dataset_hash"], "settings": source["settings"],
                "tasks": [{k: t[k] for k in ("task", "source", "source_sha256", "dataset_hash", "n_read",
                                             "n_duplicates", "n_outliers", "n_train", "n_test", "references")}
                          for t in source["tasks"]]},
            "dbs": None if bridge is None else {k: bridge[k] for k in ("dbs_hash", "source_dataset_hash", "method",
                                                                        "settings", "picks")},
            "datasets": [{k: d[k] for k in ("dataset_hash", "n_structures", "n_atoms", "labeler", "labeler_settings",
                                            "n_computed", "failed")} for d in labelled],
            "model": None if model is None else {
                k: model.get(k) for k in ("model_hash", "dataset_hash", "training_data_hash", "source_dataset_hash",
                                          "init_model_hash", "previous_model_hash", "task", "training_config",
                                          "metrics", "test_metrics", "parameters")},
            "earlier_models": [m["model_hash"] for m in lineage[1:]],
            "active_learning": sorted(({k: r[k] for k in ("iteration", "model_hash", "n_explored", "selected_hashes",
                                                          "labeler_settings", "converged")}
                                       for r in iterations if r["model_hash"] in hashes), key=lambda r: r["iteration"]),
            "code_versions": result["provenance"]["code_versions"],
            "created": result["provenance"]["created"],
        })
    return chain
