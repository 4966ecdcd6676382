"""Multi-domain training on a controlled problem: the same kind of structures labelled by two methods.

Domain A: ASE's EMT for Cu-Ni, broad sampling (lattice ±6 %, rattles up to 0.1 Å, 4- and 32-atom cells).
Domain B: a different surface, E_B(R) = 1.2 E_A(0.97 R) + 0.3 eV/atom (shifted references, 3 % shorter and stiffer
bonds), the expensive method: only a few small cells near equilibrium (a few percent of A's data).  The test set
of B is sampled like A (where B is needed).  Held-out error on B for:

    B only                  train on the B data alone
    B + DBS                 the B data and the bridging set, without A (what the DBS alone buys)
    naive pooling           A, B and the bridging set in one task (no task parameters)
    tasks                   shared theta_C + task-specific theta_T with selective L2, A and B
    tasks + DBS             as above plus a domain-bridging set: structures of A selected by farthest-point
                            sampling in SUS2 descriptor space and relabelled with B

Prints a JSON ablation table.   python benchmarks/multidomain.py [--n-a 200] [--n-b 6] [--dbs 4] [--epochs 60]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from ase.build import bulk
from ase.calculators.singlepoint import SinglePointCalculator

from sus2_model import error_metrics, load_model, predict
from sus2_model.dbs import choose_dbs
from sus2_model.demo import emt_dataset
from sus2_model.io import write_structures
from sus2_model.train.config import load_config
from sus2_model.train.trainer import train

SCALE, SHRINK, OFFSET = 1.2, 0.97, 0.3


def relabel_b(images):
    """Domain-B labels of structures: E_B(R) = SCALE * E_A(SHRINK * R) + OFFSET * n (forces and stress follow)."""
    from ase.calculators.emt import EMT

    out = []
    for atoms in images:
        small = atoms.copy()
        small.set_cell(atoms.cell.array * SHRINK, scale_atoms=True)
        small.calc = EMT()
        energy = SCALE * small.get_potential_energy() + OFFSET * len(atoms)
        forces = SCALE * SHRINK * small.get_forces()
        stress = SCALE * small.get_stress() * SHRINK**3 * SHRINK ** -2  # dE/deps / V at the original volume
        b = atoms.copy()
        b.calc = SinglePointCalculator(b, energy=energy, forces=forces, stress=stress)
        b.info.update(atoms.info)
        out.append(b)
    return out


def narrow_b_structures(n: int, seed: int) -> list:
    """What an expensive method affords: small Cu-Ni cells near equilibrium (strain ±1 %, rattle ≤ 0.03 Å)."""
    rng = np.random.default_rng(seed)
    images = []
    for k in range(n):
        atoms = bulk("Cu", "fcc", a=3.61 * rng.uniform(0.99, 1.01), cubic=True).repeat((1, 1, 2))
        atoms.symbols[rng.random(len(atoms)) < 0.2] = "Ni"
        atoms.rattle(rng.uniform(0.01, 0.03), seed=seed * 1000 + k)
        atoms.info["source"] = f"narrow:{seed}:{k}"
        images.append(atoms)
    return images


def run(name: str, datasets: list[dict], test_b, tmp: Path, epochs: int, max_time: float, task: str | None
        ) -> dict:
    config = load_config(None, train=datasets, epochs=epochs, n_radial=3, max_level=16, cutoff=5.0,
                         optimizer="lbfgs", max_time=max_time, valid_fraction=0.0)
    start = time.perf_counter()
    train(config, tmp / name, progress=False)
    model = load_model(tmp / name / "model.pt")
    metrics = error_metrics(test_b, predict(model, test_b, task=task))
    print(f"{name}: {metrics['energy_mae_mev_atom']:.2f} meV/atom, {metrics['force_mae_ev_a']:.4f} eV/Å",
          file=sys.stderr, flush=True)
    return {"setting": name, "train_seconds": round(time.perf_counter() - start, 1),
            "test_B_energy_mae_mev_atom": round(metrics["energy_mae_mev_atom"], 2),
            "test_B_force_mae_ev_a": round(metrics["force_mae_ev_a"], 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n-a", type=int, default=200)
    parser.add_argument("--n-b", type=int, default=6)
    parser.add_argument("--dbs", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--b-weight", type=float, default=1.0,
                        help="loss weight of the B data and the DBS when trained beside A")
    parser.add_argument("--max-time", type=float, default=100.0, help="seconds of training per setting")
    args = parser.parse_args()
    pool_a = emt_dataset(args.n_a, seed=11)
    b_train = relabel_b(narrow_b_structures(args.n_b, seed=12))
    test_b = relabel_b(emt_dataset(40, seed=13))
    chosen = choose_dbs(pool_a, args.dbs)
    dbs = relabel_b([pool_a[i] for i in chosen])
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        files = {}
        for key, images in (("a", pool_a), ("b", b_train), ("dbs", dbs)):
            files[key] = str(tmp / f"{key}.extxyz")
            write_structures(files[key], images)
        rows.append(run("B only", [{"path": files["b"]}], test_b, tmp, args.epochs, args.max_time, None))
        rows.append(run("B + DBS", [{"path": files["b"]}, {"path": files["dbs"]}], test_b, tmp, args.epochs,
                        args.max_time, None))
        w = args.b_weight
        rows.append(run("naive pooling", [{"path": files["a"]}, {"path": files["b"], "weight": w},
                                          {"path": files["dbs"], "weight": w}],
                        test_b, tmp, args.epochs, args.max_time, None))
        rows.append(run("tasks", [{"path": files["a"], "task": "A"}, {"path": files["b"], "task": "B", "weight": w}],
                        test_b, tmp, args.epochs, args.max_time, "B"))
        rows.append(run("tasks + DBS", [{"path": files["a"], "task": "A"}, {"path": files["b"], "task": "B", "weight": w},
                                        {"path": files["dbs"], "task": "B", "weight": w}], test_b, tmp, args.epochs,
                        args.max_time, "B"))
    print(json.dumps({"benchmark": "multidomain", "n_A": args.n_a, "n_B": args.n_b, "n_DBS": args.dbs, "b_weight": args.b_weight,
                      "domain_B": f"E_B(R) = {SCALE} E_EMT({SHRINK} R) + {OFFSET} eV/atom", "ablation": rows}, indent=2))


if __name__ == "__main__":
    main()
