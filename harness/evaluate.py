"""Evaluate one solver config through the harness (``harness.runner.run_solver``), e.g. a Metamizer model.

``python -m harness.evaluate [CHECKPOINT] [--solver metamizer_paper] [--sizes 64 100 128 256]
[--problems laplace_bilinear ...] [--iters 300] [--device cpu|cuda] [--markdown]``
prints, per problem and grid size, the best MSR reached within 10/30/60/100/150/300
iterations and the first iteration reaching 1e-10 and 1e-28 (the Metamizer model
card's table). ``--solver`` names a config in conf/solver (default ``metamizer``); a
CHECKPOINT given (Metamizer configs) replaces its file (hidden size and variant then
come from the file). Thread count: ``--threads`` (default 1).

It lives in the harness, not beside the model, because it drives the runner: solvers
never import the harness (the import contract in pyproject.toml).

Bad input (an unknown solver config, a size below the smallest grid, a missing
checkpoint, a bad parameter) is one line before anything runs, exit status 2;
a solver that cannot run here (unavailable, or its setup fails) is one line,
exit status 1.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import torch

CONF_SOLVER = Path(__file__).resolve().parents[1] / "conf" / "solver"

PROBLEMS = ("laplace_bilinear", "laplace_harmonic", "poisson_manufactured", "laplace_obstacles")
AT = (10, 30, 60, 100, 150, 300)


class NotEvaluated(RuntimeError):
    """The solver could not run here (unavailable, or its setup failed): nothing to evaluate."""


def solver_config(solver: str = "metamizer", checkpoint: str | None = None, device: str | None = None) -> dict:
    """conf/solver/<solver>.yaml (with its ``_target_``), with an optional checkpoint/device override."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    with initialize_config_dir(version_base="1.3", config_dir=str(CONF_SOLVER)):
        cfg = OmegaConf.to_container(compose(solver), resolve=True)
    if checkpoint:
        cfg.update(checkpoint=checkpoint, hidden=None, variant=None)  # the file's own layout
    if device:
        cfg["device"] = device
    return cfg


def solver_params(solver: str = "metamizer", checkpoint: str | None = None, device: str | None = None) -> dict:
    """The constructor parameters of conf/solver/<solver>.yaml (``solver_config`` without ``_target_``)."""
    cfg = solver_config(solver, checkpoint, device)
    cfg.pop("_target_", None)
    return cfg


def evaluate(checkpoint: str | None = None, problems=("laplace_bilinear",), sizes=(64, 100, 128, 256),
             iters: int = 300, solver: str = "metamizer", device: str | None = None) -> list[dict]:
    from hydra.utils import get_class

    from harness.runner import Budget, run_solver
    from problems import make_problem

    params = solver_config(solver, checkpoint, device)
    cls = get_class(params.pop("_target_"))
    rows = []
    for n in sizes:
        for name in problems:
            problem = make_problem(name, n=n)
            s = cls(**params)
            res = run_solver(problem, s, Budget(max_iters=iters, max_seconds=600.0))
            tr = res.trace
            if tr.empty or not (tr.iteration >= 1).any():
                raise NotEvaluated(f"{params['name']} on {name} n={n}: {res.status}: {' '.join(res.message.split())}")
            row = {"problem": name, "n": n, "status": res.status, "solver": params["name"]}
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


def input_error(a) -> str | None:
    """One line for the first bad argument (checked before anything runs), or None."""
    from harness.validate import MIN_GRID, THREADS_MAX, solver_error

    names = sorted(p.stem for p in CONF_SOLVER.glob("*.yaml"))
    if a.solver not in names:
        return f"--solver {a.solver}: no such solver config in conf/solver; valid: {', '.join(names)}"
    small = [n for n in a.sizes if n < MIN_GRID]
    if small:
        return f"--sizes {small[0]} is below the smallest grid: use sizes >= {MIN_GRID} (e.g. --sizes 64 128)"
    if a.iters < 1:
        return f"--iters {a.iters} is not valid: use a positive number of iterations (e.g. --iters 300)"
    if not 1 <= a.threads <= THREADS_MAX:
        return f"--threads {a.threads} is not valid: use an integer in 1..{THREADS_MAX} (e.g. --threads 1)"
    if a.checkpoint is not None and not Path(a.checkpoint).expanduser().is_file():
        what = "is a directory" if Path(a.checkpoint).expanduser().is_dir() else "does not exist"
        return f"checkpoint {a.checkpoint} {what}: give a checkpoint file (.safetensors, or an authors' .state)"
    try:
        cfg = solver_config(a.solver, a.checkpoint, a.device)
    except Exception as exc:  # noqa: BLE001 - a config that does not compose: one line
        return f"--solver {a.solver}: its config does not compose ({' '.join(str(exc).split())})"
    line = solver_error(cfg, [])
    return line.replace("solver.device=", "--device ").replace("solver.", "--solver parameter ") if line else None


def main(argv=None) -> int:
    from harness.arguments import OneLineParser

    ap = OneLineParser(prog="python -m harness.evaluate", description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint", nargs="?", default=None, help="a .safetensors or an authors' .state file")
    ap.add_argument("--solver", default="metamizer", help="config in conf/solver (default: metamizer)")
    ap.add_argument("--device", default=None, help="cpu | cuda (default: the config's)")
    ap.add_argument("--sizes", type=int, nargs="+", default=[64, 100, 128, 256])
    ap.add_argument("--problems", nargs="+", default=["laplace_bilinear"], choices=PROBLEMS)
    ap.add_argument("--iters", type=int, default=300)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--markdown", action="store_true")
    a = ap.parse_args(argv)
    line = input_error(a)
    if line:
        print(f"harness.evaluate: error: {line}", file=sys.stderr)
        return 2
    torch.set_num_threads(a.threads)
    np.seterr(all="ignore")
    try:
        rows = evaluate(a.checkpoint, a.problems, a.sizes, a.iters, a.solver, a.device)
    except NotEvaluated as exc:
        print(f"harness.evaluate: error: {exc}", file=sys.stderr)
        return 1
    if a.markdown:
        print(markdown(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
