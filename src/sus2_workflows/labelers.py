"""Build a :class:`~sus2_workflows.steps.label.Labeler` from a campaign spec's ``labeler`` section (whose fields hold
every labeler default)."""

from __future__ import annotations

from typing import Any

from .errors import SpecError
from .spec import LabelerSpec
from .steps.label import AseLabeler, Labeler, QuantumEspressoLabeler
from .steps.vasp import VaspLabeler


def make_labeler(spec: LabelerSpec | dict[str, Any] | None) -> Labeler:
    """The labeler a :class:`LabelerSpec` (or its dict form) describes."""
    if spec is None:
        raise SpecError("labeler: no labeler is set (a campaign spec's `labeler` section, or LabelMaker(labeler=...))")
    spec = LabelerSpec.model_validate(spec)
    if spec.type == "quantum_espresso":
        if not spec.pseudopotentials:
            raise SpecError("labeler.pseudopotentials: Quantum ESPRESSO needs a pseudopotential per element")
        labeler = QuantumEspressoLabeler(dict(spec.pseudopotentials), spec.ecutwfc, spec.kspacing, spec.smearing,
                                         spec.degauss, spec.pseudo_dir, spec.command, spec.kpts, spec.ecutrho,
                                         {k: dict(v) for k, v in spec.pw_input.items() if v})
        problems = labeler.cutoff_problems() + labeler.input_problems()
        if problems:
            raise SpecError("labeler: " + "; ".join(problems))
        return labeler
    if spec.type == "vasp":
        return VaspLabeler(dict(spec.incar), dict(spec.kpoints))
    if not (spec.module and spec.callable):
        raise SpecError("labeler: type 'ase' needs 'module' and 'callable'")
    return AseLabeler(spec.module, spec.callable, dict(spec.kwargs))
