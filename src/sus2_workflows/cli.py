"""``sus2`` command line: the model commands of :mod:`sus2_model.cli` plus ``sus2 campaign run``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence

from .errors import Sus2WorkflowError
from .report import write_report


def run_campaign(spec_path: str | Path, folder: str | Path, store_uri: str | None = None) -> dict:
    """Run a campaign spec locally with jobflow on the chosen store; returns the summary it writes."""
    from jobflow import run_locally

    from .jobflow import Sus2CampaignMaker
    from .spec import load_spec
    from .stores import check_store, job_store

    spec = load_spec(spec_path)
    folder = Path(folder).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    store = job_store(store_uri, folder)
    check_store(store)
    flow = Sus2CampaignMaker(folder=str(folder), store_uri=store_uri).make(spec)
    responses = run_locally(flow, store=store, root_dir=folder / "jobs", create_folders=True, ensure_success=True,
                            log=False)
    eos = responses[flow.output.uuid][max(responses[flow.output.uuid])].output
    summary = {"campaign": spec.name, "spec_hash": spec.spec_hash(), "folder": str(folder), "eos": eos}
    (folder / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``sus2`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] != "campaign":
        from sus2_model.cli import main as model_main

        return model_main(argv)
    parser = argparse.ArgumentParser(prog="sus2 campaign", description="high-throughput SUS2 campaigns")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run (or resume) a campaign spec")
    run.add_argument("spec")
    run.add_argument("--store", help="mongodb://... , 'jobflow', or nothing for the embedded store")
    run.add_argument("--folder", default="campaign", help="campaign folder (store, DFT runs, models, report)")
    for name, text in (("status", "what the campaign holds"), ("report", "write report.md with plots"),
                       ("export", "every result with its provenance chain")):
        cmd = sub.add_parser(name, help=text)
        cmd.add_argument("--store")
        cmd.add_argument("--folder", default="campaign")
        if name == "export":
            cmd.add_argument("--json", action="store_true", help="print JSON (the only format)")
    args = parser.parse_args(argv[1:])
    try:
        if args.command != "run":
            return _inspect(args)
        summary = run_campaign(args.spec, args.folder, args.store)
        report = write_report(args.folder, args.store)
    except Sus2WorkflowError as exc:
        print(f"sus2 campaign {args.command}: error: {exc}", file=sys.stderr)
        return 2
    for doc in summary["eos"]:
        print(f"{doc['formula']:>8} {doc['prototype']:>8}  V0 {doc['v0']:.3f} Å³/atom  B0 {doc['b0_gpa']:.1f} GPa  "
              f"B1 {doc['b1']:.2f}")
    print(f"report: {report}")
    return 0


def _inspect(args: argparse.Namespace) -> int:
    from .report import campaign_status, export_campaign

    if not (Path(args.folder) / "store").exists() and args.store is None:
        raise Sus2WorkflowError(f"{args.folder}: no campaign here (run `sus2 campaign run SPEC --folder {args.folder}`)")
    if args.command == "status":
        for kind, count in campaign_status(args.folder, args.store).items():
            print(f"{kind:<16} {count}")
    elif args.command == "report":
        print(f"report: {write_report(args.folder, args.store)}")
    else:
        print(json.dumps(export_campaign(args.folder, args.store), indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
