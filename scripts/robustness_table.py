"""Re-run the bad-input table of docs/ROBUSTNESS.md on the current code and print it as Markdown.

    python scripts/robustness_table.py            # the bad-input table (about a minute on 2 busy cores)
    python scripts/robustness_table.py --floors   # the convergence floors of tests/test_solvers.py

Each case runs ``python -m harness.run`` (one job or one sweep) with its results folder in a
temporary directory, and is judged by what came back: the exit status, the number of lines, no
traceback, the key named in the line, a fix given (a text heuristic: "use", "valid", "e.g.",
"did you mean", ...), and nothing written. Exit status 1 if any case fails a check.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(REPO), "HYDRA_FULL_ERROR": ""}
FIX = re.compile(r"\buse\b|valid|e\.g\.|did you mean|its parameters|resume=|choose|set solver\.|give |wait for")

# (arguments, the key the line must name). "{file}" is a file, "{tmp}" the case's folder.
CASES: list[tuple[list[str], str]] = [
    (["solver=nope"], "solver"),
    (["problem=nope"], "problem"),
    (["+sweep=nope"], "sweep"),
    (["solver="], "solver"),
    (["problem.n=4"], "problem.n"),
    (["problem.n=6.5"], "problem.n"),
    (["problem.n=abc"], "problem.n"),
    (["problem.h=5"], "problem.h"),
    (["problem.n=null"], "problem.n"),
    (["problem=laplace_harmonic", "problem.variant=zz"], "problem.variant"),
    (["problem=laplace_obstacles", "problem.n_boxes=-1"], "problem.n_boxes"),
    (["+problem.bogus=1"], "problem.bogus"),
    (["problem.n=64,,"], "problem.n"),
    (["-m", "+sweep=laplace_scaling", "problem.n=64,4"], "problem.n"),
    (["budget.max_iters=-5"], "budget.max_iters"),
    (["budget.max_iters=2.5"], "budget.max_iters"),
    (["budget.max_seconds=0"], "budget.max_seconds"),
    (["budget.target_msr=abc"], "budget.target_msr"),
    (["budget.target_msr=-1"], "budget.target_msr"),
    (["budget.divergence_factor=0"], "budget.divergence_factor"),
    (["+budget.bogus=1"], "budget.bogus"),
    (["threads=0"], "threads"),
    (["threads=-1"], "threads"),
    (["threads=abc"], "threads"),
    (["seed=abc"], "seed"),
    (["seed=-1"], "seed"),
    (["repeats=0"], "repeats"),
    (["verify_timing=maybe"], "verify_timing"),
    (["job_timeout_s=0"], "job_timeout_s"),
    (["isolate=2"], "isolate"),
    (["sweep_name=a/b"], "sweep_name"),
    (["+bogus=1"], "bogus"),
    (["+solver.bogus=1"], "solver.bogus"),
    (["solver=adam", "+solver.lrr=0.5"], "solver.lrr"),
    (["solver.bogus=1"], "solver.bogus"),
    (["solver=adam", "solver.lr=abc"], "solver.lr"),
    (["solver=adam", "solver.lr=0"], "solver.lr"),
    (["-m", "solver=adam", "solver.lr=0.1,-1"], "solver.lr"),
    (["solver=cg", "solver.method=nope"], "solver.method"),
    (["solver=adam", "solver.device=tpu"], "solver.device"),
    (["solver=metamizer", "solver.checkpoint=/tmp"], "solver.checkpoint"),
    (["solver=metamizer", "solver.checkpoint=/nonexistent"], "checkpoint"),
    (["problem.n=40000"], "problem.n"),
    (["hydra.run.dir={file}/sub"], "hydra.run.dir"),
    (["-m", "resume=/nonexistent"], "resume"),
    (["-m", "hydra.sweep.subdir=fixed"], "hydra.sweep.subdir"),
]


def run(args: list[str], timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness.run", *args], cwd=REPO, env=ENV, capture_output=True,
                          text=True, timeout=timeout)


def judge(args: list[str], key: str, proc, out: Path) -> dict:
    said = [ln for ln in (proc.stdout + proc.stderr).splitlines() if ln.strip()]
    text = " ".join(said)
    checks = {
        "exit": proc.returncode != 0,
        "one line": len(said) == 1,
        "no traceback": "Traceback" not in proc.stdout + proc.stderr,
        "names key": key in text,
        "gives fix": bool(FIX.search(text)),
        "wrote nothing": not any(out.iterdir()) if out.exists() else True,
    }
    return {"args": args, "code": proc.returncode, "line": said[0] if said else "", "lines": len(said), **checks}


def bad_input_table(workers: int = 4) -> list[dict]:
    tmp = Path(tempfile.mkdtemp(prefix="robustness-"))
    afile = tmp / "a_file"
    afile.write_text("not a folder")

    def one(i_case):
        i, (args, key) = i_case
        out = tmp / f"case{i:02d}"
        args = [a.replace("{file}", str(afile)) for a in args]
        extra = ["progress=false"]
        if not any(a.startswith("hydra.run.dir") for a in args):
            extra.append(f"hydra.run.dir={out}/run")
        if not any(a.startswith(("hydra.sweep.dir", "resume")) for a in args):
            extra.append(f"hydra.sweep.dir={out}/sweep")
        return judge(args, key, run([*args, *extra]), out)

    with ThreadPoolExecutor(workers) as pool:
        rows = list(pool.map(one, enumerate(CASES)))
    return rows + busy_folder_cases(tmp)


def busy_folder_cases(tmp: Path) -> list[dict]:
    """A second sweep, and a resume, into a folder a running sweep owns."""
    sweep = tmp / "busy"
    first = subprocess.Popen([sys.executable, "-m", "harness.run", "-m", "problem.n=16,20",
                              "solver._target_=tests.faulty_solvers.Slow", "+solver.delay=0.05",
                              "budget.max_iters=40", "progress=false", f"hydra.sweep.dir={sweep}"],
                             cwd=REPO, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    rows = []
    try:
        for line in first.stdout:
            if "#0 :" in line:
                break
        for args in (["-m", "solver=cg", f"hydra.sweep.dir={sweep}"], ["-m", "solver=cg", f"resume={sweep}"]):
            proc = run([*args, "progress=false"])
            row = judge([a.replace(str(tmp), "<tmp>") for a in args], str(sweep), proc, tmp / "unused")
            row["line"] = row["line"].replace(str(tmp), "<tmp>")
            rows.append(row)
        first.communicate(timeout=120)
    finally:
        first.kill()
    ok = first.returncode == 0 and len(list(sweep.rglob("trace.parquet"))) == 2
    for row in rows:
        row["wrote nothing"] = row["wrote nothing"] and ok  # and the running sweep lost nothing
    return rows


def markdown(rows: list[dict]) -> str:
    cols = ["exit", "one line", "no traceback", "names key", "gives fix", "wrote nothing"]
    out = ["| # | input | exit | message | " + " | ".join(cols[1:]) + " |",
           "|---|---|---|---|" + "---|" * (len(cols) - 1)]
    for i, r in enumerate(rows, 1):
        line = r["line"].replace("|", "\\|")
        line = re.sub(r"/tmp/robustness-[^/ ]+", "<tmp>", line)
        args = " ".join(r["args"]).replace("|", "\\|")
        args = re.sub(r"/tmp/robustness-[^/ ]+", "<tmp>", args)
        marks = " | ".join("yes" if r[c] else "**NO**" for c in cols[1:])
        out.append(f"| {i} | `{args}` | {r['code']} | `{line}` | {marks} |")
    return "\n".join(out)


def floors() -> int:
    """For each solver of tests/test_solvers.py: the iteration (checkpoint) at which it reaches its MSR
    floor, and whether half of the test's cap falls short (then a solver twice as slow fails the test)."""
    sys.path.insert(0, str(REPO))
    from harness.job import set_threads
    from harness.monitor import Budget
    from harness.runner import run_solver
    from problems import make_problem
    from tests.test_solvers import EXPECTED, build

    set_threads(1)
    p = make_problem("poisson_manufactured", n=24)
    bad = 0
    print("| solver | MSR floor | reached at | test cap | half the cap reaches it? |")
    print("|---|---|---|---|---|")
    for name, (cap, msr) in sorted(EXPECTED.items()):
        r = run_solver(p, build(name), Budget(max_iters=cap * 4, max_seconds=120, target_msr=msr))
        half = run_solver(p, build(name), Budget(max_iters=max(cap // 2, 1), max_seconds=120, target_msr=msr))
        at = int(r.trace.iteration.iloc[-1]) if r.status == "target" else None
        tight = cap == 1 or half.status != "target"
        bad += (at is None or at > cap) or not tight
        print(f"| {name} | {msr:.0e} | {at} | {cap} | {'yes (too loose)' if not tight else 'no'} |", flush=True)
    return 1 if bad else 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--floors", action="store_true", help="check the convergence floors instead")
    ap.add_argument("--workers", type=int, default=4)
    a = ap.parse_args()
    if a.floors:
        return floors()
    rows = bad_input_table(a.workers)
    print(markdown(rows))
    failed = [r for r in rows if not all(r[c] for c in ("exit", "one line", "no traceback", "names key",
                                                         "gives fix", "wrote nothing"))]
    print(f"\n{len(rows) - len(failed)} of {len(rows)} cases pass every check")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
