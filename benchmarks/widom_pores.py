"""Widom insertions to convergence in a dense framework, with trial centres drawn from the pore map (the voxels
where the guest need not overlap the framework, ``steps.pores``) next to uniform centres over the whole cell, in the
same run with the same model, guest, seed and settings: trials, how many overlapped, how many the model evaluated,
whether the Henry coefficient converged, K_H and Q_st with their errors, wall time (the map's own time apart).
Prints JSON.

    python benchmarks/widom_pores.py [--framework ../shared/data/mofs/CALF-20.cif] [--guest CO2] [--json]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from sus2_model.insertion import LocalInsertion, guest_shape
from sus2_model.predict import load_model
from sus2_workflows.steps.mof import framework_supercell, guest_molecule
from sus2_workflows.steps.pores import pore_map
from sus2_workflows.steps.targets import read_file
from sus2_workflows.steps.widom import WidomResult, WidomSettings, widom

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def summary(result: WidomResult) -> dict:
    """What the run cost and found."""
    return {"trials": result.n_trials, "overlapped": result.n_overlap, "evaluated": result.n_evaluated,
            "open_fraction": round(result.open_fraction, 4), "converged": result.converged,
            "henry_mol_kg_pa": result.henry, "henry_rel_error": round(result.henry_error / result.henry, 4),
            "qst_kj_mol": round(-result.enthalpy_kj_mol, 2), "qst_error": round(result.enthalpy_error, 2),
            "wall_s": round(result.wall_s, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--framework", default=str(SHARED / "mofs" / "CALF-20.cif"))
    parser.add_argument("--guest", default="CO2")
    parser.add_argument("--model", default=str(SHARED / "sus2_published" / "m3gnet" / "l2k3.mtp"))
    parser.add_argument("--temperature", type=float, default=298.0)
    parser.add_argument("--max-trials", type=int, default=500_000)
    parser.add_argument("--json", action="store_true", help="print JSON (the only format)")
    args = parser.parse_args()
    model = load_model(args.model)
    guest = guest_molecule(args.guest)
    framework = framework_supercell(read_file(Path(args.framework))[0].atoms, model.r_cut, guest)
    energy = LocalInsertion(model, framework, guest, name=Path(args.framework).stem)
    settings = WidomSettings(temperature=args.temperature, max_trials=args.max_trials)
    start = time.perf_counter()
    pores = pore_map(energy.images, guest_shape(guest))
    map_s = time.perf_counter() - start
    report = {"framework": Path(args.framework).name, "guest": args.guest, "framework_atoms": len(framework),
              "map": {"voxels": int(len(pores.open_voxels) / pores.fraction) if pores.fraction else 0,
                      "open_fraction": round(pores.fraction, 4), "build_s": round(map_s, 2)},
              "pore_map": summary(widom(energy, framework, guest, settings, pores=pores)),
              "uniform": summary(widom(energy, framework, guest, settings))}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
