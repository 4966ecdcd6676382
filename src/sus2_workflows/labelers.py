"""Build a :class:`~sus2_workflows.steps.label.Labeler` from a campaign spec's ``labeler`` section."""

from __future__ import annotations

from typing import Any

from .errors import SpecError
from .steps.label import AseLabeler, Labeler, QuantumEspressoLabeler
from .steps.vasp import VaspLabeler


def make_labeler(spec: dict[str, Any]) -> Labeler:
    """The labeler a ``LabelerSpec`` (as a dict) describes."""
    if spec["type"] == "quantum_espresso":
        if not spec.get("pseudopotentials"):
            raise SpecError("labeler.pseudopotentials: Quantum ESPRESSO needs a pseudopotential per element")
        return QuantumEspressoLabeler(spec["pseudopotentials"], spec["ecutwfc"], spec["kspacing"], spec.get("smearing"),
                                      spec.get("degauss", 0.02), spec.get("pseudo_dir", "/usr/share/espresso/pseudo"),
                                      spec.get("command", "pw.x"))
    if spec["type"] == "vasp":
        return VaspLabeler(dict(spec.get("incar", {})), dict(spec.get("kpoints", {})))
    if not (spec.get("module") and spec.get("callable")):
        raise SpecError("labeler: type 'ase' needs 'module' and 'callable'")
    return AseLabeler(spec["module"], spec["callable"], dict(spec.get("kwargs", {})))
