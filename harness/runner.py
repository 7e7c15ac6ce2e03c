"""Run one solver on one problem under a budget: setup, timed solve, status, trace.

Knows nothing about Hydra or files: ``run_solver`` takes objects and returns a
``JobResult``; ``harness.job`` turns a config into objects and writes the trace.
"""

from __future__ import annotations

import math
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from harness.monitor import BareMonitor, Budget, Monitor, StopSolve, checkpoints
from problems import Problem
from solvers.base import Solver

__all__ = ["Budget", "JobResult", "run_solver", "trace_frame"]

TRACE_FIELDS = ["iteration", "time_s", "msr", "mse", "rel_res", "matvecs"]
RERUN_PER_DECADE = 5  # each re-run starts from scratch, so fewer checkpoints than a callback run


@dataclass
class JobResult:
    status: str
    message: str = ""
    setup_s: float = float("nan")
    strategy: str = "callback"
    trace: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=TRACE_FIELDS))
    timing_check: dict | None = None


def _error_message(exc: BaseException) -> str:
    frame = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
    where = f" ({frame.filename.rsplit('/', 1)[-1]}:{frame.lineno})" if frame else ""
    return f"{type(exc).__name__}: {exc}{where}"


def trace_frame(rows: list[dict]) -> pd.DataFrame:
    """Monitor rows as a trace DataFrame (the TRACE_FIELDS columns)."""
    return pd.DataFrame(rows, columns=TRACE_FIELDS)


Sink = Callable[[str, Any], None]


def run_solver(problem: Problem, solver: Solver, budget: Budget, *, verify_timing: bool = False,
               progress=None, sink: Sink | None = None) -> JobResult:
    """Set up and run ``solver`` on ``problem``; never raises for solver failures.

    ``sink(kind, payload)``, if given, is told ``("setup", setup_s)`` when the
    setup is done and ``("row", row)`` for every trace row as it is recorded
    (off the solve clock), so a supervising process keeps a partial trace of a
    solve that never returns (``harness.guard``).
    """
    reason = solver.available() or solver.supports(problem)
    if reason:
        return JobResult("unavailable", reason, strategy=_strategy(solver))
    try:
        t0 = time.perf_counter()
        solver.setup(problem)
        solver.sync()
        setup_s = time.perf_counter() - t0
    except Exception as exc:
        solver.teardown()
        return JobResult("error", "setup failed: " + _error_message(exc), strategy=_strategy(solver))
    if sink is not None:
        sink("setup", setup_s)
    try:
        if solver.callbacks:
            result = _run_callback(problem, solver, budget, progress, sink)
        else:
            result = _run_rerun(problem, solver, budget, progress, sink)
        result.setup_s = setup_s
        if verify_timing and solver.callbacks and result.status not in ("error", "diverged") and len(result.trace) > 1:
            result.timing_check = _timing_check(problem, solver, result)
        return result
    finally:
        solver.teardown()


def _strategy(solver: Solver) -> str:
    return "callback" if solver.callbacks else "rerun"


def _solve_once(problem, solver, monitor, x0) -> tuple[str, str]:
    """One timed solve; returns (status, message). Solver exceptions become 'error'."""
    solver.matvecs = 0 if solver.matvecs is not None else None
    try:
        monitor.start(x0)
        x = solver.solve(problem, monitor)
        monitor.finish(x)
        return "ok", getattr(solver, "exit_message", None) or "solver returned by itself"
    except StopSolve as stop:
        return stop.status, stop.message
    except FloatingPointError as exc:
        return "diverged", _error_message(exc)
    except Exception as exc:
        return "error", _error_message(exc)


def _run_callback(problem, solver, budget, progress, sink=None) -> JobResult:
    on_row = None if sink is None else (lambda row: sink("row", row))
    monitor = Monitor(problem, budget, sync=solver.sync, matvecs=lambda: solver.matvecs, progress=progress,
                      on_row=on_row)
    status, message = _solve_once(problem, solver, monitor, problem.initial_field())
    return JobResult(status, message, strategy="callback", trace=trace_frame(monitor.rows))


def _run_rerun(problem, solver, budget, progress, sink=None) -> JobResult:
    """Re-run strategy for solvers without callbacks: a fresh solve with maxiter=k per checkpoint."""
    cap = getattr(solver, "max_iterations", None) or budget.max_iters
    rows: list[dict] = []
    status, message = "budget", f"max_iters={budget.max_iters} reached"
    for k in checkpoints(min(cap, budget.max_iters), RERUN_PER_DECADE):
        if k == 0:
            continue
        sub = Budget(max_iters=k, max_seconds=math.inf, target_msr=None, divergence_factor=math.inf)
        monitor = Monitor(problem, sub, sync=solver.sync, matvecs=lambda: solver.matvecs)
        st, msg = _solve_once(problem, solver, monitor, problem.initial_field())
        n = len(rows)
        if not rows:
            rows.append(monitor.rows[0])
        if len(monitor.rows) > 1:
            rows.append(monitor.rows[-1])
        if sink is not None:
            for row in rows[n:]:
                sink("row", row)
        if progress is not None:
            progress.update(k - progress.n)
        if st == "error":
            return JobResult("error", msg, strategy="rerun", trace=trace_frame(rows))
        last = rows[-1]
        stop = budget.verdict(last["msr"], rows[0]["msr"], last["iteration"])
        if stop is not None:
            status, message = stop.status, stop.message
            break
        if last["time_s"] >= budget.max_seconds:
            status, message = "budget", f"max_seconds={budget.max_seconds:g} reached"
            break
        if monitor.last_k < k:  # finished on its own before using its iterations
            status, message = "ok", f"solver finished after {monitor.last_k} iterations"
            break
        if k == cap and cap < budget.max_iters:
            status, message = "ok", f"solver finished ({cap} iteration{'s' if cap > 1 else ''})"
    return JobResult(status, message, strategy="rerun", trace=trace_frame(rows))


def _timing_check(problem, solver, result: JobResult) -> dict:
    """Re-run without instrumentation for the same iteration count; compare times.

    ratio = monitor-attributed solve time / uninstrumented solve time; 1.0 means
    the monitor charged nothing of its own to the solver.
    """
    last = result.trace.iloc[-1]
    k = int(last["iteration"])
    bare = BareMonitor(k)
    solver.matvecs = 0 if solver.matvecs is not None else None
    solver.sync()
    t0 = time.perf_counter()
    try:
        solver.solve(problem, bare)
    except StopSolve:
        pass
    solver.sync()
    bare_s = time.perf_counter() - t0
    instrumented = float(last["time_s"])
    return {"iterations": k, "instrumented_s": instrumented, "bare_s": bare_s,
            "ratio": instrumented / bare_s if bare_s > 0 else float("nan")}
