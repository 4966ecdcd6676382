"""Widom insertion throughput for a guest in a real MOF: trial insertions per second with SUS2's local update, next
to the same model evaluating the whole loaded cell (energies only, 8 cells per call) and the same loop through the
ASE calculator (energy and forces, as ASE computes them), in the same run, on the same trials.  Counts the trials
the model evaluated apart from those rejected by overlap (cheap, no model call).  Then the same for D3(BJ)
dispersion (PBE, two-body, the dftd3 library's cutoffs): its local update on the evaluated trials next to the dftd3
library's energy of the whole loaded cell.  Prints JSON.

    python benchmarks/mof.py [--framework ../shared/data/mofs/Mg-MOF-74_Mg-DOBDC.cif] [--guest CO2] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import torch
from ase import Atoms
from scipy.spatial.transform import Rotation

from sus2_model import Sus2Calculator
from sus2_model.insertion import LocalInsertion
from sus2_model.neighbors import build_batch
from sus2_model.predict import load_model
from sus2_workflows.steps.dispersion import LocalDispersion, dispersion_calculator
from sus2_workflows.steps.mof import framework_supercell, guest_molecule
from sus2_workflows.steps.targets import read_file

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def trials(insertion: LocalInsertion, n: int, seed: int = 0) -> np.ndarray:
    """``n`` uniform random centres and orientations of the guest in the cell: positions (n, g, 3)."""
    rng = np.random.default_rng(seed)
    centres = rng.random((n, 3)) @ insertion.images.cell
    return insertion.positions(centres, Rotation.random(n, random_state=rng).as_matrix())


@torch.no_grad()
def energies_only(model, images: list[Atoms]) -> np.ndarray:
    """Total energies of whole cells in one model call, no forces: the fair full-cell peer of an insertion."""
    batch = build_batch(images, model.r_cut, model.species_index).to("cpu", model.shift.dtype)
    return model(batch, forces=False, stress=False)["energy"].numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--framework", default=str(SHARED / "mofs" / "Mg-MOF-74_Mg-DOBDC.cif"))
    parser.add_argument("--guest", default="CO2")
    parser.add_argument("--model", default=str(SHARED / "sus2_published" / "m3gnet" / "l2k3.mtp"))
    parser.add_argument("--trials", type=int, default=20_000, help="trial insertions for the local update")
    parser.add_argument("--peer-trials", type=int, default=40, help="evaluated trials for each full-cell peer")
    parser.add_argument("--d3-trials", type=int, default=2000, help="evaluated trials for the local D3 update")
    parser.add_argument("--batch", type=int, default=2000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    model = load_model(args.model)
    (target,) = read_file(args.framework)
    guest = guest_molecule(args.guest)
    framework = framework_supercell(target.atoms, model.r_cut, guest)
    start = time.perf_counter()
    insertion = LocalInsertion(model, framework, guest, name=target.name)
    setup_s = time.perf_counter() - start

    positions = trials(insertion, args.trials)
    start = time.perf_counter()
    energies, overlap = [], []
    for k in range(0, len(positions), args.batch):
        result = insertion.energy_change(positions[k:k + args.batch])
        energies.append(result.energy)
        overlap.append(result.overlap)
    local_s = time.perf_counter() - start
    energy, overlap = np.concatenate(energies), np.concatenate(overlap)
    evaluated = np.flatnonzero(~overlap)

    peer = evaluated[: args.peer_trials]
    loaded = [framework + Atoms(guest.get_chemical_symbols(), positions=positions[k]) for k in peer]
    e_framework, e_guest = (float(energies_only(model, [a])[0]) for a in (framework, guest))
    start = time.perf_counter()
    full = np.concatenate([energies_only(model, loaded[k:k + 8]) for k in range(0, len(loaded), 8)])
    full -= e_framework + e_guest
    full_s = time.perf_counter() - start
    calculator = Sus2Calculator(model)
    start = time.perf_counter()
    ase_energies = []
    for atoms in loaded:
        atoms.calc = calculator
        ase_energies.append(atoms.get_potential_energy() - e_framework - e_guest)
    ase_s = time.perf_counter() - start

    start = time.perf_counter()
    dispersion = LocalDispersion(framework, guest, name=target.name)
    d3_setup_s = time.perf_counter() - start
    d3_trials = evaluated[: args.d3_trials]
    start = time.perf_counter()
    d3_local = dispersion.evaluate(dispersion.images.wrap(positions[d3_trials]))
    d3_local_s = time.perf_counter() - start
    library = dispersion_calculator()
    alone = guest.copy()
    alone.pbc = False
    e0 = library.get_potential_energy(framework) + library.get_potential_energy(alone)
    start = time.perf_counter()
    d3_full = np.array([library.get_potential_energy(atoms) for atoms in loaded]) - e0
    d3_full_s = time.perf_counter() - start

    out = {
        "framework": target.name, "guest": args.guest, "model": Path(args.model).name,
        "framework_atoms": len(framework), "supercell": framework.info["supercell"], "cutoff_A": model.r_cut,
        "threads": int(os.environ.get("OMP_NUM_THREADS", "0")) or os.cpu_count(), "setup_s": round(setup_s, 3),
        "local": {"trials": len(positions), "overlap_rejected": int(overlap.sum()), "evaluated": len(evaluated),
                  "seconds": round(local_s, 3), "trials_per_s": round(len(positions) / local_s, 1),
                  "evaluated_per_s": round(len(evaluated) / local_s, 1)},
        "full_cell_batched_energies": {"evaluated": len(peer), "seconds": round(full_s, 3),
                              "evaluated_per_s": round(len(peer) / full_s, 2)},
        "ase_calculator_loop": {"evaluated": len(peer), "seconds": round(ase_s, 3),
                                "evaluated_per_s": round(len(peer) / ase_s, 2)},
        "speed_up_vs_full_cell": round((len(evaluated) / local_s) / (len(peer) / full_s), 1),
        "speed_up_vs_ase": round((len(evaluated) / local_s) / (len(peer) / ase_s), 1),
        "max_abs_difference_eV": float(max(np.abs(energy[peer] - full).max(),
                                           np.abs(energy[peer] - ase_energies).max())),
        "d3_local": {"setup_s": round(d3_setup_s, 3), "evaluated": len(d3_trials), "seconds": round(d3_local_s, 3),
                     "evaluated_per_s": round(len(d3_trials) / d3_local_s, 1)},
        "d3_full_cell_dftd3": {"evaluated": len(peer), "seconds": round(d3_full_s, 3),
                               "evaluated_per_s": round(len(peer) / d3_full_s, 2)},
        "d3_speed_up": round((len(d3_trials) / d3_local_s) / (len(peer) / d3_full_s), 1),
        # the library's periodic cell holds the guest's images (its 60-bohr cutoff exceeds the supercell), the local
        # update does not (infinite dilution): this difference is that, not an error (tests check 3e-8 eV)
        "d3_guest_image_difference_eV": float(np.abs(d3_local[: len(peer)] - d3_full).max()),
    }
    print(json.dumps(out, indent=None if args.json else 2))


if __name__ == "__main__":
    main()
