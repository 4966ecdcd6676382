"""The campaign cache on a maggma store (the :class:`~sus2_workflows.campaign.cache.Cache` protocol): a campaign run
again finds every DFT label, model and screening result it already computed, and a killed run loses none of those
written before the kill."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

from maggma.core import Store

from .campaign.cache import Workspace


class ResultCache:
    """``get``/``put`` documents by (kind, key) in a maggma store; each ``put`` is one atomic document write."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.store.connect()

    def get(self, kind: str, key: str) -> dict[str, Any] | None:
        """The document stored under (kind, key), or None."""
        doc = self.store.query_one({"cache_key": f"{kind}:{key}"})
        return None if doc is None else doc["value"]

    def put(self, kind: str, key: str, value: dict[str, Any]) -> None:
        """Store ``value`` under (kind, key), replacing what was there."""
        self.store.update([{"cache_key": f"{kind}:{key}", "kind": kind, "value": value}], key="cache_key")

    def delete(self, kind: str, key: str) -> None:
        """Forget (kind, key), if it is there."""
        self.store.remove_docs({"cache_key": f"{kind}:{key}"})

    def items(self, kind: str) -> Iterator[tuple[str, dict[str, Any]]]:
        """Every (key, document) of ``kind``."""
        for doc in self.store.query({"kind": kind}):
            yield doc["cache_key"].split(":", 1)[1], doc["value"]


def cache_store(uri: str | None, folder: str | Path, database: str = "sus2") -> Store:
    """The cache collection beside the job store (same backend as :func:`sus2_workflows.stores.job_store`)."""
    if uri in (None, "", "embedded"):
        from .stores import EmbeddedStore

        root = Path(folder) / "store"
        root.mkdir(parents=True, exist_ok=True)
        return EmbeddedStore("cache", database_path=str(root), database_name=database, key="cache_key")
    from maggma.stores import MongoURIStore

    return MongoURIStore(uri, collection_name="cache", database=database, key="cache_key")


def store_workspace(folder: str | Path, store_uri: str | None = None) -> Workspace:
    """The :class:`Workspace` of a campaign folder whose cache lives in the store at ``store_uri``."""
    return Workspace(Path(folder), ResultCache(cache_store(store_uri, folder)))
