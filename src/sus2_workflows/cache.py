"""The campaign cache on a maggma store (the :class:`~sus2_workflows.campaign.cache.Cache` protocol): a campaign run
again finds every DFT label, model and screening result it already computed, and a killed run loses none of those
written before the kill."""

from __future__ import annotations

import fcntl
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from maggma.core import Store

from .campaign.cache import Workspace


class ResultCache:
    """``get``/``put`` documents by (kind, key) in a maggma store; each ``put`` is one atomic document write.  With
    ``lock`` (a file beside an embedded store), writes from several processes (AiiDA's daemon workers) take turns."""

    def __init__(self, store: Store, lock: Path | None = None) -> None:
        self.store = store
        self.lock = lock
        with self._writing():  # connecting an embedded store rewrites its configuration file
            self.store.connect()

    @contextmanager
    def _writing(self) -> Iterator[None]:
        """Hold the write lock, where there is one."""
        if self.lock is None:
            yield
            return
        with open(self.lock, "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def get(self, kind: str, key: str) -> dict[str, Any] | None:
        """The document stored under (kind, key), or None."""
        doc = self.store.query_one({"cache_key": f"{kind}:{key}"})
        return None if doc is None else doc["value"]

    def put(self, kind: str, key: str, value: dict[str, Any]) -> None:
        """Store ``value`` under (kind, key), replacing what was there."""
        with self._writing():
            self.store.update([{"cache_key": f"{kind}:{key}", "kind": kind, "value": value}], key="cache_key")

    def delete(self, kind: str, key: str) -> None:
        """Forget (kind, key), if it is there."""
        with self._writing():
            self.store.remove_docs({"cache_key": f"{kind}:{key}"})

    def items(self, kind: str) -> Iterator[tuple[str, dict[str, Any]]]:
        """Every (key, document) of ``kind``."""
        for doc in self.store.query({"kind": kind}):
            yield doc["cache_key"].split(":", 1)[1], doc["value"]


def is_embedded(uri: str | None) -> bool:
    """Whether a store URI names the embedded store in the campaign folder (none given, "" or "embedded")."""
    return uri in (None, "", "embedded")


def cache_store(uri: str | None, folder: str | Path, database: str = "sus2") -> Store:
    """The cache collection beside the job store (same backend as :func:`sus2_workflows.stores.job_store`)."""
    if is_embedded(uri):
        from .stores import EmbeddedStore

        root = Path(folder) / "store"
        root.mkdir(parents=True, exist_ok=True)
        return EmbeddedStore("cache", database_path=str(root), database_name=database, key="cache_key")
    from maggma.stores import MongoURIStore

    return MongoURIStore(uri, collection_name="cache", database=database, key="cache_key")


def store_workspace(folder: str | Path, store_uri: str | None = None) -> Workspace:
    """The :class:`Workspace` of a campaign folder whose cache lives in the store at ``store_uri`` (the embedded one,
    with a write lock beside it, where that is None)."""
    lock = Path(folder) / "store" / "cache.lock" if is_embedded(store_uri) else None
    return Workspace(Path(folder), ResultCache(cache_store(store_uri, folder), lock))
