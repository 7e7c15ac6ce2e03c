"""A synthetic results folder of any size, written through the harness's own trace writer.

The report reads it as it reads a real sweep: the same schema (``harness.results.job_rows`` and
``write_trace``), the monitor's checkpoints (``harness.monitor.checkpoints``), statuses and messages worded as
the runner words them, repeats only for short solves, and the metadata a job records (config and budget,
machine, the neural solvers' training bill). The curves come from a simple model of each family, seeded, so
two calls with the same arguments write the same numbers:

- a solve makes ``decades`` orders of magnitude of MSR per iteration and costs ``seconds per unknown`` per
  iteration; CG-type Krylov convergence slows with the grid size (decades ~ 1/n), multigrid and the neural
  solvers' does not, first-order optimisers crawl; MSR stops at a float64 floor near 1e-31;
- a solve ends as the budget says: at the stop target, after ``max_seconds`` of solve time, after
  ``max_iters``, or (direct solvers, a few Krylov solvers) by itself; some first-order runs diverge at large sizes.

    python benchmarks/synthetic_sweep.py OUT_DIR [--problems 4] [--sizes 10] [--labels 50]   (2,000 jobs)
    python benchmarks/synthetic_sweep.py OUT_DIR --problems 1 --sizes 32 64 128 256 512 --labels 25
                                                  (125 jobs: the shape of +sweep=laplace_scaling)
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harness.monitor import checkpoints
from harness.results import TRACE_NAME, job_rows, trace_frame, write_trace

PROBLEMS = ("laplace_bilinear", "poisson_manufactured", "laplace_harmonic", "laplace_obstacles")
SIZES = (32, 48, 64, 96, 128, 192, 256, 384, 512, 768)
BUDGET = {"max_iters": 100_000, "max_seconds": 10.0, "target_msr": 1e-28, "divergence_factor": 1e6}
REPEATS, REPEAT_UNDER_S = 3, 2.0
FLOOR = 3e-31  # where float64 round-off stops the MSR of these problems


@dataclass(frozen=True)
class Model:
    """How one solver behaves: MSR decades per iteration at n = 64 (``scale``: the exponent of n it falls with),
    seconds per iteration per unknown, setup seconds per unknown (+ a fixed part)."""

    solver: str
    family: str
    decades: float
    scale: float = 0.0
    per_unknown: float = 1e-8
    setup: float = 1e-3
    setup_per_unknown: float = 0.0
    ends_itself: bool = False        # returns by itself (a finite algorithm) once it stops improving
    diverges_from: int | None = None  # grid size from which a run blows up


MODELS = (
    Model("metamizer", "neural", 0.9, 0.6, 2.5e-6, 0.35),
    Model("metamizer_paper", "neural", 1.1, 0.7, 4e-6, 0.45),
    Model("cg", "krylov", 0.25, 1.0, 6e-9), Model("minres", "krylov", 0.24, 1.0, 7e-9),
    Model("gmres", "krylov", 0.15, 1.0, 3e-8), Model("lsmr", "krylov", 0.12, 1.0, 9e-9),
    Model("bicgstab", "krylov", 0.3, 1.0, 1.2e-8), Model("gcrotmk", "krylov", 0.2, 1.0, 4e-8),
    Model("lgmres", "krylov", 0.2, 1.0, 3.5e-8), Model("cg_jacobi", "krylov", 0.25, 1.0, 8e-9),
    Model("cg_ilu", "krylov", 0.5, 1.0, 4e-8, setup_per_unknown=2e-7),
    Model("pyamg_sa", "multigrid", 1.0, 0.0, 1.5e-7, setup_per_unknown=1.2e-6),
    Model("pyamg_rs", "multigrid", 0.9, 0.0, 1.3e-7, setup_per_unknown=1.5e-6),
    Model("cg_pyamg_sa", "multigrid", 1.5, 0.0, 2e-7, setup_per_unknown=1.2e-6),
    Model("cg_pyamg_rs", "multigrid", 1.6, 0.0, 2e-7, setup_per_unknown=1.5e-6),
    Model("newton_cg", "quasi_newton", 0.08, 1.0, 4e-8), Model("nonlinear_cg", "quasi_newton", 0.06, 1.0, 2e-8),
    Model("lbfgsb", "quasi_newton", 0.04, 1.0, 3e-8),
    Model("sgd", "first_order", 0.004, 1.0, 6e-8, diverges_from=512),
    Model("adam", "first_order", 0.002, 1.0, 8e-8), Model("adamw", "first_order", 0.002, 1.0, 8e-8),
    Model("rmsprop", "first_order", 0.003, 1.0, 8e-8, diverges_from=384),
    Model("adagrad", "first_order", 0.01, 1.0, 8e-8), Model("adadelta", "first_order", 0.001, 1.0, 8e-8),
    Model("splu", "direct", 40.0, 0.0, 1e-9, setup_per_unknown=4e-6, ends_itself=True),
    Model("dst", "direct", 40.0, 0.0, 1e-9, setup_per_unknown=1.5e-7, ends_itself=True),
)
LEARNING_RATES = (1e-4, 3e-4, 1e-3, 3e-3, 0.03, 0.1, 0.3, 1.0)   # parameter variants of the first-order solvers
TRAINING = {"training_wall_s": 1200.0, "training_steps": 8000, "training_hardware": "Synthetic CPU"}


def labels(count: int) -> list[tuple[str, Model, dict]]:
    """``count`` solver configurations: every model, then learning-rate variants of the first-order ones."""
    out = [(m.solver, m, {}) for m in MODELS]
    first_order = [m for m in MODELS if m.family == "first_order"]
    for lr, m in itertools.product(LEARNING_RATES, first_order):
        if len(out) >= count:
            break
        factor = math.sqrt(lr / 0.01)
        variant = Model(m.solver, m.family, m.decades * factor, m.scale, m.per_unknown,
                        diverges_from=128 if lr >= 0.3 else m.diverges_from)
        out.append((f"{m.solver}(lr={lr:g})", variant, {"lr": lr}))
    return out[:count]


def _solve(model: Model, n: int, rng: np.random.Generator) -> tuple[list[dict], str, str]:
    """The monitor's rows of one solve, its status and message."""
    unknowns = (n - 4) ** 2
    decades = model.decades * (64 / n) ** model.scale * rng.uniform(0.9, 1.1)
    per_iter = model.per_unknown * unknowns * rng.uniform(0.85, 1.25) + 2e-5
    msr0 = 10 ** rng.uniform(-3, -1)
    rows, budget = [], BUDGET
    last = math.ceil(budget["max_seconds"] / per_iter)  # the iteration whose end passes max_seconds
    for k in sorted({*(k for k in checkpoints(budget["max_iters"]) if k < last), min(last, budget["max_iters"])}):
        t = 0.0 if k == 0 else k * per_iter * rng.uniform(0.97, 1.03)
        wiggle = 10 ** (0.15 * math.sin(k / 3.0))
        msr = max(msr0 * 10 ** (-decades * k) * wiggle, FLOOR * rng.uniform(1, 3))
        if model.diverges_from and n >= model.diverges_from and k > 20:
            msr = msr0 * 10 ** (0.3 * (k - 20))
        if model.family == "direct" and k == 1:
            msr = FLOOR * rng.uniform(1, 3)
        rows.append({"iteration": k, "time_s": t, "matvecs": k, "msr": msr, "mse": msr * 4.0 * n,
                     "rel_res": math.sqrt(msr / msr0)})
        if not math.isfinite(msr) or msr > budget["divergence_factor"] * msr0:
            return rows, "diverged", f"MSR {msr:.3g} at iteration {k} (initial {msr0:.3g})"
        if msr <= budget["target_msr"]:
            return rows, "target", f"MSR {msr:.3g} <= target {budget['target_msr']:g} at iteration {k}"
        if t >= budget["max_seconds"]:
            return rows, "budget", f"max_seconds={budget['max_seconds']:g} reached"
        if model.ends_itself and k >= 1:
            return rows, "stalled", (f"solver completed its algorithm (1 iteration); at iteration {k} MSR "
                                     f"{msr:.3g} > target {budget['target_msr']:g}")
    return rows, "budget", f"max_iters={budget['max_iters']} reached"


def write_job(root: Path, sweep: str, problem: str, n: int, label: str, model: Model, params: dict,
              rng: np.random.Generator, job_num: int, unavailable: bool = False) -> Path:
    """One job (its repeats) as one trace file, where a real sweep would put it."""
    run_id = f"{int(rng.integers(0, 2**48)):012x}"
    frames, solves = [], []
    for repeat in range(REPEATS):
        if unavailable:
            rows, status, message = [], "unavailable", "cupy is not installed (pip install -e '.[gpu]')"
        else:
            rows, status, message = _solve(model, n, rng)
        setup = model.setup + model.setup_per_unknown * (n - 4) ** 2 * rng.uniform(0.9, 1.2)
        const = {"sweep": sweep, "run_id": run_id, "problem": problem, "n": n, "h": n, "w": n,
                 "n_unknowns": (n - 4) ** 2, "solver": model.solver, "label": label, "family": model.family,
                 "backend": "synthetic", "device": "cpu", "params": json.dumps(params, sort_keys=True),
                 "strategy": "callback", "exact_kind": "analytic", "seed": 0, "threads": 1, "repeat": repeat,
                 "setup_s": float("nan") if unavailable else setup, "status": status, "message": message}
        frames.append(job_rows(trace_frame(rows), const))
        solves.append(rows)
        if unavailable or status == "diverged" or rows[-1]["time_s"] >= REPEAT_UNDER_S:
            break
    config = {"sweep_name": sweep, "budget": BUDGET, "repeats": REPEATS, "repeat_solve_under_s": REPEAT_UNDER_S,
              "threads": 1, "problem": {"name": problem, "n": n}, "solver": {"name": model.solver, **params}}
    meta = {"run_id": run_id, "date": f"2026-12-01T00:{job_num // 60 % 60:02d}:{job_num % 60:02d}",
            "cpu": "Synthetic CPU (benchmarks/synthetic_sweep.py)", "cpu_count": 2, "gpu": None, "threads": 1,
            "hostname": "synthetic", "platform": "synthetic", "commit": "synthetic",
            "versions": {"numpy": np.__version__}, "config": config, "timing_check": [None] * len(frames),
            "solver_info": TRAINING if model.family == "neural" else {}}
    import pandas as pd

    folder = root / f"{problem}_n{n}" / model.solver / str(job_num)
    return write_trace(pd.concat(frames, ignore_index=True), folder / TRACE_NAME, meta)


def write_sweep(root: str | Path, *, problems: int = 4, sizes: int | tuple[int, ...] = 10, labels_per_cell: int = 50,
                sweep: str = "synthetic", seed: int = 0) -> Path:
    """``problems x sizes x labels_per_cell`` jobs under ``root/<sweep>/<stamp>``; returns that folder.
    ``sizes``: how many of ``SIZES``, or the grid sizes themselves.

    ``labels_per_cell`` beyond the 25 solvers of ``MODELS`` adds learning-rate variants, and every fifth extra
    one is an unavailable GPU solver (a trace with one row and no checkpoint), as a CPU machine records it.
    """
    rng = np.random.default_rng(seed)
    folder = Path(root) / sweep / "2026-12-01_00-00-00-000000"
    configs = labels(labels_per_cell)
    gpu = {i for i in range(len(MODELS), len(configs)) if (i - len(MODELS)) % 5 == 4}
    num = 0
    grids = SIZES[:sizes] if isinstance(sizes, int) else sizes
    for problem, n in itertools.product(PROBLEMS[:problems], grids):
        for i, (label, model, params) in enumerate(configs):
            if i in gpu:
                label, model = f"cupy_{model.solver}_{i}", Model(f"cupy_{model.solver}_{i}", "krylov", 1.0)
            write_job(folder, sweep, problem, n, label, model, params, rng, num, unavailable=i in gpu)
            num += 1
    return folder


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", type=Path)
    p.add_argument("--problems", type=int, default=4)
    p.add_argument("--sizes", type=int, nargs="+", default=[10],
                   help="how many of the sizes 32..768, or the grid sizes themselves (e.g. 32 64 128 256 512)")
    p.add_argument("--labels", type=int, default=50)
    a = p.parse_args()
    sizes = a.sizes[0] if len(a.sizes) == 1 else tuple(a.sizes)
    print(write_sweep(a.out, problems=a.problems, sizes=sizes, labels_per_cell=a.labels))


if __name__ == "__main__":
    main()
