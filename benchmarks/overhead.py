"""Per-job overhead of jobflow on the campaign's embedded store (MontyStore on disk, with its ``data`` store) next
to jobflow's in-memory ``MemoryStore``, in the same run.  Each job does no science (it returns a small document), so
the time per job is what the engine and the store cost.  Prints JSON.

    python benchmarks/overhead.py [--jobs 200] [--json]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import warnings
from pathlib import Path

from jobflow import Flow, JobStore, job, run_locally
from maggma.stores import MemoryStore

from sus2_workflows.stores import job_store


@job(data=["structures"])
def tiny(k: int) -> dict:
    """A job with a document and a small blob routed to the data store, like the campaign's label jobs."""
    return {"k": k, "structures": [{"numbers": [29] * 4, "positions": [[0.0, 0.0, 0.0]] * 4}]}


def per_job_ms(store: JobStore, n_jobs: int, root: Path) -> float:
    """Wall time per job (ms) of a flow of ``n_jobs`` independent jobs run with ``run_locally``."""
    flow = Flow([tiny(k) for k in range(n_jobs)])
    start = time.perf_counter()
    run_locally(flow, store=store, root_dir=root, create_folders=False, ensure_success=True, log=False)
    return (time.perf_counter() - start) / n_jobs * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="JSON only (the default prints JSON too)")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")  # jobflow: unconnected jobs, deprecated cd
    results: dict[str, list[float]] = {"memory_store": [], "embedded_store": []}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeats):
            memory = JobStore(MemoryStore(), additional_stores={"data": MemoryStore()})
            results["memory_store"].append(per_job_ms(memory, args.jobs, Path(tmp)))
            embedded = job_store(None, Path(tmp) / f"campaign{r}")
            results["embedded_store"].append(per_job_ms(embedded, args.jobs, Path(tmp)))
    best = {name: min(values) for name, values in results.items()}
    print(json.dumps({"jobs_per_flow": args.jobs, "repeats": args.repeats,
                      "ms_per_job": {k: round(v, 2) for k, v in best.items()},
                      "all_runs_ms_per_job": {k: [round(x, 2) for x in v] for k, v in results.items()},
                      "embedded_over_memory_ms": round(best["embedded_store"] - best["memory_store"], 2)}, indent=2))


if __name__ == "__main__":
    main()
