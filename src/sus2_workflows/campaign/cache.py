"""The campaign's result cache: a small protocol (get/put/delete documents by kind and key, list a kind), an
in-memory implementation,
and the workspace (folders) stages write into.  The maggma implementation: :class:`sus2_workflows.cache.ResultCache`."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Protocol


class Cache(Protocol):
    """Documents by (kind, key): a campaign run again finds what it computed; each ``put`` is one atomic write."""

    def get(self, kind: str, key: str) -> dict[str, Any] | None:
        """The document stored under (kind, key), or None."""

    def put(self, kind: str, key: str, value: dict[str, Any]) -> None:
        """Store ``value`` under (kind, key), replacing what was there."""

    def delete(self, kind: str, key: str) -> None:
        """Forget (kind, key), if it is there."""

    def items(self, kind: str) -> Iterator[tuple[str, dict[str, Any]]]:
        """Every (key, document) of ``kind``."""


@dataclass
class MemoryCache:
    """A :class:`Cache` in a dict (tests, throw-away runs)."""

    documents: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)

    def get(self, kind: str, key: str) -> dict[str, Any] | None:
        """The document stored under (kind, key), or None."""
        value = self.documents.get((kind, key))
        return None if value is None else json.loads(json.dumps(value))

    def put(self, kind: str, key: str, value: dict[str, Any]) -> None:
        """Store a JSON copy of ``value`` under (kind, key)."""
        self.documents[(kind, key)] = json.loads(json.dumps(value, default=str))

    def delete(self, kind: str, key: str) -> None:
        """Forget (kind, key), if it is there."""
        self.documents.pop((kind, key), None)

    def items(self, kind: str) -> Iterator[tuple[str, dict[str, Any]]]:
        """Every (key, document) of ``kind``, as JSON copies."""
        for (stored_kind, key), value in list(self.documents.items()):
            if stored_kind == kind:
                yield key, json.loads(json.dumps(value))


@dataclass
class Workspace:
    """Where a campaign's stages work: the folder for DFT runs and models, and the result cache."""

    folder: Path
    cache: Cache

    def dft_dir(self, label_key: str) -> Path:
        """The folder of one structure's reference calculation."""
        return self.folder / "dft" / label_key[:16]

    def model_dir(self, model_key: str) -> Path:
        """The folder of one training run."""
        return self.folder / "models" / model_key[:16]
