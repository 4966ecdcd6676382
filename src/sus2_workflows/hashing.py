"""Content hashes for cache keys and provenance: canonical JSON of values, SHA-256 of files.  (Structures and
datasets are hashed by :func:`sus2_model.train.data.structure_hash` / ``dataset_hash``, models by
:func:`sus2_model.io.native.model_hash`.)"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any


def content_key(*parts: Any) -> str:
    """SHA-256 of the canonical JSON of ``parts``."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
