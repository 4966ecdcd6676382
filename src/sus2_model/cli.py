"""``sus2`` command line: ``eval`` (errors of a model on a dataset) and ``info`` (hyperparameters)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Sequence

from .errors import Sus2ModelError
from .io import read_structures
from .predict import error_metrics, load_model, predict


def _eval(args: argparse.Namespace) -> int:
    model = load_model(args.model, args.species)
    images = read_structures(args.data, species=model.species)
    start = time.perf_counter()
    predictions = predict(model, images, batch_size=args.batch_size, device=args.device, dtype=args.dtype,
                          progress=not args.json and sys.stderr.isatty())
    metrics = error_metrics(images, predictions)
    metrics["seconds"] = round(time.perf_counter() - start, 3)
    if args.json:
        print(json.dumps(metrics, indent=2))
    else:
        width = max(len(k) for k in metrics)
        for key, value in metrics.items():
            print(f"{key:<{width}}  {value:.4f}" if isinstance(value, float) else f"{key:<{width}}  {value}")
    return 0


def _info(args: argparse.Namespace) -> int:
    model = load_model(args.model, args.species)
    info = {
        **model.hyper,
        "species_count": model.species_count,
        "species": model.species,
        "cutoff": model.r_cut,
        "radial_basis_size": model.radial_basis_size,
        "radial_funcs_count": int(model.radial_coeffs.shape[0]),
        "scaling_channels": model.n_channels,
        "basic_moments": model.moments.n_basic,
        "scalar_descriptors": model.moments.n_scalar,
        "parameters": model.parameter_count(),
    }
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        for key, value in info.items():
            print(f"{key:<20}  {value}")
    return 0


def _train(args: argparse.Namespace) -> int:
    from .train.config import load_config
    from .train.trainer import train

    overrides = {"train": args.train, "valid": args.valid, "device": args.device, "dtype": args.dtype,
                 "epochs": args.epochs, "max_time": args.max_time, "seed": args.seed}
    config = load_config(args.config, **overrides)
    report = train(config, args.out, resume=args.resume, progress=sys.stderr.isatty())
    print(json.dumps(report, indent=2))
    return 0


def _dbs_select(args: argparse.Namespace) -> int:
    from .dbs import select_dbs

    summary = select_dbs(args.source, args.out, fraction=args.fraction, min_count=args.min_count,
                         model=args.model, species=args.species, seed=args.seed)
    print(json.dumps(summary, indent=2))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The ``sus2`` argument parser (model commands)."""
    parser = argparse.ArgumentParser(prog="sus2", description="SUS2-MLIP: evaluate, inspect, train and screen.")
    sub = parser.add_subparsers(dest="command", required=True)
    ev = sub.add_parser("eval", help="errors of a model on a labelled dataset")
    ev.add_argument("model", help=".mtp model file")
    ev.add_argument("data", help="dataset: .cfg, mlearn .json, extxyz, ASE .db, ...")
    ev.add_argument("--species", help="species of the model's types: El,El,... or a JSON/text file")
    ev.add_argument("--json", action="store_true", help="print JSON")
    ev.add_argument("--batch-size", type=int, default=32)
    ev.add_argument("--device", default="cpu")
    ev.add_argument("--dtype", default="float64", choices=["float64", "float32"])
    ev.set_defaults(func=_eval)
    info = sub.add_parser("info", help="hyperparameters and parameter count of a model")
    info.add_argument("model")
    info.add_argument("--species")
    info.add_argument("--json", action="store_true")
    info.set_defaults(func=_info)
    tr = sub.add_parser("train", help="train a SUS2 model (defaults need no config for one dataset)")
    tr.add_argument("--train", nargs="+", help="training data file(s); or give them in --config")
    tr.add_argument("--valid", nargs="+", help="validation data file(s) (default: a split of the training data)")
    tr.add_argument("--out", required=True, help="output folder (model.pt, model.mtp, metrics, plots, checkpoint)")
    tr.add_argument("--config", help="YAML training config")
    tr.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    tr.add_argument("--device")
    tr.add_argument("--dtype", choices=["float64", "float32"])
    tr.add_argument("--epochs", type=int)
    tr.add_argument("--max-time", type=float, help="seconds")
    tr.add_argument("--seed", type=int)
    tr.set_defaults(func=_train)
    dbs = sub.add_parser("dbs", help="domain-bridging sets")
    dbs_sub = dbs.add_subparsers(dest="dbs_command", required=True)
    sel = dbs_sub.add_parser("select", help="pick the structures that best cover the descriptor space")
    sel.add_argument("source", help="structures to choose from (any readable format)")
    sel.add_argument("--fraction", type=float, default=0.001)
    sel.add_argument("--min-count", type=int, default=1)
    sel.add_argument("--out", required=True, help="output file (.extxyz, .cfg, ...); provenance goes to OUT.json")
    sel.add_argument("--model", help="model whose descriptors to use (default: one initialised from the data)")
    sel.add_argument("--species", help="species for .cfg input")
    sel.add_argument("--seed", type=int, default=0)
    sel.set_defaults(func=_dbs_select)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``sus2`` console script."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (Sus2ModelError, ValueError, OSError) as exc:
        print(f"sus2 {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
