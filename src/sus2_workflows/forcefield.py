"""The SUS2 calculator in atomate2's force-field makers (``ForceFieldRelaxMaker``, ``ForceFieldStaticMaker``, EOS, MD).

atomate2 builds calculators from ``force_field_name={"@module": ..., "@callable": ...}`` and ``calculator_kwargs``;
its task document records ``forcefield_name`` (here "SUS2 <model file> <short hash>") and ``forcefield_version``
(the ``sus2`` package version).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from .hashing import file_sha256

SUS2_CALCULATOR = {"@module": "sus2_model.calculator", "@callable": "Sus2Calculator"}


def sus2_maker_kwargs(model: str | Path, species: str | Sequence[str] | None = None, device: str = "cpu",
                      dtype: str = "float64", task: str | None = None) -> dict[str, Any]:
    """Keyword arguments that make any atomate2 force-field maker use a SUS2 model::

        ForceFieldRelaxMaker(**sus2_maker_kwargs("run/model.pt"))
    """
    path = Path(model).resolve()
    calculator_kwargs: dict[str, Any] = {"model": str(path), "device": device, "dtype": dtype}
    if species is not None:
        calculator_kwargs["species"] = species if isinstance(species, str) else list(species)
    if task is not None:
        calculator_kwargs["task"] = task
    name = f"SUS2 {path.name} {file_sha256(path)[:12]}" + (f" task={task}" if task else "")
    return {"force_field_name": dict(SUS2_CALCULATOR), "calculator_kwargs": calculator_kwargs,
            "task_document_kwargs": {"forcefield_name": name}}
