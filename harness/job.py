"""One job: a composed config -> problem + solver -> repeats -> one trace file.
Over 300 lines: one job end to end (config, guards, repeats, trace rows); each step is short and used only here.

Independent of Hydra's runtime (the output folder and the command-line
overrides are passed in), so tests can drive it with the compose API.
"""

from __future__ import annotations

import json
import logging
import math
import time
import uuid
from pathlib import Path
from typing import Any

import pandas as pd
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from harness.environment import now
from harness.guard import environment_isolated, fork_available, fork_refusal, run_isolated
from harness.memory import grid_shape, memory_refusal, solver_family
from harness.monitor import Budget
from harness.progress import RepeatBar
from harness.results import TRACE_NAME, TraceExists, job_rows, trace_frame, write_trace
from harness.resume import job_key, solver_label
from harness.runner import JobResult, run_solver
from harness.status import Status, status_words
from problems import Problem, ProblemError, make_problem

log = logging.getLogger("harness")


class ConfigError(ValueError):
    """A job configuration a user can fix (bad size, budget, solver parameter)."""


class JobNotRun(RuntimeError):
    """No repeat of a single job started (unavailable, bad configuration, too large); nothing written."""


def build_problem(cfg: DictConfig) -> Problem:
    p = OmegaConf.to_container(cfg.problem, resolve=True)
    return make_problem(p.pop("name"), **p)


def build_budget(cfg: DictConfig) -> Budget:
    try:
        return Budget(**OmegaConf.to_container(cfg.budget, resolve=True))
    except (TypeError, ValueError) as exc:
        raise ConfigError(str(exc)) from None


def resolve_threads(threads) -> int:
    """The thread count a ``threads`` setting means: an integer >= 1, or ``all`` (also null) for
    every core this process may run on (``os.sched_getaffinity``, which honours taskset and
    Slurm/cgroup CPU sets; on a whole machine, its core count)."""
    import os

    if threads is None or threads == "all":
        return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ConfigError(f"threads must be a positive integer or 'all' (got {threads!r}), e.g. threads=1")
    return threads


def set_threads(threads) -> int:
    import torch
    import torch._dynamo  # noqa: F401  torch.optim imports it lazily (~1 s): do it once, before jobs fork
    from threadpoolctl import threadpool_limits

    threads = resolve_threads(threads)
    torch.set_num_threads(threads)
    threadpool_limits(threads)
    return threads


def threads_in_use() -> dict[str, Any]:
    """The thread counts the libraries actually use now (recorded in the trace metadata)."""
    import torch
    from threadpoolctl import threadpool_info

    pools = {f"{p['user_api']}:{p['internal_api']}": p["num_threads"] for p in threadpool_info()}
    return {"torch": torch.get_num_threads(), **pools}


def more_repeats(result: JobResult, max_solve_s: float | None = None) -> bool:
    """Repeat a job only if its solve was short enough: one ended by max_seconds (or by a
    timeout, or that never ran) gains nothing from being run again, nor does one whose solve
    took ``max_solve_s`` or more (config ``repeat_solve_under_s``; null: no such limit)."""
    if result.trace.empty or result.status in (Status.TIMEOUT, Status.ERROR, Status.UNAVAILABLE):
        return False
    if result.status == Status.BUDGET and str(result.message).startswith("max_seconds"):
        return False
    return max_solve_s is None or float(result.trace.time_s.iloc[-1]) < max_solve_s


def run_job(cfg: DictConfig, out_dir: str | Path, overrides: list[str] = (), *,
            write_unstarted: bool = True, not_run: JobResult | None = None,
            facts: dict[str, Any] | None = None) -> Path:
    """Run the configured job (its repeats) and write ``out_dir/trace.parquet``.

    Repeat r+1 runs only if repeat r was short enough to be worth repeating
    (``more_repeats``: not ended by max_seconds, solve under ``repeat_solve_under_s``).

    The repeats run in a forked child, each under a wall-clock deadline
    (``isolate``, ``job_timeout_s``; see ``harness.guard``), after a memory
    estimate (``memory_check``). With ``write_unstarted=False`` a job none of
    whose repeats started (unavailable solver, bad solver configuration, grid
    too large) raises ``JobNotRun`` and writes nothing, which is what a single
    command-line job wants; a sweep records such jobs instead.

    ``not_run`` records a job that never ran here, with that result (the Slurm launcher's jobs that
    passed their time limit, or that the scheduler refused), and ``facts`` go into its metadata.
    """
    started = now("microseconds")  # with "ended": when this job held its machine (tests/test_slurm.py)
    overrides = list(overrides)
    threads = set_threads(cfg.threads)
    budget = build_budget(cfg)
    timeout = job_timeout(cfg, budget)
    repeat_limit(cfg)  # a bad value is a configuration error before anything runs
    isolate = bool(cfg.get("isolate", True)) and fork_available()
    solver_cfg = OmegaConf.to_container(cfg.solver, resolve=True)
    problem_cfg = OmegaConf.to_container(cfg.problem, resolve=True)
    name = solver_cfg["name"]
    label = solver_label(name, overrides)
    family = solver_family(solver_cfg)
    run_id = uuid.uuid4().hex[:12]
    check_memory = cfg.get("memory_check", True) and not_run is None
    refusal = memory_refusal(problem_cfg, solver_cfg) if check_memory else None
    # Isolated, the problem is built in the child, under the first repeat's deadline (a huge obstacle problem
    # cannot stall the sweep); ``where`` then learns the built problem's facts from the child.
    problem = None if refusal or not_run or isolate else build_problem(cfg)
    where = _problem_fields(cfg, problem)
    fallback = {"family": family or "unknown", "backend": "unknown", "device": solver_cfg.get("device", "cpu")}
    rows, results, guards, pending = [], [], [], []

    def record(repeat: int, result: JobResult, info: dict, guard: dict) -> None:
        results.append(result)
        guards.append({"repeat": repeat, **guard})
        rows.append(_rows(cfg, where, {**fallback, **info}, solver_cfg, label, run_id, repeat, result, threads))
        pending.append(_repeat_line(label, where, repeat, result, bool(budget.target_msr)))
        if write_unstarted or not result.trace.empty:  # else said once by JobNotRun, if nothing ran
            while pending:
                log.info(pending.pop(0))

    repeats = int(cfg.repeats)
    child = {}
    if not_run is not None:
        record(0, not_run, {}, {"outcome": "not run"})
    elif refusal:
        record(0, JobResult(Status.ERROR, refusal), {}, {"outcome": "refused"})
    elif isolate and (unsafe := fork_refusal()):
        record(0, JobResult(Status.ERROR, unsafe), {}, {"outcome": "refused"})
    elif isolate:
        child = _run_isolated(cfg, where, budget, timeout, label, repeats, record)
    else:
        for repeat in range(repeats):
            progress = _progress(cfg, label, where, budget)
            try:
                result, info = _attempt(cfg, problem, budget, progress, None)
            finally:
                if progress is not None:
                    progress.close()
            record(repeat, result, info, {"outcome": "in-process"})
            if not more_repeats(result, repeat_limit(cfg)):
                break
    if len(results) < repeats:
        log.info(f"{label:>14s} skipping repeats {len(results)}..{repeats - 1} "
                 f"after repeat {len(results) - 1}: {results[-1].status} ({one_line(results[-1].message)})")
    if not write_unstarted and all(r.trace.empty and r.status in (Status.ERROR, Status.UNAVAILABLE) for r in results):
        first = results[0]
        status = "" if first.status == Status.ERROR else f"{first.status}: "
        raise JobNotRun(f"{label} on {where['problem']} {where['h']}x{where['w']}: {status}{one_line(first.message)}")
    for line in pending:
        log.info(line)
    meta = {
        "run_id": run_id,
        "job_key": job_key(OmegaConf.to_container(cfg, resolve=True)),
        "date": now(),
        "started": started,
        "ended": now("microseconds"),
        **environment_isolated(isolate),
        "threads": threads,
        "threads_setting": cfg.get("threads"),
        "threads_in_use": threads_in_use(),
        "strategy": results[-1].strategy,
        "solver_info": results[-1].solver_info,
        "warmup_s": [r.warmup_s for r in results],
        "config": OmegaConf.to_container(cfg, resolve=True),
        "overrides": overrides,
        "timing_check": [r.timing_check for r in results],
        "guard": {"isolated": isolate, "job_timeout_s": timeout, "repeats": guards, **child},
        **(facts or {}),
    }
    trace = pd.concat(rows, ignore_index=True)
    try:
        return write_trace(trace, Path(out_dir) / TRACE_NAME, meta)
    except TraceExists as exc:  # another run wrote there meanwhile: keep both, replace nothing
        beside = Path(out_dir) / f"again-{run_id}" / TRACE_NAME
        log.warning(f"{label}: {exc.filename} appeared while this job ran (another run wrote it): not replaced; "
                    f"this job's trace is {beside}")
        return write_trace(trace, beside, meta)


def repeat_limit(cfg: DictConfig) -> float | None:
    value = cfg.get("repeat_solve_under_s")
    if value is None:
        return None
    try:
        value = float(value)
    except (TypeError, ValueError):
        value = float("nan")
    if not value > 0:
        raise ConfigError(f"repeat_solve_under_s must be a positive number of seconds or null "
                          f"(got {cfg.repeat_solve_under_s!r})")
    return value


MAX_DEFAULT_TIMEOUT_S = 24 * 3600.0  # a default deadline is finite and at most a day, whatever the budget


def job_timeout(cfg: DictConfig, budget: Budget) -> float:
    """``job_timeout_s``, or by default 10 x the solve budget (setup, re-run strategy, timing check) + 60 s,
    at most ``MAX_DEFAULT_TIMEOUT_S`` (said once in the log when it caps the default)."""
    value = cfg.get("job_timeout_s")
    if value is None:
        default = 10.0 * float(budget.max_seconds) + 60.0
        if not default <= MAX_DEFAULT_TIMEOUT_S:
            log.info(f"note: the default deadline 10 x budget.max_seconds + 60 s is capped at "
                     f"{MAX_DEFAULT_TIMEOUT_S:g} s per repeat; set job_timeout_s to choose another")
            return MAX_DEFAULT_TIMEOUT_S
        return default
    try:
        value = float(value)
    except (TypeError, ValueError):
        value = float("nan")
    if not value > 0:
        raise ConfigError(f"job_timeout_s must be a positive number of seconds or null (got {cfg.job_timeout_s!r})")
    return value


def _solver_info(solver) -> dict[str, Any]:
    return {"family": getattr(solver, "family", "unknown"), "backend": getattr(solver, "backend", "unknown"),
            "device": getattr(solver, "device", "cpu"),
            "strategy": "callback" if getattr(solver, "callbacks", True) else "rerun"}


def _attempt(cfg: DictConfig, problem: Problem, budget: Budget, progress, emit):
    """One repeat: build the solver, run it. Returns (JobResult, solver info)."""
    try:
        solver = instantiate(cfg.solver, _convert_="all")
    except Exception as exc:  # a bad solver parameter: recorded, the sweep goes on
        cause = exc.__cause__ or exc
        return JobResult(Status.ERROR, f"bad solver configuration: {type(cause).__name__}: {cause}"), {}
    info = _solver_info(solver)
    if emit is not None:
        emit("info", info)
    result = run_solver(problem, solver, budget, verify_timing=bool(cfg.verify_timing), progress=progress,
                        sink=emit, warmup=bool(cfg.get("warmup", True)))
    return result, info


def _run_isolated(cfg, where, budget, timeout, label, repeats, record) -> dict[str, Any]:
    """All repeats in one forked child (so repeats after the first are warm, as in one process),
    each under its own ``timeout``; ``record`` is called as each repeat ends. The child builds the
    problem first, inside repeat 0's deadline, and sends its facts (``where`` is updated). A repeat
    that hangs or crashes ends the child: it is recorded with its partial trace, later repeats are
    not run. A child that ends badly after its last repeat was recorded (a deadline that passed as
    the result came in) keeps every recorded repeat."""

    def child(emit):
        emit("repeat", 0)
        try:
            problem = build_problem(cfg)
        except Exception as exc:  # noqa: BLE001 - recorded as the job's error, the sweep goes on
            emit("result", (JobResult(Status.ERROR, f"building the problem failed: {type(exc).__name__}: {exc}"), {}))
            return
        emit("problem", _problem_fields(cfg, problem))
        for repeat in range(repeats):
            if repeat:
                emit("repeat", repeat)
            result, info = _attempt(cfg, problem, budget, None, emit)
            emit("result", (result, info))
            if not more_repeats(result, repeat_limit(cfg)):
                break

    state: dict[str, Any] = {"repeat": None, "built": False}

    def on_event(kind, payload):
        if kind == "repeat":
            state.update(repeat=payload, setup_s=float("nan"), info={}, t0=time.monotonic(),
                         progress=_progress(cfg, label, where, budget))
            return
        progress = state["progress"]
        if kind == "problem":
            where.update(payload)
            state["built"] = True
        elif kind == "row":  # the newest checkpoint, every half second (rows travel in shared memory)
            if progress is not None:
                progress.checkpoint(int(payload["iteration"]), float(payload["time_s"]), float(payload["msr"]))
        elif kind == "setup":
            state["setup_s"] = payload
        elif kind == "info":
            state["info"] = payload
        elif kind == "result":
            _close(progress)
            result, info = payload
            wall = round(time.monotonic() - state["t0"], 4)
            record(state["repeat"], result, info, {"outcome": "done", "wall_s": wall})
            state["repeat"] = None

    try:
        # ack: the child starts a repeat only once this process has recorded the last one and set up
        # its progress bar, so none of that work competes with the timed setup and solve
        out = run_isolated(child, timeout_s=timeout, on_event=on_event, restart_on="repeat",
                           ack=("repeat", "result"))
    finally:
        if state["repeat"] is not None:
            _close(state["progress"])
    status = Status.TIMEOUT if out.kind == "timeout" else Status.ERROR
    if out.kind != "done" and state["repeat"] is not None:  # the repeat in progress hung or crashed
        rows, info = [row for kind, row in out.tail if kind == "row"], state["info"]
        if not state["built"]:
            phase = "while building the problem"
        elif math.isnan(state["setup_s"]):
            phase = "during setup" if info else "before the solver was built"
        elif rows:
            phase = f"during the solve; partial trace up to iteration {int(rows[-1]['iteration'])}"
        else:
            phase = "during the solve, before its first checkpoint"
        result = JobResult(status, f"{out.message} {phase}", setup_s=state["setup_s"],
                           strategy=info.get("strategy", "callback"), trace=trace_frame(rows))
        record(state["repeat"], result, info,
               {"outcome": out.kind, "wall_s": round(time.monotonic() - state["t0"], 4)})
    elif out.kind != "done":  # between repeats, after the last recorded one: what was recorded stands
        log.warning(f"{label}: the solver process ended badly after its last recorded repeat ({out.message}); "
                    f"the recorded repeats are kept")
    return {"child_wall_s": round(out.wall_s, 4), "child_maxrss_mib": out.maxrss_mib, "child_outcome": out.kind}


def _close(progress) -> None:
    if progress is not None:
        progress.close()


def _progress(cfg, label, where, budget):
    """A repeat's bar (``harness.progress.RepeatBar``: none when the output is not a terminal)."""
    if not cfg.get("progress", True):
        return None
    return RepeatBar(f"{label} n={where['n']}", budget)


def one_line(message: str | None) -> str | None:
    """Messages are table cells and console lines: no newlines (some libraries' errors have many)."""
    return " ".join(message.split()) if message else message


def _problem_fields(cfg: DictConfig, problem: Problem | None) -> dict[str, Any]:
    """Where a job ran, from the problem, or from the config when it was never built. ``n`` is the size of a
    square grid; a grid set by ``problem.h`` and ``problem.w`` records its rows as ``n`` (never a ``problem.n``
    that did not shape it), and the report names such a grid by its shape."""
    shape = problem.shape if problem is not None else grid_shape(OmegaConf.to_container(cfg.problem, resolve=True))
    h, w = shape or (None, None)
    n = cfg.problem.get("n")
    n = int(n) if n is not None and (h, w) == (n, n) else h
    if problem is not None:
        return {"problem": problem.name, "n": n, "h": h, "w": w,
                "n_unknowns": problem.n_interior, "exact_kind": problem.exact_kind}
    return {"problem": str(cfg.problem.name), "n": n, "h": h, "w": w, "n_unknowns": None, "exact_kind": None}


def _repeat_line(label: str, where: dict, repeat: int, r: JobResult, target_set: bool) -> str:
    """The line a finished repeat writes (its progress when the output is not a terminal): the status in
    words ("stopped by itself" gains "above target" only when the job had a stop target)."""
    grid = f"{where['problem']} {where['h']}x{where['w']}"
    if r.trace.empty:
        return f"{label:>14s} {grid}  {status_words(r.status)}: {one_line(r.message)}"
    last = r.trace.iloc[-1]
    return (f"{label:>14s} {grid} rep {repeat}: {status_words(r.status, target_set)}, "
            f"it={int(last.iteration):>6d} solve={last.time_s:8.4f}s setup={r.setup_s:7.4f}s "
            f"msr={last.msr:.2e} mse={last.mse:.2e}  ({one_line(r.message)})")


def _rows(cfg, where: dict, info: dict, solver_cfg: dict[str, Any], label, run_id, repeat,
          result: JobResult, threads) -> pd.DataFrame:
    params = {k: v for k, v in solver_cfg.items() if k not in ("_target_", "name")}
    const = {
        "sweep": cfg.sweep_name, "run_id": run_id, **where,
        "solver": solver_cfg["name"], "label": label,
        "family": info["family"], "backend": info["backend"], "device": info["device"],
        "params": json.dumps(params, sort_keys=True),
        "strategy": result.strategy, "seed": int(cfg.seed),
        "threads": threads, "repeat": repeat, "setup_s": result.setup_s,
        "status": str(result.status), "message": one_line(result.message),
    }
    return job_rows(result.trace, const)


__all__ = ["ConfigError", "JobNotRun", "ProblemError", "build_problem", "run_job", "solver_label"]
