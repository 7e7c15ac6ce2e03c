"""Evaluate a Metamizer checkpoint through the harness (``harness.runner.run_solver``).

``python -m solvers.metamizer.evaluate [CHECKPOINT] [--sizes 64 128 256] [--iters 300]``
prints, per problem and grid size, the best MSR reached within 10/30/100/150/300
iterations and the first iteration reaching 1e-10 and 1e-28 (the model card's
table). Thread count: ``--threads`` (default 1).
"""

from __future__ import annotations

import argparse
import math

import numpy as np
import torch

PROBLEMS = ("laplace_bilinear", "laplace_harmonic", "poisson_manufactured", "laplace_obstacles")
AT = (10, 30, 100, 150, 300)


def evaluate(checkpoint: str, problems=PROBLEMS, sizes=(64, 128), iters: int = 300, variant=None) -> list[dict]:
    from harness.runner import Budget, run_solver
    from problems import make_problem
    from solvers.metamizer.solver import Metamizer

    rows = []
    for n in sizes:
        for name in problems:
            problem = make_problem(name, n=n)
            solver = Metamizer("metamizer", checkpoint=checkpoint, variant=variant)
            res = run_solver(problem, solver, Budget(max_iters=iters, max_seconds=600.0))
            tr = res.trace
            row = {"problem": name, "n": n, "status": res.status}
            for k in AT:
                if k <= iters:
                    sel = tr[(tr.iteration <= k) & (tr.iteration >= 1)]
                    row[f"msr@{k}"] = float(sel.msr.min()) if len(sel) else math.nan
            for t in (1e-10, 1e-28):
                hit = tr[(tr.msr <= t) & (tr.iteration >= 1)]
                row[f"it<={t:g}"] = int(hit.iteration.min()) if len(hit) else None
            k = tr.iteration.max()
            row["ms_per_it"] = 1e3 * float(tr[tr.iteration == k].time_s.iloc[0]) / max(k, 1)
            rows.append(row)
            print(_fmt(row), flush=True)
    return rows


def _fmt(row: dict) -> str:
    parts = [f"{row['problem']:<21} n={row['n']:<4} {row['status']:<7}"]
    for k, v in row.items():
        if k.startswith("msr@"):
            parts.append(f"{k}={v:8.1e}")
        elif k.startswith("it<="):
            parts.append(f"{k}={v if v is not None else '-':>4}")
    parts.append(f"{row['ms_per_it']:.2f} ms/it")
    return "  ".join(parts)


def markdown(rows: list[dict]) -> str:
    keys = [k for k in rows[0] if k.startswith(("msr@", "it<="))]
    head = "| problem | n | " + " | ".join(keys) + " | ms/it |\n|---|---|" + "---|" * len(keys) + "---|\n"
    body = ""
    for r in rows:
        vals = [f"{r[k]:.1e}" if k.startswith("msr@") else str(r[k] if r[k] is not None else "-") for k in keys]
        body += f"| {r['problem']} | {r['n']} | " + " | ".join(vals) + f" | {r['ms_per_it']:.2f} |\n"
    return head + body


def main(argv=None) -> None:
    from solvers.metamizer.solver import DEFAULT_CHECKPOINT

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint", nargs="?", default=DEFAULT_CHECKPOINT)
    ap.add_argument("--sizes", type=int, nargs="+", default=[64, 128])
    ap.add_argument("--problems", nargs="+", default=list(PROBLEMS))
    ap.add_argument("--iters", type=int, default=300)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--markdown", action="store_true")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    np.seterr(all="ignore")
    rows = evaluate(a.checkpoint, a.problems, a.sizes, a.iters)
    if a.markdown:
        print(markdown(rows))


if __name__ == "__main__":
    main()
