"""Exception hierarchy of the model core: one base class, one subclass per kind of bad input."""

from __future__ import annotations


class Sus2ModelError(Exception):
    """Base class of every error raised by :mod:`sus2_model`."""


class FileFormatError(Sus2ModelError, ValueError):
    """A model or dataset file is malformed; the message names the file and line."""

    def __init__(self, path: object, line: int | None, message: str) -> None:
        where = f"{path}:{line}" if line is not None else f"{path}"
        super().__init__(f"{where}: {message}")
        self.path = path
        self.line = line


class UnknownElementError(Sus2ModelError, KeyError):
    """A structure holds an element the model was not trained for."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0])


class StructureError(Sus2ModelError, ValueError):
    """A structure cannot be evaluated (NaN coordinates, overlapping atoms, bad labels)."""
