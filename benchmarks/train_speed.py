"""Training speed: structures per second of a training step (energy + force loss, backward) and time to a target
validation error with the default trainer.

    python benchmarks/train_speed.py [--json] [--device cuda] [--data train.json] [--target-force-mae 0.2]

Without ``--data`` it uses EMT-labelled Cu-Ni cells (no reference data needed); with the mlearn sets in ../shared it
can time ``--data ../shared/data/mlearn/Mo/training.json``.
"""

from __future__ import annotations

import argparse
import csv
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from sus2_model.demo import emt_dataset
from sus2_model.io import read_structures, write_structures
from sus2_model.train.batches import loss_sums, make_minibatch, split_minibatches
from sus2_model.train.config import load_config
from sus2_model.train.trainer import initial_model, train


def step_rate(images, device: str, dtype: torch.dtype, batch_size: int, repeats: int = 3) -> float:
    """Structures per second for forward + backward of the energy + force loss."""
    model = initial_model(load_config(None, train=["unused"]), images).to(device=device, dtype=dtype)
    batches = [make_minibatch(g, model, {None: -1}).to(device, dtype)
               for g in split_minibatches(images, batch_size, np.random.default_rng(0))]
    def epoch():
        for mb in batches:
            sums, norms, _ = loss_sums(model, mb, True, False)
            (sums["energy"] / norms["energy"] + 0.02 * sums["forces"] / norms["forces"]).backward()
    epoch()
    start = time.perf_counter()
    for _ in range(repeats):
        epoch()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return repeats * len(images) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--data")
    parser.add_argument("--target-force-mae", type=float, default=0.1)
    parser.add_argument("--max-time", type=float, default=120.0)
    args = parser.parse_args()
    images = read_structures(args.data) if args.data else emt_dataset(60, seed=3)
    rates = {dtype: round(step_rate(images, args.device, getattr(torch, dtype), 16), 2)
             for dtype in ("float64", "float32")}
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "train.extxyz"
        write_structures(data, images)
        config = load_config(None, train=[str(data)], device=args.device, max_time=args.max_time)
        start = time.perf_counter()
        report = train(config, Path(tmp) / "run", progress=not args.json)
        with open(Path(tmp) / "run" / "metrics.csv") as fh:
            rows = list(csv.DictReader(fh))
    reached = next((float(r["seconds"]) for r in rows if float(r["valid_force_mae_ev_a"]) <= args.target_force_mae), None)
    doc = {"benchmark": "train_speed", "device": args.device, "data": args.data or "EMT Cu-Ni (60 cells)",
           "n_structures": len(images), "n_atoms": int(sum(len(a) for a in images)),
           "train_step_structures_per_s": rates, "target_force_mae_ev_a": args.target_force_mae,
           "seconds_to_target": reached, "total_seconds": round(time.perf_counter() - start, 1),
           "final_valid": report.get("valid_shared"), "parameters": report["parameters"]}
    print(json.dumps(doc, indent=2))


if __name__ == "__main__":
    main()
