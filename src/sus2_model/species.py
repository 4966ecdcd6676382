"""Species lists: the map between a model's type index and a chemical element."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

from ase.data import atomic_numbers, chemical_symbols

from .errors import Sus2ModelError, UnknownElementError


def parse_species(spec: str | Path | Sequence[str] | None) -> list[str] | None:
    """Read a species list from a JSON/text file, a comma-separated string or a sequence of symbols.

    A JSON file may hold a list of symbols or ``{"species": [...]}``; a text file holds symbols
    separated by whitespace or commas.  Returns ``None`` when ``spec`` is ``None``.
    """
    if spec is None:
        return None
    if isinstance(spec, (list, tuple)):
        symbols = [str(s).strip() for s in spec]
    else:
        text = str(spec)
        path = Path(text)
        if path.suffix in {".json", ".txt"} or path.is_file():
            if not path.is_file():
                raise Sus2ModelError(f"species file {path} does not exist")
            raw = path.read_text()
            if path.suffix == ".json":
                data = json.loads(raw)
                symbols = list(data["species"] if isinstance(data, dict) else data)
            else:
                symbols = raw.replace(",", " ").split()
        else:
            symbols = [s.strip() for s in text.split(",") if s.strip()]
    for s in symbols:
        if s not in atomic_numbers or s == "X":
            raise UnknownElementError(f"{s!r} in species list {spec!r} is not a chemical element")
    if len(set(symbols)) != len(symbols):
        raise Sus2ModelError(f"species list {symbols} repeats an element")
    return symbols


def default_species_file(model_path: str | Path) -> Path | None:
    """Return ``species.json`` next to a model file when it exists (the published models ship one)."""
    candidate = Path(model_path).with_name("species.json")
    return candidate if candidate.is_file() else None


def symbols_of(numbers: Sequence[int]) -> list[str]:
    """Chemical symbols of atomic numbers."""
    return [chemical_symbols[int(z)] for z in numbers]
