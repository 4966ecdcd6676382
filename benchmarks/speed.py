"""Speed of SUS2 next to the peers a user would pick instead (MACE-small, SevenNet-0), in one run.

Reports µs per atom-step — one energy + forces + stress evaluation through each package's ASE calculator,
neighbour list included, positions changed every step — on fcc Cu supercells of 256, 2048 and 16384 atoms, with
1 thread and all threads.  SUS2: an L2 and an L3 model (the published Alloy l2k3 and Cathode l3k3 when
../shared/data is present, otherwise generated models of the same shape; weights do not change the cost).
MACE: an untrained "small" model (128x0e, max_ell 3, correlation 3, 2 interactions, 5 Å); SevenNet-0 from the
checkpoint inside the ``sevenn`` wheel.  Prints JSON with the ratios to each peer.

    python benchmarks/speed.py [--json] [--device cuda] [--sizes 256 2048 16384] [--peer-max-atoms 2048]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from ase.build import bulk

from sus2_model import Sus2Calculator, Sus2Potential, load_model
from sus2_model.templates import untrained_mtp

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "sus2_published"


def sus2_models() -> dict[str, tuple[Sus2Potential, str]]:
    """The L2 and L3 SUS2 models to time, with a note of where they come from."""
    if (SHARED / "Alloy" / "alloy.mtp").is_file():
        l2 = load_model(SHARED / "Alloy" / "alloy.mtp")
        cathode = load_model(SHARED / "Cathode" / "cathod.mtp")
        cathode.species = ["Cu"] + [s for s in cathode.species if s != "Cu"][1:]  # time its L3 shape on Cu
        return {"sus2-L2": (l2, "published Alloy l2k3 (53 species)"),
                "sus2-L3": (cathode, "published Cathode l3k3 (8 species, type 0 relabelled Cu)")}
    l2 = Sus2Potential(untrained_mtp(1, 2, 3, 20, radial_basis_size=5, max_dist=6.0), ["Cu"])
    l3 = Sus2Potential(untrained_mtp(1, 3, 4, 24, radial_basis_size=8, max_dist=6.5), ["Cu"])
    return {"sus2-L2": (l2, "generated l2k3, R=5, 6 Å"), "sus2-L3": (l3, "generated l3k4, R=8, 6.5 Å")}


def _allow_peer_pickles() -> None:
    """e3nn 0.4.4 (pinned by mace-torch) and SevenNet load their own packaged files with ``torch.load`` defaults
    that torch >= 2.6 refuses; these are the peers' trusted package files, so allow full unpickling for them."""
    os.environ["TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"] = "1"


def mace_small(device: str, dtype: str):
    """An untrained MACE 'small' model wrapped in MACE's own ASE calculator."""
    _allow_peer_pickles()
    from e3nn import o3
    from mace import modules
    from mace.calculators import MACECalculator

    previous = torch.get_default_dtype()
    torch.set_default_dtype(getattr(torch, dtype))
    model = modules.ScaleShiftMACE(
        r_max=5.0, num_bessel=8, num_polynomial_cutoff=5, max_ell=3,
        interaction_cls=modules.interaction_classes["RealAgnosticResidualInteractionBlock"],
        interaction_cls_first=modules.interaction_classes["RealAgnosticResidualInteractionBlock"],
        num_interactions=2, num_elements=1, hidden_irreps=o3.Irreps("128x0e"), MLP_irreps=o3.Irreps("16x0e"),
        atomic_energies=np.array([-3.0]), avg_num_neighbors=40.0, atomic_numbers=[29], correlation=3,
        gate=torch.nn.functional.silu, atomic_inter_scale=1.0, atomic_inter_shift=0.0,
    )
    torch.set_default_dtype(previous)
    return MACECalculator(models=model, device=device, default_dtype=dtype)


def sevennet0(device: str):
    """SevenNet-0 through its ASE calculator (checkpoint shipped in the wheel)."""
    _allow_peer_pickles()
    from sevenn.calculator import SevenNetCalculator

    return SevenNetCalculator("7net-0", device=device)


def time_calculator(calc, n_atoms: int, steps: int, seed: int = 0) -> float:
    """µs per atom-step: energy + forces + stress, positions moved every step."""
    atoms = bulk("Cu", "fcc", a=3.61, cubic=True).repeat(round((n_atoms / 4) ** (1 / 3)))
    assert len(atoms) == n_atoms
    rng = np.random.default_rng(seed)
    atoms.calc = calc
    atoms.rattle(0.02, rng=rng)
    atoms.get_forces(), atoms.get_stress()  # warm-up
    start = time.perf_counter()
    for _ in range(steps):
        atoms.positions += rng.normal(0, 0.002, atoms.positions.shape)
        atoms.get_potential_energy(), atoms.get_forces(), atoms.get_stress()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / steps / n_atoms * 1e6


def steps_for(n_atoms: int, est_us: float, budget_s: float) -> int:
    """As many steps as fit a time budget (at least one)."""
    return max(1, min(20, int(budget_s / max(n_atoms * est_us * 1e-6, 1e-9))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true", help="print only the JSON document")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 2048, 16384])
    parser.add_argument("--threads", type=int, nargs="+", default=sorted({1, os.cpu_count() or 1}))
    parser.add_argument("--peer-max-atoms", type=int, default=2048, help="largest cell the (slow) peers run on")
    parser.add_argument("--budget", type=float, default=6.0, help="seconds per measurement")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    rows = []

    def record(name, note, dtype, n, threads, us):
        rows.append({"model": name, "note": note, "dtype": dtype, "atoms": n, "threads": threads,
                     "us_per_atom_step": round(us, 2)})
        if not args.json:
            print(f"{name:10s} {dtype:8s} {n:6d} atoms {threads:2d} thr  {us:10.1f} µs/atom-step", flush=True)

    models = sus2_models()
    peers = {"mace-small": lambda: mace_small(args.device, "float32"), "sevennet-0": lambda: sevennet0(args.device)}
    for threads in args.threads:
        torch.set_num_threads(threads)
        for name, (model, note) in models.items():
            for dtype in ("float32", "float64"):
                calc = Sus2Calculator(model, device=args.device, dtype=dtype)
                for n in args.sizes:
                    record(name, note, dtype, n, threads, time_calculator(calc, n, steps_for(n, 60, args.budget)))
        for name, make in peers.items():
            calc = make()
            for n in [s for s in args.sizes if s <= args.peer_max_atoms]:
                us = time_calculator(calc, n, steps_for(n, 5000 if name == "mace-small" else 20000, args.budget))
                record(name, "float32" if name == "mace-small" else "checkpoint dtype", "float32", n, threads, us)

    ratios = []
    for row in rows:
        if not row["model"].startswith("sus2"):
            continue
        for peer in ("mace-small", "sevennet-0"):
            match = [r for r in rows if r["model"] == peer and r["atoms"] == row["atoms"]
                     and r["threads"] == row["threads"]]
            if match:
                ratios.append({"sus2": row["model"], "dtype": row["dtype"], "atoms": row["atoms"],
                               "threads": row["threads"], "peer": peer,
                               "speedup": round(match[0]["us_per_atom_step"] / row["us_per_atom_step"], 1)})
    doc = {"benchmark": "speed", "device": args.device, "machine": platform.processor() or platform.machine(),
           "cpu_count": os.cpu_count(), "torch": torch.__version__, "results": rows, "ratios": ratios}
    print(json.dumps(doc, indent=2))


if __name__ == "__main__":
    main()
