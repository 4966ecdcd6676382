"""``Sus2Calculator``: the SUS2 potential as an ASE calculator (energy, free_energy, forces, stress, energies)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch
from ase import Atoms
from ase.calculators.calculator import Calculator, all_changes

from .model import Sus2Potential
from .predict import Prediction, evaluate, load_model, predict, resolve_dtype


class Sus2Calculator(Calculator):
    """ASE calculator for a SUS2 model.

    Args:
        model: path of an ``.mtp`` file or a :class:`Sus2Potential`.
        species: elements of the model's type indices (list, ``"Cu,Ni"`` or a JSON/text file); defaults to
            ``species.json`` beside the model file.
        device: ``"cpu"`` or ``"cuda"``.
        dtype: ``"float64"`` (default) or ``"float32"``.
        task: evaluate the surface of this training task (multi-domain models); ``None`` = the shared surface.
    """

    implemented_properties = ["energy", "free_energy", "forces", "stress", "energies"]

    def __init__(self, model: str | Path | Sus2Potential, species: str | Sequence[str] | None = None,
                 device: str = "cpu", dtype: str | torch.dtype = "float64", task: str | None = None,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        self.dtype = resolve_dtype(dtype)
        self.device = torch.device(device)
        self.model = load_model(model, species).to(device=self.device, dtype=self.dtype)
        self.model.species_index  # noqa: B018 - fail now, not at the first step, if the species are unknown
        self.task = task
        self._task_index = self.model.task_index(task)

    def calculate(self, atoms: Atoms | None = None, properties=("energy",), system_changes=all_changes) -> None:
        """Evaluate one structure (ASE's calculator protocol) through :func:`~sus2_model.predict.evaluate`."""
        super().calculate(atoms, properties, system_changes)
        want_stress = bool(self.atoms.pbc.all())  # nearly free next to forces; saves a second call for get_stress
        (pred,) = evaluate(self.model, [self.atoms], self._task_index, want_stress, ["structure"])
        self.results = {"energy": pred.energy, "free_energy": pred.energy, "forces": pred.forces,
                        "energies": pred.energies}
        if pred.stress is not None:
            self.results["stress"] = pred.stress

    def predict(self, images: Sequence[Atoms], batch_size: int = 32, progress: bool = False) -> list[Prediction]:
        """Evaluate many structures in batched model calls (much faster than one ``get_forces`` per structure)."""
        return predict(self.model, images, batch_size, str(self.device), self.dtype, progress=progress, task=self.task)
