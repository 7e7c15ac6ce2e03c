"""How much a Slurm array costs per job: the same sweep of tiny jobs on the basic launcher and through
Slurm (``hydra/launcher=slurm``, one array, ``array_parallelism``), with the submit-to-last-trace time
and the per-job overhead. The figures in README's "Running on a Slurm cluster" come from

    /work/quiet.sh python scripts/slurm_scale.py basic  --out /tmp/scale
    /work/quiet.sh python scripts/slurm_scale.py slurm  --out /tmp/scale

(on the one-node cluster of scripts/slurm_local.sh). The sweep: CG on a 16 x 16 grid, seeds x
iteration budgets (20 x 15 = 300 jobs by default), one thread, no repeats: each solve takes well
under a millisecond, so what is measured is what a job costs besides its solve. It prints one JSON
line: the jobs, the command's wall time, submit-to-last-trace (from the command's start to the
newest trace file), and per job: the median gap between one job's end and the next one's start
(the scheduler, the new Python process, its imports and Hydra's composition; in process on the
basic launcher) and the median time a job spends inside ``run_job``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from harness.results import read_metadata, trace_files  # noqa: E402

LAUNCHERS = {"basic": [], "slurm": ["hydra/launcher=slurm"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("launcher", choices=sorted(LAUNCHERS))
    parser.add_argument("--seeds", type=int, default=20, help="seeds (jobs = seeds x iteration budgets)")
    parser.add_argument("--budgets", type=int, default=15, help="iteration budgets, 10, 11, ...")
    parser.add_argument("--parallelism", type=int, default=64, help="hydra.launcher.array_parallelism")
    parser.add_argument("--out", type=Path, required=True, help="parent folder of the sweep")
    args = parser.parse_args()
    folder = (args.out / f"{args.launcher}-{datetime.now():%Y%m%d-%H%M%S}").resolve()
    jobs = args.seeds * args.budgets
    extra = [f"hydra.launcher.array_parallelism={args.parallelism}"] if args.launcher == "slurm" else []
    command = [sys.executable, "-m", "harness.run", "-m", *LAUNCHERS[args.launcher], *extra,
               "problem.n=16", "solver=cg", f"seed=range(0,{args.seeds})",
               f"budget.max_iters=range(10,{10 + args.budgets})",
               "progress=false", "warmup=false", f"hydra.sweep.dir={folder}"]
    start_wall = time.time()
    start = time.monotonic()
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    wall = time.monotonic() - start
    if done.returncode != 0:
        print(done.stdout[-2000:], done.stderr[-2000:], file=sys.stderr)
        return done.returncode
    files = trace_files(folder)
    spans = sorted((datetime.fromisoformat(m["started"]).timestamp(), datetime.fromisoformat(m["ended"]).timestamp())
                   for m in map(read_metadata, files))
    gaps = [b[0] - a[1] for a, b in zip(spans, spans[1:], strict=False)]
    print(json.dumps({
        "launcher": args.launcher, "jobs": jobs, "traces": len(files), "wall_s": round(wall, 1),
        "submit_to_last_trace_s": round(max(f.stat().st_mtime for f in files) - start_wall, 1),
        "median_gap_between_jobs_s": round(statistics.median(gaps), 3) if gaps else None,
        "median_run_job_s": round(statistics.median(e - s for s, e in spans), 3),
        "sweep": str(folder)}))
    return 0 if len(files) == jobs else 1


if __name__ == "__main__":
    sys.exit(main())
