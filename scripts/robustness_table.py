"""Re-run the robustness table of docs/ROBUSTNESS.md on the current code and print it as Markdown.

    python scripts/robustness_table.py            # the table (a few minutes on 2 busy cores)
    python scripts/robustness_table.py --floors   # the convergence floors of tests/test_solvers.py

Each case (``scripts/robustness_cases.py``) runs one entry point (``python -m harness.run``,
``harness.report``, ``harness.check``, ``harness.evaluate``) with its results and reports in a
temporary folder, after the files its setup needs, and is judged by what came back: the exit
status (the one expected), one line (or, for a job that logs its own lines, the last line judged),
no traceback, the key named in the line, a fix or a place given (a text heuristic: "use", "valid",
"e.g.", "did you mean", "give", "kept", ...), and the files: a refused case writes nothing, and no
case loses a byte of what was there before (every earlier file's content is still in the folder).
Exit status 1 if any case fails a check.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from robustness_cases import CASES, REPO, RUN, SETUPS, Case  # noqa: E402

ENV = {**os.environ, "PYTHONPATH": str(REPO), "HYDRA_FULL_ERROR": ""}
FIX = re.compile(r"\buse\b|valid|e\.g\.|did you mean|its parameters|resume=|choose|set solver\.|give |wait for|"
                 r"kept|drop |add -m|--help|bless|free |check |already complete|nothing to run|install|run python")
CHECKS = ["exit", "one line", "no traceback", "names key", "gives fix", "files kept"]


def run(module: str, args: list[str], timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", module, *args], cwd=REPO, env=ENV, capture_output=True, text=True,
                          timeout=timeout)


def files(folder: Path) -> dict[str, str]:
    """path -> sha256 of every file under ``folder``."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in folder.rglob("*") if p.is_file()}


def judge(case: Case, args: list[str], proc, before: dict[str, str], after: dict[str, str]) -> dict:
    said = [ln for ln in (proc.stdout + proc.stderr).splitlines() if ln.strip()]
    line = said[-1] if said else ""
    refused = case.code == 2
    checks = {
        "exit": proc.returncode == case.code,
        "one line": len(said) == 1 if not case.last else bool(said),
        "no traceback": "Traceback" not in proc.stdout + proc.stderr,
        "names key": case.key in line,
        "gives fix": case.code == 0 or bool(FIX.search(line)),
        # refused: nothing written at all; otherwise: nothing that was there is lost (moved is fine: resume
        # keeps an earlier multirun.yaml as multirun.<k>.yaml)
        "files kept": after == before if refused else set(before.values()) <= set(after.values()),
    }
    return {"group": case.group, "module": case.module, "args": args, "code": proc.returncode, "expected": case.code,
            "line": line, "lines": len(said), **checks}


def one(tmp: Path, i: int, case: Case) -> dict:
    folder = tmp / f"case{i:03d}"
    folder.mkdir()
    values = {"tmp": str(folder)}
    if case.setup:
        values.update(SETUPS[case.setup](folder))
    args = [a.format(**values) if "{" in a and "${" not in a else a for a in case.args]
    extra, first = [], []
    if case.module == RUN:
        first.append("progress=false")  # before the case's own arguments: a case's progress=... wins
        if not any(a.startswith(("hydra.run.dir", "resume")) for a in args):
            extra.append(f"hydra.run.dir={folder}/run")
        if not any(a.startswith(("hydra.sweep.dir", "resume")) for a in args):
            extra.append(f"hydra.sweep.dir={folder}/sweep-out")
    elif case.module == "harness.report" and "--reports-root" not in args:
        extra += ["--reports-root", f"{folder}/reports", "--no-figures"]
    elif case.module == "harness.check" and "--out" not in args:
        extra += ["--out", f"{folder}/check-out"]
    before = files(folder)
    proc = run(case.module, [*first, *args, *extra])
    return judge(case, args, proc, before, files(folder))


def table(workers: int = 4, only: set[int] | None = None) -> list[dict]:
    """Every case (or the numbers in ``only``, 1-based as in the table), then the busy-folder cases."""
    tmp = Path(tempfile.mkdtemp(prefix="robustness-"))
    chosen = [(i, c) for i, c in enumerate(CASES) if only is None or i + 1 in only]
    with ThreadPoolExecutor(workers) as pool:
        rows = list(pool.map(lambda item: one(tmp, *item), chosen))
    return rows + (busy_folder_cases(tmp) if only is None else [])


def busy_folder_cases(tmp: Path) -> list[dict]:
    """A second sweep, a resume, and a single job into a folder a running sweep owns (or one of its job folders)."""
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
        for args in (["-m", "solver=cg", f"hydra.sweep.dir={sweep}"], ["-m", "solver=cg", f"resume={sweep}"],
                     ["problem.n=20", f"hydra.run.dir={sweep}/laplace_bilinear_n20/cg/1"]):
            proc = run("harness.run", [*args, "progress=false"])
            case = Case("nothing overwritten", tuple(args), str(sweep))
            row = judge(case, [a.replace(str(tmp), "<tmp>") for a in args], proc, {}, {})
            rows.append(row)
        first.communicate(timeout=120)
    finally:
        first.kill()
    ok = first.returncode == 0 and len(list(sweep.rglob("trace.parquet"))) == 2
    for row in rows:
        row["files kept"] = ok  # the running sweep completed all its traces
    return rows


def markdown(rows: list[dict]) -> str:
    out = ["| # | class | command | exit (expected) | message | " + " | ".join(CHECKS[1:]) + " |",
           "|---|---|---|---|---|" + "---|" * (len(CHECKS) - 1)]
    for i, r in enumerate(rows, 1):
        line = re.sub(r"/tmp/robustness-[^/ ]+", "<tmp>", r["line"]).replace("|", "\\|")
        line = re.sub(r"PID \d+, started [0-9T:+-]+", "PID <pid>, started <time>", line)
        line = re.sub(r"\d{4}-\d\d-\d\d_\d\d-\d\d-\d\d-\d+", "<stamp>", line)
        line = line if len(line) <= 300 else line[:297] + "..."
        args = re.sub(r"/tmp/robustness-[^/ ]+", "<tmp>", " ".join(r["args"])).replace("|", "\\|")
        command = f"{r['module'].split('.')[-1]} {args}"
        marks = " | ".join("yes" if r[c] else "**NO**" for c in CHECKS[1:])
        code = f"{r['code']}" + ("" if r["exit"] else f" (**{r['expected']}**)")
        out.append(f"| {i} | {r['group']} | `{command}` | {code} | `{line}` | {marks} |")
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
    ap.add_argument("--only", help="comma-separated case numbers to re-run (while fixing them)")
    a = ap.parse_args()
    if a.floors:
        return floors()
    rows = table(a.workers, {int(x) for x in a.only.split(",")} if a.only else None)
    print(markdown(rows))
    failed = [r for r in rows if not all(r[c] for c in CHECKS)]
    print(f"\n{len(rows) - len(failed)} of {len(rows)} cases pass every check")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
