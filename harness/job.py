"""One job: a composed config -> problem + solver -> repeats -> one trace file.

Independent of Hydra's runtime (the output folder and the command-line
overrides are passed in), so tests can drive it with the compose API.
"""

from __future__ import annotations

import json
import logging
import uuid
from pathlib import Path
from typing import Any

import pandas as pd
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from harness.environment import environment, now
from harness.monitor import Budget
from harness.results import COLUMNS, TRACE_NAME, write_trace
from harness.runner import JobResult, run_solver
from problems import Problem, ProblemError, make_problem

log = logging.getLogger("harness")


class ConfigError(ValueError):
    """A job configuration a user can fix (bad size, budget, solver parameter)."""


def build_problem(cfg: DictConfig) -> Problem:
    p = OmegaConf.to_container(cfg.problem, resolve=True)
    return make_problem(p.pop("name"), **p)


def build_budget(cfg: DictConfig) -> Budget:
    try:
        return Budget(**OmegaConf.to_container(cfg.budget, resolve=True))
    except (TypeError, ValueError) as exc:
        raise ConfigError(str(exc)) from None


def solver_label(name: str, overrides: list[str]) -> str:
    """'adam' plus the solver parameters set on the command line, e.g. 'adam(lr=0.1)'."""
    extra = [o.split("solver.", 1)[1] for o in overrides if o.lstrip("+~").startswith("solver.")]
    return f"{name}({','.join(sorted(extra))})" if extra else name


def set_threads(threads: int | None) -> int:
    import os

    import torch
    from threadpoolctl import threadpool_limits

    threads = int(threads or len(os.sched_getaffinity(0)))
    torch.set_num_threads(threads)
    threadpool_limits(threads)
    return threads


def run_job(cfg: DictConfig, out_dir: str | Path, overrides: list[str] = ()) -> Path:
    """Run the configured job (all repeats) and write ``out_dir/trace.parquet``."""
    threads = set_threads(cfg.threads)
    problem = build_problem(cfg)
    budget = build_budget(cfg)
    solver_cfg = OmegaConf.to_container(cfg.solver, resolve=True)
    name = solver_cfg["name"]
    label = solver_label(name, list(overrides))
    run_id = uuid.uuid4().hex[:12]
    rows, results = [], []
    for repeat in range(int(cfg.repeats)):
        try:
            solver = instantiate(cfg.solver, _convert_="all")
        except Exception as exc:  # a bad solver parameter: recorded, the sweep goes on
            cause = exc.__cause__ or exc
            result = JobResult("error", f"bad solver configuration: {type(cause).__name__}: {cause}")
            solver = None
        else:
            progress = _progress(cfg, label, problem, budget)
            try:
                result = run_solver(problem, solver, budget, verify_timing=bool(cfg.verify_timing),
                                    progress=progress)
            finally:
                if progress is not None:
                    progress.close()
        results.append(result)
        rows.append(_rows(cfg, problem, solver, solver_cfg, label, run_id, repeat, result, threads))
        log.info(_one_line(label, problem, repeat, result))
    meta = {
        "run_id": run_id,
        "date": now(),
        **environment(),
        "threads": threads,
        "strategy": results[-1].strategy,
        "config": OmegaConf.to_container(cfg, resolve=True),
        "overrides": list(overrides),
        "timing_check": [r.timing_check for r in results],
    }
    return write_trace(pd.concat(rows, ignore_index=True), Path(out_dir) / TRACE_NAME, meta)


def _progress(cfg, label, problem, budget):
    if not cfg.get("progress", True):
        return None
    from tqdm import tqdm

    return tqdm(total=budget.max_iters, desc=f"{label} n={problem.shape[0]}", leave=False,
                unit="it", dynamic_ncols=True, mininterval=0.5)


def _one_line(label: str, problem: Problem, repeat: int, r: JobResult) -> str:
    if r.trace.empty:
        return f"{label:>14s} {problem.name} {problem.shape[0]}x{problem.shape[1]}  {r.status}: {r.message}"
    last = r.trace.iloc[-1]
    return (f"{label:>14s} {problem.name} {problem.shape[0]}x{problem.shape[1]} rep {repeat}: {r.status:8s} "
            f"it={int(last.iteration):>6d} solve={last.time_s:8.4f}s setup={r.setup_s:7.4f}s "
            f"msr={last.msr:.2e} mse={last.mse:.2e}  ({r.message})")


def _rows(cfg, problem: Problem, solver, solver_cfg: dict[str, Any], label, run_id, repeat,
          result: JobResult, threads) -> pd.DataFrame:
    df = result.trace.copy()
    if df.empty:  # never ran: one row that carries the status and the reason
        df = pd.DataFrame([{c: None for c in df.columns}])
    h, w = problem.shape
    params = {k: v for k, v in solver_cfg.items() if k not in ("_target_", "name")}
    const = {
        "sweep": cfg.sweep_name, "run_id": run_id, "problem": problem.name,
        "n": int(cfg.problem.n) if cfg.problem.get("n") is not None else h, "h": h, "w": w,
        "n_unknowns": problem.n_interior, "solver": solver_cfg["name"], "label": label,
        "family": getattr(solver, "family", "unknown"), "backend": getattr(solver, "backend", "unknown"),
        "device": getattr(solver, "device", "cpu"), "params": json.dumps(params, sort_keys=True),
        "strategy": result.strategy, "exact_kind": problem.exact_kind, "seed": int(cfg.seed),
        "threads": threads, "repeat": repeat, "setup_s": result.setup_s,
        "status": result.status, "message": result.message,
    }
    for k, v in const.items():
        df[k] = v
    return df[list(COLUMNS)]


__all__ = ["ConfigError", "ProblemError", "build_problem", "run_job", "solver_label"]
