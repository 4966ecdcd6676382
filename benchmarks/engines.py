"""One campaign spec through every engine, as a user runs it from the command line, in the same run: inline (no
engine), jobflow (``run_locally``), AiiDA on the embedded profile (``core.sqlite_dos`` + ZeroMQ, submitted to its
daemon) and AiiDA on the production profile (``core.psql_dos`` on the local PostgreSQL + RabbitMQ, submitted to its
daemon, which is killed with SIGKILL once some DFT labels are done and started again).  Per engine: wall time, the
result's hashes (spec, dataset, model, every screen) and the DFT calculations run (AiiDA: and whether the EOS result
derives from the calculation of every label in the provenance graph); then the same campaign submitted again on the embedded profile, which
must run no DFT at all.  Prints JSON; exits 1 where the hashes differ, a run failed, a label was computed twice, the
EOS result does not derive from every label's calculation, or the rerun computed one.

    python benchmarks/engines.py [--spec workflows/quickstart.yaml] [--engines inline,local,aiida,aiida-production]
                                 [--kill-after 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

BIN = Path(sys.executable).parent
HASHES = ("spec_hash", "dataset_hash", "model_hash", "result_hashes")
PROFILES = {"aiida": "sus2", "aiida-production": "sus2-production"}

# run inside the profile (a subprocess): await a submitted campaign, optionally killing its daemon midway; print JSON
AWAIT = r"""
import json, sys, time
import psutil
from aiida import load_profile, orm
from aiida.engine.daemon.client import get_daemon_client
profile, pk, kill_after, workers = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
load_profile(profile)
node, killed, deadline = orm.load_node(pk), False, time.monotonic() + 7200
PW = "aiida.calculations:quantumespresso.pw"
def pw_runs():
    return [n for n in node.called_descendants if n.process_type == PW]
while not node.is_terminated and time.monotonic() < deadline:
    if kill_after and not killed and sum(n.is_finished_ok for n in pw_runs()) >= kill_after:
        client = get_daemon_client(profile)
        arbiter = psutil.Process(client.get_daemon_pid())
        for process in [arbiter, *arbiter.children(recursive=True)]:
            try:
                process.kill()
            except psutil.NoSuchProcess:  # gone with its parent
                pass
        killed = sum(n.is_finished_ok for n in pw_runs())
        time.sleep(2)
        client.start_daemon(number_workers=int(workers))
    time.sleep(2)
def pw_ancestors(start):  # the pw.x calculations a node derives from, through every data and calculation link
    found, seen, todo = set(), set(), [start]
    while todo:
        current = todo.pop()
        if current.pk not in seen:
            seen.add(current.pk)
            for link in current.base.links.get_incoming().all():
                if isinstance(link.node, (orm.Data, orm.CalculationNode)):
                    todo.append(link.node)
                    if link.node.process_type == PW:
                        found.add(link.node.pk)
    return found
bases = [n for n in node.called_descendants if n.process_label == "PwBaseWorkChain"]
labels = {n.outputs.result.value["key"] for n in node.called_descendants
          if n.process_label == "pw_label" and n.is_finished_ok}
finals = {max((c for c in b.called if c.process_type == PW), key=lambda c: c.ctime).pk for b in bases
          if b.is_finished_ok}  # the calculation each label was read from
result = node.outputs.result.value.model_dump(mode="json") if node.is_finished_ok else None
print(json.dumps({"exit_status": node.exit_status, "message": node.exit_message, "result": result,
                  "pw_runs": len(pw_runs()), "pw_labels": len(bases), "distinct_labels": len(labels),
                  "pw_restarted": sorted({f"[{n.exit_status}] {n.exit_message}" for n in pw_runs()
                                          if not n.is_finished_ok}),
                  "eos_derives_from_every_label": finals <= pw_ancestors(node.outputs.eos)
                  if node.is_finished_ok else None,
                  "killed_after_pw_runs": killed or None}))
"""


def _run(command: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    done = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"{' '.join(command)} failed ({done.returncode}): {done.stderr[-2000:]}")
    return done


def _hashes(result: dict) -> dict:
    return {k: result[k] for k in HASHES}


def run_jobflow_or_inline(engine: str, spec: Path, root: Path, env: dict[str, str]) -> dict:
    """``sus2 campaign run --engine inline|local``: wall time, hashes, pw.x runs (their output files)."""
    folder = root / engine
    start = time.perf_counter()
    _run([str(BIN / "sus2"), "campaign", "run", str(spec), "--engine", engine, "--folder", str(folder)], env, root)
    wall = time.perf_counter() - start
    result = json.loads((folder / "summary.json").read_text())["result"]
    return {"wall_s": round(wall, 1), **_hashes(result), "pw_runs": len(list(folder.rglob("espresso.pwo")))}


def run_aiida(engine: str, spec: Path, root: Path, env: dict[str, str], kill_after: int, workers: int) -> dict:
    """``sus2 campaign run --engine aiida --submit`` to the profile's daemon, awaited (the daemon killed after
    ``kill_after`` finished pw.x runs, then started again); then, on the embedded profile, the same again."""
    profile, folder = PROFILES[engine], root / engine
    sus2, verdi = str(BIN / "sus2"), str(BIN / "verdi")
    _run([sus2, "aiida", "setup", "--profile", profile], env, root)
    _run([verdi, "-p", profile, "daemon", "start", str(workers)], env, root)
    try:
        def submit_and_await(kill: int) -> tuple[float, dict]:
            start = time.perf_counter()
            out = _run([sus2, "campaign", "run", str(spec), "--engine", "aiida", "--profile", profile, "--submit",
                        "--folder", str(folder)], env, root).stdout
            pk = out.split("[")[-1].split("]")[0]
            awaited = json.loads(_run([str(BIN / "python"), "-c", AWAIT, profile, pk, str(kill), str(workers)], env,
                                      root).stdout.strip().splitlines()[-1])
            return time.perf_counter() - start, {"pk": int(pk), **awaited}

        wall, first = submit_and_await(kill_after)
        if first["result"] is None:
            return {"wall_s": round(wall, 1), "failed": f"[{first['exit_status']}] {first['message']}"}
        entry = {"wall_s": round(wall, 1), **_hashes(first["result"]),
                 **{k: first[k] for k in ("pk", "pw_runs", "pw_labels", "distinct_labels", "pw_restarted",
                                          "eos_derives_from_every_label", "killed_after_pw_runs")}}
        if engine == "aiida":
            wall, again = submit_and_await(0)
            entry["rerun"] = {"wall_s": round(wall, 1), "pw_runs": again["pw_runs"],
                              "same_hashes": again["result"] is not None and
                              _hashes(again["result"]) == _hashes(first["result"])}
        return entry
    finally:
        subprocess.run([verdi, "-p", profile, "daemon", "stop"], env=env, cwd=root, capture_output=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", default="workflows/quickstart.yaml")
    parser.add_argument("--engines", default="inline,local,aiida,aiida-production")
    parser.add_argument("--kill-after", type=int, default=3, help="finished pw.x runs before the production daemon is "
                                                                  "killed (0: never)")
    parser.add_argument("--workers", type=int, default=2, help="daemon workers")
    parser.add_argument("--keep", help="run in this folder and keep it (default: a temporary one)")
    parser.add_argument("--json", action="store_true", help="print JSON (the only format)")
    args = parser.parse_args()
    spec = Path(args.spec).resolve()
    report: dict = {"spec": str(spec), "engines": {}}
    with tempfile.TemporaryDirectory(prefix="sus2-engines-") as tmp:
        root, name = Path(args.keep or tmp).resolve(), f"sus2_bench_{uuid.uuid4().hex[:8]}"
        root.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "AIIDA_PATH": str(root / ".aiida"), "SUS2_AIIDA_DB_NAME": name, "SUS2_AIIDA_DB_USER": name,
               "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
        try:
            for engine in args.engines.split(","):
                print(f"{engine} ...", file=sys.stderr, flush=True)
                kill = args.kill_after if engine == "aiida-production" else 0
                try:
                    report["engines"][engine] = run_aiida(engine, spec, root, env, kill, args.workers) \
                        if engine in PROFILES else run_jobflow_or_inline(engine, spec, root, env)
                except RuntimeError as exc:
                    report["engines"][engine] = {"failed": str(exc)}
        finally:
            if "aiida-production" in args.engines:
                subprocess.run([str(BIN / "verdi"), "profile", "delete", "--delete-data", "--force",
                                PROFILES["aiida-production"]], env=env, capture_output=True)
                subprocess.run(["psql", "-h", "localhost", "-U", "postgres", "-c", f'DROP DATABASE IF EXISTS "{name}"',
                                "-c", f'DROP ROLE IF EXISTS "{name}"'], capture_output=True)
    runs = report["engines"].values()
    hashes = [tuple(json.dumps(r.get(k), sort_keys=True) for k in HASHES) for r in runs]
    report["equal_hashes"] = all("failed" not in r for r in runs) and len(set(hashes)) == 1
    report["no_label_twice"] = all(r.get("pw_labels", 0) == r.get("distinct_labels", 0) for r in runs)
    report["eos_derives_from_every_label"] = all(r["eos_derives_from_every_label"] for r in runs
                                                 if "eos_derives_from_every_label" in r)
    report["rerun_runs_no_dft"] = all(r["rerun"]["pw_runs"] == 0 and r["rerun"]["same_hashes"] for r in runs
                                      if "rerun" in r)
    print(json.dumps(report, indent=2))
    checks = ("equal_hashes", "no_label_twice", "eos_derives_from_every_label", "rerun_runs_no_dft")
    return 0 if all(report[k] for k in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
