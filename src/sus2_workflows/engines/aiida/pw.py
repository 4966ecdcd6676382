"""Quantum ESPRESSO labels under AiiDA: a campaign's :class:`~sus2_workflows.steps.label.QuantumEspressoLabeler`
mapped onto aiida-quantumespresso's ``PwBaseWorkChain`` (its restarts and error handlers), the labeler's own
pseudopotential files as an aiida-pseudo family (nothing downloaded), and a pw.x code on this machine where the user
names none.  The labeler alone decides every pw.x setting, so a structure's AiiDA labels equal the in-process ones."""

from __future__ import annotations

import shlex
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from aiida import orm
from aiida.common.exceptions import NotExistent

from ...errors import LabelingError
from ...hashing import content_key, file_sha256
from ...steps.label import QuantumEspressoLabeler, pw_input_atoms
from .profiles import config_folder

LOCAL_COMPUTER = "sus2-localhost"  # this machine, for pw.x where no code is named (the label gets a launcher's hash)
LOCAL_POLL_SECONDS = 1.0  # how often the daemon asks this machine's scheduler (ps) about its jobs
# per pw.x run where the options give none: PwBaseWorkChain stops pw.x at 95 % of it (max_seconds) and restarts it,
# which the in-process labeler never does, so it is long enough never to matter on this machine
MAX_WALLCLOCK_SECONDS = 7 * 24 * 3600
PROCESS_COUNT_FLAGS = ("-np", "-n", "--np")  # an MPI launcher's process-count flag in a labeler's command
PW_EXECUTABLE = "pw.x"  # the word of a labeler's command that is pw.x (launcher before, its flags after; else last)
FAMILY_WAIT_SECONDS = 30  # how long to wait for a pseudopotential family another process is creating


def pseudo_family(labeler: QuantumEspressoLabeler) -> Any:
    """The aiida-pseudo family of exactly the labeler's pseudopotential files (one per element, from its
    ``pseudo_dir``), labelled ``sus2/<hash of their names and contents>``: created on first use, the same nodes
    after."""
    from aiida_pseudo.data.pseudo import UpfData
    from aiida_pseudo.groups.family import PseudoPotentialFamily

    files = {element: Path(labeler.pseudo_dir) / name for element, name in sorted(labeler.pseudopotentials.items())}
    missing = [f"{element}: {path}" for element, path in files.items() if not path.is_file()]
    if missing:
        raise LabelingError("pseudopotential files not found: " + ", ".join(missing))
    label = "sus2/" + content_key({e: [p.name, file_sha256(p)] for e, p in files.items()})[:12]
    if not PseudoPotentialFamily.collection.count(filters={"label": label}):
        with tempfile.TemporaryDirectory() as folder:
            for path in files.values():
                shutil.copyfile(path, Path(folder) / path.name)
            try:
                PseudoPotentialFamily.create_from_folder(
                    Path(folder), label, pseudo_type=UpfData,
                    description="SUS2 labeler pseudopotentials: " + ", ".join(p.name for p in files.values()))
            except Exception as exc:  # another process created it meanwhile (a uniqueness error), or a bad file
                if not PseudoPotentialFamily.collection.count(filters={"label": label}):
                    raise LabelingError(f"pseudopotential family {label}: {exc}") from exc
    family = PseudoPotentialFamily.collection.get(label=label)
    deadline = time.monotonic() + FAMILY_WAIT_SECONDS
    while set(family.elements) != set(files) and time.monotonic() < deadline:  # its creator adds the nodes last
        time.sleep(0.5)
        family = PseudoPotentialFamily.collection.get(label=label)
    if set(family.elements) != set(files):
        raise LabelingError(f"pseudopotential family {label}: the files describe {sorted(family.elements)}, the "
                            f"labeler names {sorted(files)}")
    return family


def local_computer(launcher: list[str]) -> orm.Computer:
    """This machine as an AiiDA computer (direct scheduler, local transport) whose MPI launcher is ``launcher``."""
    label = LOCAL_COMPUTER + (f"-{content_key(launcher)[:8]}" if launcher else "")
    try:
        computer = orm.load_computer(label)
        if not computer.is_user_configured(orm.User.collection.get_default()):  # its creator stopped short
            computer.configure(safe_interval=0.0, use_login_shell=False)
        return computer
    except NotExistent:
        scratch = config_folder() / "scratch" / label
        computer = orm.Computer(label=label, hostname="localhost", transport_type="core.local",
                                scheduler_type="core.direct", workdir=str(scratch),
                                description="this machine, for SUS2 calculations (pw.x labels, sus2 train)")
        computer.set_mpirun_command(launcher or ["mpirun", "-np", "{tot_num_mpiprocs}"])
        computer.set_minimum_job_poll_interval(LOCAL_POLL_SECONDS)
        computer.store()
        # no login shell: the daemon's environment is this machine's already, and sourcing the user's shell start-up
        # files for every transport command is slow (it hung 60 s per command on a stale pyenv lock here)
        computer.configure(safe_interval=0.0, use_login_shell=False)
        return computer


def local_pw_code(command: str) -> tuple[orm.AbstractCode, dict[str, Any], list[str]]:
    """The code that runs pw.x as the labeler's ``command`` does on this machine (``pw.x``, an MPI launcher with its
    process count before it, e.g. ``mpirun -np 4 pw.x``, pw.x's own flags after it, e.g. ``-nk 2``), the calculation
    options that go with it and pw.x's flags (PwCalculation's ``settings.CMDLINE``)."""
    words = shlex.split(command)
    at = next((k for k, word in enumerate(words) if Path(word).name == PW_EXECUTABLE), len(words) - 1)
    executable = shutil.which(words[at]) if words else None
    if executable is None:
        raise LabelingError(f"labeler command {command!r}: no pw.x on PATH (apt-get install quantum-espresso), or "
                            "give an AiiDA code (--pw-code)")
    launcher, flags, processes = words[:at], words[at + 1:], 1
    if launcher:
        flag = next((k for k, word in enumerate(launcher) if word in PROCESS_COUNT_FLAGS), None)
        if flag is None or flag + 1 >= len(launcher) or not launcher[flag + 1].isdigit():
            raise LabelingError(f"labeler command {command!r}: name the MPI process count ({PROCESS_COUNT_FLAGS[0]} "
                                "N), or give an AiiDA code (--pw-code) and its options")
        processes, launcher[flag + 1] = int(launcher[flag + 1]), "{tot_num_mpiprocs}"
    computer, label = local_computer(launcher), f"pw-{content_key(executable)[:8]}"  # one code per executable
    try:
        code = orm.load_code(f"{label}@{computer.label}")
    except NotExistent:
        code = orm.InstalledCode(computer=computer, filepath_executable=executable, label=label,
                                 default_calc_job_plugin="quantumespresso.pw").store()
    return code, {"resources": {"num_machines": 1, "num_mpiprocs_per_machine": processes},
                  "withmpi": bool(launcher)}, flags


def pw_base_inputs(labeler: QuantumEspressoLabeler, atoms: Any, code: orm.AbstractCode, options: dict[str, Any],
                   family: Any, flags: list[str] | None = None) -> dict[str, Any]:
    """``PwBaseWorkChain``'s inputs for one SCF with forces and stress of ``atoms``: the labeler's namelists,
    k-point grid and pseudopotentials, the code, its scheduler ``options`` and pw.x's command-line ``flags``."""
    structure = orm.StructureData(ase=pw_input_atoms(atoms))
    kpoints = orm.KpointsData()
    kpoints.set_kpoints_mesh(list(labeler.kpoints(atoms)))
    parameters = {namelist.upper(): dict(entries) for namelist, entries in labeler.namelists().items()}
    parameters["CONTROL"] = {"calculation": "scf", **parameters.get("CONTROL", {})}
    return {"kpoints": kpoints,
            "pw": {"code": code, "structure": structure, "parameters": orm.Dict(parameters),
                   "pseudos": family.get_pseudos(structure=structure),
                   **({"settings": orm.Dict({"CMDLINE": list(flags)})} if flags else {}),
                   "metadata": {"options": {"max_wallclock_seconds": MAX_WALLCLOCK_SECONDS, **options}}}}


def scf_not_converged(node: orm.WorkflowNode) -> bool:
    """Whether a failed ``PwBaseWorkChain``'s last calculation stopped short of self-consistency (after its own
    restarts with safer mixing)."""
    from aiida_quantumespresso.calculations.pw import PwCalculation

    calculations = sorted((c for c in node.called if isinstance(c, orm.CalcJobNode)), key=lambda c: c.ctime)
    not_converged = PwCalculation.exit_codes.ERROR_ELECTRONIC_CONVERGENCE_NOT_REACHED.status
    return bool(calculations) and calculations[-1].exit_status == not_converged
