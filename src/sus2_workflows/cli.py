"""``sus2`` command line: the model commands of :mod:`sus2_model.cli` plus ``sus2 campaign ...``, ``sus2 screen ...``
and ``sus2 aiida graph``."""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from pathlib import Path
from typing import Sequence

from sus2_model.io.atomic import atomic_write

from rich.console import Console

from .documents import CampaignResultDocument, success_summary
from .errors import Sus2WorkflowError
from .report import history_section, write_report
from .screen_cli import screen_main


def run_campaign(spec_path: str | Path, folder: str | Path, store_uri: str | None = None, engine: str = "local",
                 launchpad: str | None = None, submit_only: bool = False, project: str | None = None,
                 worker: str = "cpu", gpu_worker: str | None = None, profile: str | None = None,
                 pw_code: str | None = None, pw_options: dict | None = None) -> dict:
    """Run (or resume) a campaign spec on the chosen engine and store; returns the summary it writes (for a
    submission only: the submitted ids).  Engine ``aiida``: ``profile``, and the code and scheduler options of its
    Quantum ESPRESSO labels (default: pw.x as the labeler's ``command`` runs it on this machine)."""
    from .spec import load_spec
    from .cache import is_embedded
    from .stores import check_store, job_store

    warnings.filterwarnings("ignore", message="cd is deprecated", category=FutureWarning)  # jobflow's, once per job
    spec = load_spec(spec_path)
    if (pw_code or pw_options) and engine != "aiida":
        raise Sus2WorkflowError("--pw-code and --pw-options choose where AiiDA runs pw.x: use them with --engine aiida")
    shared_store = not is_embedded(store_uri)
    if (engine == "jobflow-remote" or (submit_only and engine != "aiida")) and not shared_store:
        raise Sus2WorkflowError(f"--engine {engine} runs jobs on other machines: give a shared --store mongodb://...")
    folder = Path(folder).resolve()
    store = job_store(store_uri, folder)
    check_store(store)
    folder.mkdir(parents=True, exist_ok=True)
    if engine == "inline":
        from .cache import store_workspace
        from .engines.inline import run_inline

        result = run_inline(spec, store_workspace(folder, store_uri), Console(stderr=True))
    elif engine == "aiida":
        from .engines.aiida.launch import run_campaign_workchain
        from .engines.aiida.profiles import load_campaign_profile

        load_campaign_profile(profile)
        node, result = run_campaign_workchain(spec, folder, store_uri, submit=submit_only, pw_code=pw_code,
                                              pw_options=pw_options)
        if result is None:
            return {"campaign": spec.name, "submitted": [node.pk]}
    else:
        from .engines.jobflow import Sus2CampaignMaker
        from .engines.jobflow.managers import run_fireworks, run_local, submit_jobflow_remote

        flow = Sus2CampaignMaker.from_spec(spec, str(folder), store_uri).make(spec)
        if engine == "jobflow-remote":
            return {"campaign": spec.name, "submitted": submit_jobflow_remote(flow, project, worker, gpu_worker)}
        if engine == "fireworks":
            output = run_fireworks(flow, store, folder, launchpad, launch=not submit_only)
            if submit_only:
                return {"campaign": spec.name, "submitted": [flow.uuid]}
        else:
            output = run_local(flow, store, folder)
        result = CampaignResultDocument.model_validate(output)
    summary = {"campaign": spec.name, "spec_hash": result.spec_hash, "folder": str(folder), "engine": engine,
               "eos": [e.model_dump(mode="json") for e in result.eos], "result": result.model_dump(mode="json")}
    atomic_write(folder / "summary.json", lambda fh: fh.write(json.dumps(summary, indent=2, default=str)))
    return summary


def _mapping(text: str) -> dict:
    """A JSON/YAML mapping given on the command line."""
    import yaml

    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise argparse.ArgumentTypeError(f"not JSON/YAML: {exc}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"not a mapping: {text!r}")
    return value


def aiida_main(argv: Sequence[str]) -> int:
    """``sus2 aiida setup``: create (or show) a campaign profile; ``sus2 aiida graph PK``: the provenance graph of an
    AiiDA campaign node."""
    parser = argparse.ArgumentParser(prog="sus2 aiida", description="AiiDA campaigns")
    sub = parser.add_subparsers(dest="command", required=True)
    setup = sub.add_parser("setup", help="create the profile (sus2: embedded; sus2-production: PostgreSQL + RabbitMQ)")
    setup.add_argument("--profile", help="default: the configured default, else 'sus2'")
    graph = sub.add_parser("graph", help="write the provenance graph of a node (a campaign work chain, a result)")
    graph.add_argument("pk", type=int)
    graph.add_argument("--output", "-o", help="FILE.svg|png|pdf|dot (default: PK.svg)")
    graph.add_argument("--profile", help="AiiDA profile (default: the configured default, else 'sus2')")
    args = parser.parse_args(argv)
    from .engines.aiida.graph import write_graph
    from .engines.aiida.profiles import load_campaign_profile

    try:
        profile = load_campaign_profile(args.profile)
        if args.command == "setup":
            print(f"AiiDA profile {profile.name} in {os.environ['AIIDA_PATH']}: storage {profile.storage_backend}, "
                  f"broker {profile.process_control_backend}\nstart its daemon: AIIDA_PATH={os.environ['AIIDA_PATH']} "
                  f"verdi -p {profile.name} daemon start 2")
            return 0
        print(f"graph: {write_graph(args.pk, args.output or f'{args.pk}.svg')}")
    except Sus2WorkflowError as exc:
        print(f"sus2 aiida {args.command}: error: {exc}", file=sys.stderr)
        return 2
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``sus2`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["screen"]:
        return screen_main(argv[1:])
    if argv[:1] == ["aiida"]:
        return aiida_main(argv[1:])
    if not argv or argv[0] != "campaign":
        from sus2_model.cli import main as model_main

        return model_main(argv)
    parser = argparse.ArgumentParser(prog="sus2 campaign", description="high-throughput SUS2 campaigns")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run (or resume) a campaign spec")
    run.add_argument("spec")
    run.add_argument("--store", help="mongodb://... , 'jobflow', or nothing for the embedded store")
    run.add_argument("--folder", default="campaign", help="campaign folder (store, DFT runs, models, report)")
    run.add_argument("--engine", choices=["inline", "local", "fireworks", "jobflow-remote", "aiida"],
                     default="local",
                     help="inline: the stages in this process, no workflow engine; local: jobflow run_locally; "
                          "aiida: the sus2.campaign work chain")
    run.add_argument("--launchpad", help="FireWorks LaunchPad file (default: an embedded LaunchPad in the folder)")
    run.add_argument("--submit-only", "--submit", action="store_true",
                     help="FireWorks: add the workflow, let workers run it; AiiDA: submit to the profile's daemon")
    run.add_argument("--profile", help="AiiDA profile (default: the configured default, else the embedded 'sus2')")
    run.add_argument("--pw-code", help="AiiDA: the pw.x code of Quantum ESPRESSO labels, e.g. pw@cluster (default: "
                                       "pw.x as the labeler's command runs it on this machine)")
    run.add_argument("--pw-options", type=_mapping, help="AiiDA: their scheduler options as JSON/YAML, e.g. "
                                                         "'{resources: {num_machines: 1}, queue_name: short}'")
    run.add_argument("--project", help="jobflow-remote project name")
    run.add_argument("--worker", default="cpu", help="jobflow-remote worker for labelling and screening")
    run.add_argument("--gpu-worker", help="jobflow-remote worker for training jobs")
    remote = sub.add_parser("remote-project", help="write a jobflow-remote project with a CPU and a GPU worker")
    for name in ("name", "host", "user", "work-dir", "mongodb"):
        remote.add_argument(f"--{name}", required=True)
    remote.add_argument("--gpu-partition", default="gpu")
    remote.add_argument("--cpu-partition", default="standard")
    remote.add_argument("--out", help="default: ~/.jfremote/<name>.yaml")
    for name, text in (("status", "what the campaign holds"), ("report", "write report.md with plots"),
                       ("export", "every result with its provenance chain")):
        cmd = sub.add_parser(name, help=text)
        cmd.add_argument("--store")
        cmd.add_argument("--folder", default="campaign")
        if name == "export":
            cmd.add_argument("--json", action="store_true", help="print JSON (the only format)")
    for name, text in (("export-labels", "write the campaign's DFT labels (of the spec's labeler) to a file"),
                       ("import-labels", "load exported labels into a campaign, so it never computes them again")):
        cmd = sub.add_parser(name, help=text)
        cmd.add_argument("spec", help="the campaign spec (its labeler's settings select and check the labels)")
        cmd.add_argument("file", help="labels file: .json or .json.gz")
        cmd.add_argument("--store")
        cmd.add_argument("--folder", default="campaign")
    args = parser.parse_args(argv[1:])
    try:
        if args.command == "remote-project":
            return _remote_project(args)
        if args.command in ("export-labels", "import-labels"):
            return _transfer_labels(args)
        if args.command != "run":
            return _inspect(args)
        summary = run_campaign(args.spec, args.folder, args.store, args.engine, args.launchpad, args.submit_only,
                               args.project, args.worker, args.gpu_worker, args.profile, args.pw_code,
                               args.pw_options)
        if "submitted" in summary:
            print(f"submitted {summary['campaign']}: {summary['submitted']}")
            return 0
        report = write_report(args.folder, args.store)
    except Sus2WorkflowError as exc:
        print(f"sus2 campaign {args.command}: error: {exc}", file=sys.stderr)
        return 2
    for doc in summary["eos"]:
        print(f"{doc['formula']:>8} {doc['name']:>16}  V0 {doc['v0']:.3f} Å³/atom  B0 {doc['b0_gpa']:.1f} GPa  "
              f"B1 {doc['b1']:.2f}")
        if doc.get("extrapolation"):
            print(f"{'':>26}extrapolates: {doc['extrapolation']}")
        reference = doc.get("reference")
        if reference and reference["error"]:
            print(f"{'':>26}reference: failed: {reference['error']}")
        elif reference:
            print(f"{'':>26}{reference['method']}: V0 {reference['v0']:.3f}  B0 {reference['b0_gpa']:.1f}  B1 "
                  f"{reference['b1']:.2f}  ΔV0 {reference['v0_error_percent']:+.2f} %  ΔB0 "
                  f"{reference['b0_error_percent']:+.1f} %  ν {reference['nu']:.2f}  ε {reference['epsilon']:.3f}")
    for doc in summary["result"]["adsorption"]:
        best = doc["minima"][0]
        dft = doc.get("dft") or {}
        checked = f"  {dft.get('labeler')}: {best['dft_adsorption_energy']:.3f} eV" \
            if best.get("dft_adsorption_energy") is not None else ""
        success = f"  {success_summary(dft)}" if success_summary(dft) else ""
        print(f"{doc['name']:>24}  best {best['site']} E_ads {best['adsorption_energy']:.3f} eV{checked}{success}")
    for failure in summary["result"]["failures"]:
        print(f"failed: {failure['error']}")
    print("\n".join(history_section(summary["result"])[1:]))
    print(f"report: {report}")
    return 0


def _remote_project(args: argparse.Namespace) -> int:
    from .engines.jobflow.remote import project_config, write_project

    config = project_config(args.name, args.host, args.user, args.work_dir, args.mongodb, args.gpu_partition,
                            args.cpu_partition)
    path = write_project(config, args.out or Path.home() / ".jfremote" / f"{args.name}.yaml")
    print(f"jobflow-remote project: {path}  (then: jf project check; sus2 campaign run SPEC --engine jobflow-remote "
          f"--project {args.name} --gpu-worker gpu --store {args.mongodb})")
    return 0


def _transfer_labels(args: argparse.Namespace) -> int:
    import gzip
    import zlib

    from .cache import store_workspace
    from .campaign.labels import export_labels, import_labels
    from .labelers import make_labeler
    from .spec import load_spec

    labeler = make_labeler(load_spec(args.spec).labeler)
    path, folder = Path(args.file), Path(args.folder).resolve()
    compressed = path.suffix == ".gz"
    if args.command == "export-labels":
        if not (folder / "store").exists() and args.store is None:
            raise Sus2WorkflowError(f"{folder}: no campaign here")
        exported = export_labels(labeler, store_workspace(folder, args.store))
        data = json.dumps(exported, allow_nan=False, default=str).encode()
        atomic_write(path, lambda fh: fh.write(gzip.compress(data, mtime=0) if compressed else data), mode="wb")
        print(f"{path}: {len(exported['labels'])} {labeler.name} labels from {folder} (left out: "
              f"{exported['n_other_settings']} of other labeler settings, {exported['n_invalid']} invalid)")
        return 0
    try:
        raw = gzip.decompress(path.read_bytes()) if compressed else path.read_bytes()
        exported = json.loads(raw)
    except (OSError, EOFError, zlib.error, ValueError) as exc:
        raise Sus2WorkflowError(f"{path}: cannot read labels ({type(exc).__name__}: {exc})") from None
    new = import_labels(exported, labeler, store_workspace(folder, args.store), where=str(path))
    print(f"{path}: {new} new labels in {folder}, {len(exported['labels']) - new} there already")
    return 0


def _inspect(args: argparse.Namespace) -> int:
    from .provenance import campaign_status, export_campaign

    if not (Path(args.folder) / "store").exists() and args.store is None:
        raise Sus2WorkflowError(f"{args.folder}: no campaign here (run `sus2 campaign run SPEC --folder "
                                f"{args.folder}`)")
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
