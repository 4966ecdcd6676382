"""Atomic file writes: the data goes to a temporary file in the target's folder, is flushed and fsynced, and is then
renamed over the target (``os.replace``), so a reader, or a run killed half-way, never sees half a file.  The
temporary file is removed when writing fails.

:func:`atomic_write` is for writers that take an open file; :func:`atomic_path` is for writers that want a file
name (``ase.io.write``, ``savefig``): the temporary name ends with the target's suffix, so they still infer the
format from it.
"""

from __future__ import annotations

import os
import secrets
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Callable, Iterator


def _temporary_name(path: Path) -> Path:
    """A fresh hidden name beside ``path``, ending with ``path``'s suffix."""
    return path.with_name(f".{path.stem}.{os.getpid()}-{secrets.token_hex(4)}.tmp{path.suffix}")


def _fsync(path: Path) -> None:
    """Flush ``path``'s data to the disk."""
    with open(path, "rb+") as fh:
        os.fsync(fh.fileno())


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` to write to; on a clean exit it is fsynced and renamed over ``path``
    (the folder is created if needed), on an exception it is removed and ``path`` is left as it was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary_name(path)
    try:
        yield tmp
        _fsync(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write(path: str | Path, write: Callable[[IO[Any]], object], mode: str = "w") -> None:
    """Create or replace ``path`` atomically with what ``write`` writes to the open temporary file.

    ``mode`` is ``"w"`` (text, UTF-8, newlines untranslated) or ``"wb"`` (bytes).  The data is flushed and fsynced
    before the rename; if ``write`` raises, the temporary file is removed and ``path`` is untouched.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"mode must be 'w' or 'wb', got {mode!r}")
    text = {} if mode == "wb" else {"encoding": "utf-8", "newline": ""}
    with atomic_path(path) as tmp, open(tmp, mode, **text) as fh:
        write(fh)
