"""Job stores for campaigns: an embedded on-disk store by default, MongoDB (documents + GridFS blobs) in production.

* default: maggma ``MontyStore`` (montydb on sqlite) in ``<campaign>/store`` for documents, and a second one for
  the ``data`` additional store (datasets, models, trajectories), so large blobs never enter the documents
  collection;
* ``mongodb://...`` / ``mongodb+srv://...``: ``MongoStore`` + ``GridFSStore`` (their URI forms) on that server;
* ``jobflow``: the store configured in jobflow's own settings (``JOBFLOW_CONFIG_FILE`` / ``~/.jobflow.yaml``).
"""

from __future__ import annotations

from pathlib import Path

from jobflow import JobStore
from maggma.stores import MontyStore

from .cache import is_embedded
from .errors import StoreError


class EmbeddedStore(getattr(MontyStore, "__wrapped__", MontyStore)):  # type: ignore[misc]
    """maggma's ``MontyStore`` (montydb on sqlite, on disk) as a real class: maggma wraps ``MontyStore`` in a
    function (its ``requires`` guard), which monty cannot deserialise, so FireWorks could not load a job's store."""


def job_store(uri: str | None, folder: str | Path, database: str = "sus2") -> JobStore:
    """The campaign's :class:`jobflow.JobStore` for ``uri`` (``None``: embedded, in ``folder``)."""
    if is_embedded(uri):
        root = Path(folder) / "store"
        root.mkdir(parents=True, exist_ok=True)
        docs = EmbeddedStore("outputs", database_path=str(root), database_name=database, key="uuid")
        blobs = EmbeddedStore("data", database_path=str(root), database_name=database, key="blob_uuid")
        return JobStore(docs, additional_stores={"data": blobs})
    if uri == "jobflow":
        from jobflow import SETTINGS

        return SETTINGS.JOB_STORE
    if uri.startswith(("mongodb://", "mongodb+srv://")):
        from maggma.stores import MongoURIStore  # MongoStore and GridFSStore addressed by URI
        from maggma.stores.gridfs import GridFSURIStore

        outputs = MongoURIStore(uri, collection_name="outputs", database=database, key="uuid")
        data = GridFSURIStore(uri, collection_name="data", database=database, key="blob_uuid")
        return JobStore(outputs, additional_stores={"data": data})
    raise StoreError(f"store URI {uri!r}: use none (embedded), 'jobflow', or mongodb://host[:port]/")


def check_store(store: JobStore) -> None:
    """Connect once and fail early, naming the store, if it is unreachable."""
    try:
        store.connect()
        store.docs_store.count()
    except Exception as exc:  # pymongo/montydb raise many types
        raise StoreError(f"cannot reach the job store ({store.docs_store.name}): {exc}") from None
