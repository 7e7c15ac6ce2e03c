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
from harness.results import trace_frame
from harness.status import Status
from problems import Problem
from solvers.base import Solver

__all__ = ["Budget", "JobResult", "rerun_plan", "run_solver", "warm_up"]

RERUN_PER_DECADE = 5  # each re-run starts from scratch, so fewer checkpoints than a callback run
WARMUP_ITERS = 3  # the untimed warm-up: enough to run every line of a solver's loop once
WARMUP_SECONDS = 1.0  # ... but never longer than this (a slow iteration has already warmed up)
TIMING_PAIRS = 5  # verify_timing: interleaved (instrumented, bare) pairs
TIMING_CHECK_SECONDS = 1.0  # verify_timing: solve length of each pair, at most


@dataclass
class JobResult:
    status: str  # a harness.status.Status
    message: str = ""
    setup_s: float = float("nan")  # the whole setup of this repeat, assembly included
    warmup_s: float = float("nan")  # the untimed warm-up solve (wall clock), for the record
    strategy: str = "callback"
    trace: pd.DataFrame = field(default_factory=lambda: trace_frame([]))
    timing_check: dict | None = None
    solver_info: dict = field(default_factory=dict)  # solver.describe(), taken before teardown


def _error_message(exc: BaseException) -> str:
    frame = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
    where = f" ({frame.filename.rsplit('/', 1)[-1]}:{frame.lineno})" if frame else ""
    return f"{type(exc).__name__}: {exc}{where}"


Sink = Callable[[str, Any], None]


def run_solver(problem: Problem, solver: Solver, budget: Budget, *, verify_timing: bool = False,
               progress=None, sink: Sink | None = None, warmup: bool = True) -> JobResult:
    """Set up, warm up and run ``solver`` on ``problem``; never raises for solver failures.

    Each call times a complete setup: the solver gets a ``fresh()`` copy of the
    problem, so the assembly of the sparse system is in ``setup_s`` of every
    repeat, not only the first. Then an untimed warm-up (``warm_up``) runs the
    solver briefly, the same way for every solver, so that one-off costs (first
    calls, memory first touched, lazy initialisation) never land on the solve
    clock: the first repeat in a fresh process is timed like the later ones.

    ``sink(kind, payload)``, if given, is told ``("setup", setup_s)`` when the
    setup is done and ``("row", row)`` for every trace row as it is recorded
    (off the solve clock), so a supervising process keeps a partial trace of a
    solve that never returns (``harness.guard``). ``warmup=False`` skips the
    warm-up (only to measure what it changes: benchmarks/bench_core.py).
    """
    problem = problem.fresh()
    reason = solver.available() or solver.supports(problem)
    if reason:
        return JobResult(Status.UNAVAILABLE, reason, strategy=_strategy(solver))
    plan = None if solver.callbacks else rerun_plan(solver, budget)
    try:
        if plan is not None:
            solver.set_rerun_plan(plan)  # e.g. AMGX prebuilds one solver object per planned re-run
        t0 = time.perf_counter()
        solver.setup(problem)
        solver.sync()
        setup_s = time.perf_counter() - t0
    except Exception as exc:
        solver.teardown()
        return JobResult(Status.ERROR, "setup failed: " + _error_message(exc), strategy=_strategy(solver))
    if sink is not None:
        sink("setup", setup_s)
    try:
        warmup_s = warm_up(problem, solver, budget, plan) if warmup else float("nan")
        if solver.callbacks:
            result = _run_callback(problem, solver, budget, progress, sink)
        else:
            result = _run_rerun(problem, solver, budget, plan, progress, sink)
        result.setup_s = setup_s
        result.warmup_s = warmup_s
        if verify_timing and solver.callbacks and result.status not in (Status.ERROR, Status.DIVERGED) \
                and len(result.trace) > 1:
            result.timing_check = _timing_check(problem, solver, result)
        result.solver_info = _describe(solver)
        return result
    finally:
        solver.teardown()


def _describe(solver: Solver) -> dict:
    """``solver.describe()`` for the trace metadata; a failing describe is recorded, not raised."""
    try:
        return dict(solver.describe())
    except Exception as exc:
        return {"describe_error": _error_message(exc)}


def _strategy(solver: Solver) -> str:
    return "callback" if solver.callbacks else "rerun"


def rerun_plan(solver: Solver, budget: Budget) -> list[int]:
    """The iteration counts the re-run strategy solves with, in order (it may stop earlier)."""
    cap = min(solver.max_iterations or budget.max_iters, budget.max_iters)
    return [k for k in checkpoints(cap, RERUN_PER_DECADE) if k > 0]


def warm_up(problem: Problem, solver: Solver, budget: Budget, plan: list[int] | None) -> float:
    """An untimed short solve under a throwaway monitor; returns its wall time.

    ``WARMUP_ITERS`` iterations (a re-run solver: its first planned re-run),
    stopped early after ``WARMUP_SECONDS``. Whatever it ends with is ignored:
    a solver that fails fails again, on the record, in the timed solve.
    """
    iters = plan[0] if plan else min(WARMUP_ITERS, budget.max_iters)
    sub = Budget(max_iters=iters, max_seconds=min(WARMUP_SECONDS, budget.max_seconds), target_msr=None,
                 divergence_factor=math.inf)
    t0 = time.perf_counter()
    _solve_once(problem, solver, Monitor(problem, sub, sync=solver.sync, matvecs=lambda: solver.matvecs),
                problem.initial_field())
    return time.perf_counter() - t0


def _stalled(solver: Solver, monitor: Monitor, budget: Budget, why: str | None = None) -> tuple[str, str]:
    """The solver returned before its budget without reaching the target: say where and why."""
    why = why or solver.exit_message or "solver returned by itself"
    last = monitor.rows[-1]
    target = f" > target {budget.target_msr:g}" if budget.target_msr else " (no target set)"
    return Status.STALLED, f"{why}; at iteration {last['iteration']} MSR {last['msr']:.3g}{target}"


def _solve_once(problem, solver, monitor, x0) -> tuple[str, str]:
    """One timed solve; returns (status, message). Solver exceptions become 'error'.

    A solve that returns by itself (no StopSolve) is provisionally ``stalled``;
    the caller decides (the re-run strategy returns after every re-run).
    """
    solver.matvecs = 0 if solver.matvecs is not None else None
    solver.exit_message = None
    try:
        monitor.start(x0)
        x = solver.solve(problem, monitor)
        monitor.finish(x)
        return Status.STALLED, solver.exit_message or "solver returned by itself"
    except StopSolve as stop:
        return Status(stop.status), stop.message
    except FloatingPointError as exc:
        return Status.DIVERGED, _error_message(exc)
    except Exception as exc:
        return Status.ERROR, _error_message(exc)


def _run_callback(problem, solver, budget, progress, sink=None) -> JobResult:
    on_row = None if sink is None else (lambda row: sink("row", row))
    monitor = Monitor(problem, budget, sync=solver.sync, matvecs=lambda: solver.matvecs, progress=progress,
                      on_row=on_row)
    status, message = _solve_once(problem, solver, monitor, problem.initial_field())
    if status == Status.STALLED:
        status, message = _stalled(solver, monitor, budget, message)
    return JobResult(status, message, strategy="callback", trace=trace_frame(monitor.rows))


def _run_rerun(problem, solver, budget, plan, progress, sink=None) -> JobResult:
    """Re-run strategy for solvers without callbacks: a fresh solve with maxiter=k per planned k.

    A re-run whose predicted solve time (the last one's time per iteration times k)
    would pass ``max_seconds`` is not started.
    """
    rows: list[dict] = []
    status, message = Status.BUDGET, f"max_iters={budget.max_iters} reached"
    for k in plan:
        if len(rows) > 1 and math.isfinite(budget.max_seconds):
            last = rows[-1]
            predicted = last["time_s"] * k / max(last["iteration"], 1)
            if predicted > budget.max_seconds:
                status = Status.BUDGET
                message = (f"max_seconds={budget.max_seconds:g} reached: the next re-run ({k} iterations) "
                           f"would take ~{predicted:.3g} s")
                break
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
            progress.checkpoint(rows[-1]["iteration"], rows[-1]["time_s"], rows[-1]["msr"])
        if st == Status.ERROR:
            return JobResult(Status.ERROR, msg, strategy="rerun", trace=trace_frame(rows))
        last = rows[-1]
        stop = budget.verdict(last["msr"], rows[0]["msr"], last["iteration"])
        if stop is not None:
            status, message = Status(stop.status), stop.message
            break
        if last["time_s"] >= budget.max_seconds:
            status, message = Status.BUDGET, budget.out_of_time(last["time_s"])
            break
        if monitor.last_k < k:  # finished on its own before using its iterations
            status, message = _stalled(solver, monitor, budget,
                                       f"{solver.exit_message or 'solver finished'} after {monitor.last_k} "
                                       f"of {k} iterations")
            break
        if k == plan[-1] and k < budget.max_iters:  # a finite algorithm (a direct solve) completed
            status, message = _stalled(solver, monitor, budget,
                                       f"solver completed its algorithm ({k} iteration{'s' if k > 1 else ''})")
    return JobResult(status, message, strategy="rerun", trace=trace_frame(rows))


def _timing_check(problem, solver, result: JobResult) -> dict:
    """Instrumented versus bare solves of the same length, TIMING_PAIRS interleaved warm pairs.

    The length is the job's last checkpoint whose solve time is at most
    TIMING_CHECK_SECONDS (so the check stays short). ``ratio`` = fastest
    instrumented / fastest bare (the minimum is the least disturbed by other
    load on the machine); 1.0 means the monitor charged nothing of its own to
    the solver. ``spread`` = max - min of the per-pair ratios, to judge the noise.
    """
    trace = result.trace[result.trace.iteration > 0]
    short = trace[trace.time_s <= TIMING_CHECK_SECONDS]
    k = int((short if not short.empty else trace).iteration.iloc[-1 if not short.empty else 0])
    sub = Budget(max_iters=k, max_seconds=math.inf, target_msr=None, divergence_factor=math.inf)
    instrumented, bare = [], []
    for _ in range(TIMING_PAIRS):
        monitor = Monitor(problem, sub, sync=solver.sync, matvecs=lambda: solver.matvecs)
        _solve_once(problem, solver, monitor, problem.initial_field())
        instrumented.append(monitor.elapsed)
        solver.matvecs = 0 if solver.matvecs is not None else None
        solver.sync()
        t0 = time.perf_counter()
        try:
            solver.solve(problem, BareMonitor(k))
        except StopSolve:
            pass
        solver.sync()
        bare.append(time.perf_counter() - t0)
    pair = [a / b for a, b in zip(instrumented, bare, strict=True) if b > 0]
    return {"iterations": k, "pairs": TIMING_PAIRS, "instrumented_s": instrumented, "bare_s": bare,
            "ratio": min(instrumented) / min(bare) if min(bare) > 0 else float("nan"),
            "spread": (max(pair) - min(pair)) if pair else float("nan")}
