"""A content-addressed result cache on a maggma store: a campaign run again finds every DFT label, model and
screening result it already computed, and a killed run loses none of those written before the kill."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from maggma.core import Store


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def content_key(*parts: Any) -> str:
    """SHA-256 of the canonical JSON of ``parts``."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


class ResultCache:
    """``get``/``put`` documents by (kind, key); each ``put`` is one atomic document write."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.store.connect()

    def get(self, kind: str, key: str) -> dict[str, Any] | None:
        doc = self.store.query_one({"cache_key": f"{kind}:{key}"})
        return None if doc is None else doc["value"]

    def put(self, kind: str, key: str, value: dict[str, Any]) -> None:
        self.store.update([{"cache_key": f"{kind}:{key}", "kind": kind, "value": value}], key="cache_key")


def cache_store(uri: str | None, folder: str | Path, database: str = "sus2") -> Store:
    """The cache collection beside the job store (same backend as :func:`sus2_workflows.stores.job_store`)."""
    if uri in (None, "", "embedded"):
        from .stores import EmbeddedStore

        root = Path(folder) / "store"
        root.mkdir(parents=True, exist_ok=True)
        return EmbeddedStore("cache", database_path=str(root), database_name=database, key="cache_key")
    from maggma.stores import MongoURIStore

    return MongoURIStore(uri, collection_name="cache", database=database, key="cache_key")
