"""VASP labels on clusters through atomate2's own ``StaticMaker`` (MP-style static input set): the settings that
make a VASP labeler, and the conversion of atomate2/emmet task documents into labelled structures."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms, units
from ase.calculators.singlepoint import SinglePointCalculator
from ase.stress import full_3x3_to_voigt_6_stress

from ..errors import LabelingError


@dataclass
class VaspLabeler:
    """VASP single points run by atomate2 (``StaticMaker``) as jobs of the flow, never inside this process."""

    incar: dict[str, Any] = field(default_factory=dict)  # user_incar_settings
    kpoints: dict[str, Any] = field(default_factory=dict)  # user_kpoints_settings, e.g. {"reciprocal_density": 100}
    name: str = "vasp"
    in_process: bool = False

    def settings(self) -> dict[str, Any]:
        from importlib.metadata import version

        return {"code": "VASP via atomate2 StaticMaker", "input_set": "StaticSetGenerator (MP)",
                "incar": dict(self.incar), "kpoints": dict(self.kpoints), "atomate2": version("atomate2")}

    def calculator(self, workdir: Path, atoms: Atoms):
        raise LabelingError("VASP labels come from atomate2 StaticMaker jobs in the flow, not from an in-process "
                            "calculator")

    def maker(self):
        """atomate2's ``StaticMaker`` with these settings."""
        from atomate2.vasp.jobs.core import StaticMaker
        from atomate2.vasp.sets.core import StaticSetGenerator

        generator = StaticSetGenerator(user_incar_settings=dict(self.incar), user_kpoints_settings=dict(self.kpoints))
        return StaticMaker(name="sus2 vasp static", input_set_generator=generator)

    def job(self, atoms: Atoms) -> Any:
        """atomate2's ``StaticMaker`` job for ``atoms``."""
        from pymatgen.io.ase import AseAtomsAdaptor

        return self.maker().make(AseAtomsAdaptor.get_structure(atoms))

    def labels_from_output(self, output: Any, source: str) -> Atoms:
        """The labelled structure from a ``StaticMaker`` job's task document (None: the job failed)."""
        if output is None:
            raise LabelingError(f"{source}: the VASP job failed (see its job output)")
        return atoms_from_task_document(output, source)


def _get(obj: Any, name: str) -> Any:
    return obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)


def atoms_from_task_document(task_document: Any, source: str) -> Atoms:
    """A labelled structure from an atomate2 VASP ``TaskDoc`` (object or dict): energy (eV), forces (eV/Å) and
    stress (VASP's kB, compressive positive, converted to ASE's eV/Å³ with tension positive)."""
    from pymatgen.core import Structure
    from pymatgen.io.ase import AseAtomsAdaptor

    output = _get(task_document, "output")
    structure = _get(output, "structure") if output is not None else None
    energy = _get(output, "energy") if output is not None else None
    if structure is None or energy is None or _get(output, "forces") is None:
        raise LabelingError(f"{source}: the VASP task document has no final structure, energy or forces")
    if isinstance(structure, dict):
        structure = Structure.from_dict(structure)
    atoms = AseAtomsAdaptor.get_atoms(structure)
    labels: dict[str, Any] = {"energy": float(energy), "forces": np.asarray(_get(output, "forces"), dtype=float)}
    stress = _get(output, "stress")
    if stress is not None:
        labels["stress"] = full_3x3_to_voigt_6_stress(-0.1 * units.GPa * np.asarray(stress, dtype=float))
    atoms.calc = SinglePointCalculator(atoms, **labels)
    atoms.info.update({"source": source, "labeler": "vasp"})
    return atoms
