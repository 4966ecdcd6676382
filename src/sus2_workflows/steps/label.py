"""Labelling structures with reference energies, forces and stresses (a ``Labeler`` computes DFT labels).

In-process labelers (``in_process = True``) give a calculator: :class:`QuantumEspressoLabeler` (pw.x through ASE,
for local runs) and :class:`AseLabeler` (any ASE calculator named by module and class, e.g. EMT in tests).
Engine-run labelers (``in_process = False``, :class:`ExternalLabeler`, e.g. VASP through atomate2) give a jobflow
Maker whose jobs the engine schedules, and turn each job's output into a labelled structure.
A failed calculation is recorded with the structure's name and the error; the others are still labelled.
"""

from __future__ import annotations

import functools
import re
import shutil
from dataclasses import dataclass, field
from importlib import import_module
from pathlib import Path
from typing import IO, Any, Protocol, Sequence

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator
from ase.calculators.singlepoint import SinglePointCalculator

from ..errors import LabelingError


class Labeler(Protocol):
    """Something that computes reference labels, with settings recorded as provenance."""

    name: str
    in_process: bool  # True: ``calculator`` labels here; False: the engine runs the labeler's jobs

    def settings(self) -> dict[str, Any]:
        """Everything that determines the labels (method, code, cutoffs, k-points, pseudopotentials)."""

    def calculator(self, workdir: Path, atoms: Atoms) -> Calculator:
        """A calculator for ``atoms`` that runs in ``workdir`` (in-process labelers)."""


class ExternalLabeler(Labeler, Protocol):
    """A labeler whose calculations run as jobs of the workflow engine, never inside the campaign's process."""

    def job(self, atoms: Atoms) -> Any:
        """A jobflow job that computes the labels of ``atoms`` (e.g. an atomate2 ``StaticMaker`` job)."""

    def labels_from_output(self, output: Any, source: str) -> Atoms:
        """The labelled structure from one job's output; raises :class:`LabelingError` naming ``source``."""


@dataclass
class AseLabeler:
    """Any ASE calculator, e.g. ``AseLabeler("ase.calculators.emt", "EMT")``."""

    module: str
    callable: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    name: str = "ase"
    in_process: bool = True

    def settings(self) -> dict[str, Any]:
        return {"calculator": f"{self.module}.{self.callable}", "kwargs": dict(self.kwargs)}

    def calculator(self, workdir: Path, atoms: Atoms) -> Calculator:
        return getattr(import_module(self.module), self.callable)(**self.kwargs)


def kpoint_grid(atoms: Atoms, kspacing: float) -> tuple[int, int, int]:
    """VASP's KSPACING rule: n_i = max(1, ceil(2π |b_i| / kspacing)) along periodic directions, 1 along the others
    (``kspacing`` in 1/Å with the 2π included, as in VASP and atomate2)."""
    lengths = np.linalg.norm(atoms.cell.reciprocal(), axis=1)  # |b_i| without the 2π
    return tuple(int(max(1, np.ceil(2 * np.pi * b / kspacing - 1e-9))) if periodic else 1
                 for b, periodic in zip(lengths, atoms.pbc))


# the pw.x entries the labeler's fields, ASE's writer and the structure set: not for ``pw_input``
PW_OWN_KEYS = {"control": ("calculation", "tprnfor", "tstress", "pseudo_dir", "outdir", "prefix"),
               "system": ("nat", "ntyp", "ibrav", "ecutwfc", "ecutrho", "occupations", "smearing", "degauss")}
PW_INPUT_DECIMALS = 10  # decimals (Å) of the cell pw.x reads: aiida-quantumespresso's writer's
SUGGESTED_CUTOFF = re.compile(r"Suggested minimum cutoff for (wavefunctions|charge density):\s*([0-9.]+)\s*Ry")


def suggested_cutoffs(path: Path) -> tuple[float, float]:
    """The (wavefunction, charge-density) cutoffs in Ry a pseudopotential file's header suggests; 0 where it says
    nothing or the file cannot be read."""
    try:
        with open(path, errors="replace") as handle:
            header = handle.read(20000)
    except OSError:
        return 0.0, 0.0
    found = {kind: float(value) for kind, value in SUGGESTED_CUTOFF.findall(header)}
    return found.get("wavefunctions", 0.0), found.get("charge density", 0.0)


@dataclass
class QuantumEspressoLabeler:
    """Quantum ESPRESSO ``pw.x`` SCF with forces and stress (plane-wave cutoff in Ry; a fixed Monkhorst-Pack grid
    ``kpts``, or one from ``kspacing`` in 1/Å with VASP's rule); built from a campaign spec's ``labeler`` section by
    :func:`sus2_workflows.labelers.make_labeler`, which holds the defaults."""

    pseudopotentials: dict[str, str]
    ecutwfc: float
    kspacing: float
    smearing: str | None
    degauss: float
    pseudo_dir: str
    command: str
    kpts: tuple[int, int, int] | None = None
    ecutrho: float | None = None  # Ry; None: 4 x ecutwfc, as pw.x
    pw_input: dict[str, dict[str, Any]] = field(default_factory=dict)  # more namelist entries, e.g. mixing_beta
    name: str = "quantum_espresso"
    in_process: bool = True

    @property
    def density_cutoff(self) -> float:
        """The charge-density cutoff pw.x runs with (Ry)."""
        return self.ecutrho or 4.0 * self.ecutwfc

    def settings(self) -> dict[str, Any]:
        kpoints = {"kpts": list(self.kpts)} if self.kpts else {"kspacing_2pi_inv_a": self.kspacing}
        return {"code": "pw.x", "functional": "from pseudopotentials", "pseudopotentials": dict(self.pseudopotentials),
                "ecutwfc_ry": self.ecutwfc, "ecutrho_ry": self.density_cutoff, **kpoints, "smearing": self.smearing,
                "degauss_ry": self.degauss, **({"pw_input": self.pw_input} if self.pw_input else {})}

    def namelists(self) -> dict[str, dict[str, Any]]:
        """The pw.x namelist entries of every calculation: the labeler's own and ``pw_input``'s (the writer, ASE's
        or aiida-quantumespresso's, adds the structure's)."""
        system: dict[str, Any] = {"ecutwfc": self.ecutwfc, "ecutrho": self.density_cutoff}
        if self.smearing:
            system |= {"occupations": "smearing", "smearing": self.smearing, "degauss": self.degauss}
        namelists = {"control": {"tprnfor": True, "tstress": True}, "system": system}
        for namelist, entries in self.pw_input.items():
            namelists[namelist] = {**namelists.get(namelist, {}), **entries}
        return namelists

    def kpoints(self, atoms: Atoms) -> tuple[int, int, int]:
        """The Monkhorst-Pack grid (no offset) of ``atoms``' calculation."""
        return tuple(self.kpts) if self.kpts else kpoint_grid(atoms, self.kspacing)

    def labels_from_output(self, output: str | Path | IO[str], atoms: Atoms, source: str) -> Atoms:
        """``atoms`` labelled from a finished pw.x run's text output (a path or an open file; read by ASE, as the
        in-process calculator reads its own); raises :class:`LabelingError` naming ``source`` where it holds no
        result."""
        from ase.io import read

        try:
            calculated = atoms.copy()  # the structure's periodicity decides the labels, as in process
            calculated.calc = SinglePointCalculator(calculated, **read(output, format="espresso-out").calc.results)
            return labelled_copy(atoms, results_of(calculated), self.name, source)
        except Exception as exc:  # a truncated or foreign file fails in many ways inside ASE's reader
            where = getattr(output, "name", output)
            raise LabelingError(f"{source}: no pw.x result in {where}: {type(exc).__name__}: {exc}") from exc

    def input_problems(self) -> list[str]:
        """``pw_input`` entries that would override what the labeler or the structure sets (:data:`PW_OWN_KEYS`)."""
        own = [f"pw_input.{namelist}.{key}: set by the labeler (use its own field)"
               for namelist, entries in sorted(self.pw_input.items()) for key in sorted(entries)
               if key in PW_OWN_KEYS.get(namelist, ())]
        return own + [f"pw_input.{namelist}.{key}: a per-species entry, whose index depends on the order a writer "
                      "lists species in (ASE: as they appear; aiida-quantumespresso: sorted): not supported"
                      for namelist, entries in sorted(self.pw_input.items()) for key in sorted(entries) if "(" in key]

    def cutoff_problems(self) -> list[str]:
        """Where a cutoff lies below the minimum a pseudopotential file suggests (pslibrary headers; files that are
        not here or suggest nothing are not checked).  Below it the stress misses the Pulay term: on Cu fcc with
        Cu.pbe-kjpaw.UPF (47 Ry suggested) at 30 Ry, pw.x's pressure differed from -dE/dV by 8-12 GPa, labels no
        model can fit at once."""
        problems = []
        for element, name in sorted(self.pseudopotentials.items()):
            wavefunctions, density = suggested_cutoffs(Path(self.pseudo_dir) / name)
            for what, used, suggested in (("ecutwfc", self.ecutwfc, wavefunctions),
                                          ("ecutrho", self.density_cutoff, density)):
                if used < suggested:
                    problems.append(f"{what} {used:g} Ry is below the {suggested:g} Ry that {name} ({element}) "
                                    f"suggests: its stresses would contradict its energies (Pulay stress); raise "
                                    f"{what}")
        return problems

    def calculator(self, workdir: Path, atoms: Atoms) -> Calculator:
        from ase.calculators.espresso import Espresso, EspressoProfile

        executable = self.command.split()[0]
        if shutil.which(executable) is None:
            raise LabelingError(f"{executable} not found on PATH: install Quantum ESPRESSO "
                                "(apt-get install quantum-espresso quantum-espresso-data)")
        calculator = Espresso(profile=EspressoProfile(command=self.command, pseudo_dir=self.pseudo_dir),
                              pseudopotentials=self.pseudopotentials, kpts=self.kpoints(atoms),
                              directory=str(workdir), input_data=self.namelists())
        calculator.template = _pw_input_template()()
        return calculator


def pw_input_atoms(atoms: Atoms) -> Atoms:
    """``atoms`` as pw.x reads them from every writer: the cell rounded to :data:`PW_INPUT_DECIMALS` decimals (Å), as
    aiida-quantumespresso writes it (ASE writes 14; positions both write with 10), so the in-process and the AiiDA
    calculations of a structure read the same numbers and print the same labels."""
    rounded = atoms.copy()
    rounded.set_cell(np.round(atoms.cell.array, PW_INPUT_DECIMALS), scale_atoms=False)
    rounded.set_tags(0)  # ASE's writer ignores tags; AiiDA's StructureData would make each tag its own species
    return rounded


@functools.cache
def _pw_input_template() -> type:
    """ASE's pw.x input template, writing :func:`pw_input_atoms` (made on first use: ASE's calculator module takes
    0.7 s to import)."""
    from ase.calculators.espresso import EspressoTemplate

    class PwInputTemplate(EspressoTemplate):
        def write_input(self, profile: Any, directory: Path, atoms: Atoms, parameters: dict, properties: Any) -> None:
            super().write_input(profile, directory, pw_input_atoms(atoms), parameters, properties)

    return PwInputTemplate


@dataclass
class LabelResult:
    """Labelled structures and the ones whose calculation failed (with the error)."""

    labelled: list[Atoms]
    failed: list[dict[str, str]]


def label_structures(images: Sequence[Atoms], labeler: Labeler, workdir: str | Path) -> LabelResult:
    """Compute energy, forces and (for periodic cells) stress of every structure; failures do not stop the rest."""
    workdir = Path(workdir)
    labelled, failed = [], []
    for k, atoms in enumerate(images):
        where = atoms.info.get("source", f"structure {k}")
        run_dir = workdir / f"{k:05d}"
        run_dir.mkdir(parents=True, exist_ok=True)
        copy = atoms.copy()
        try:
            copy.calc = labeler.calculator(run_dir, copy)
            labels = results_of(copy)
        except LabelingError:
            raise
        except Exception as exc:  # a DFT code can fail in many ways; record it against the structure
            failed.append({"source": str(where), "error": f"{type(exc).__name__}: {exc}"[:500]})
            continue
        labelled.append(labelled_copy(atoms, labels, labeler.name, where))
    return LabelResult(labelled, failed)


def results_of(atoms: Atoms) -> dict[str, Any]:
    """Energy, forces and, for a cell periodic in all three directions, stress of ``atoms``' calculator."""
    labels = {"energy": atoms.get_potential_energy(), "forces": atoms.get_forces()}
    if atoms.pbc.all():
        labels["stress"] = atoms.get_stress()
    return labels


def labelled_copy(atoms: Atoms, labels: dict[str, Any], labeler_name: str, source: str) -> Atoms:
    """A copy of ``atoms`` holding ``labels`` (:func:`results_of`'s), the labeler's name and its source."""
    copy = atoms.copy()
    copy.calc = SinglePointCalculator(copy, **labels)
    copy.info.update({"labeler": labeler_name, "source": source})
    return copy
