"""The monitor: the solve clock, checkpoints and budgets (timing fidelity lives here).

A solver calls ``monitor(k, x)`` after iteration k. On every call the monitor
synchronises the device once, reads ``perf_counter`` and adds the time since it
last handed control back to the solver. Everything the monitor does itself
(copy to host, metrics, progress bar) happens while the solve clock is paused.
Metrics are computed only at checkpoints: every iteration up to 10, then about
20 per decade, plus the last iteration.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from harness.status import Status
from problems import Problem


class StopSolve(Exception):
    """Raised inside a solver's callback to end the solve; carries the job status."""

    def __init__(self, status: str, message: str = ""):
        super().__init__(message or status)
        self.status = status
        self.message = message


OVERRUN = 0.01  # a solve this fraction past max_seconds says by how much (Budget.out_of_time)


@dataclass(frozen=True)
class Budget:
    """When a solve ends. ``target_msr`` of 0 or None disables the target."""

    max_iters: int = 1000
    max_seconds: float = 10.0
    target_msr: float | None = None
    divergence_factor: float = 1e6

    def __post_init__(self):
        if isinstance(self.max_iters, bool) or not isinstance(self.max_iters, int) or self.max_iters < 1:
            raise ValueError(f"budget.max_iters must be a positive integer (got {self.max_iters!r})")
        if not (isinstance(self.max_seconds, (int, float)) and self.max_seconds > 0):
            raise ValueError(f"budget.max_seconds must be a positive number (got {self.max_seconds!r})")
        if self.target_msr is not None and not (self.target_msr >= 0):
            raise ValueError(f"budget.target_msr must be >= 0 or null (got {self.target_msr!r})")

    def out_of_time(self, elapsed: float) -> str:
        """Why a solve that used its ``max_seconds`` stopped; says by how much its last iteration overran the
        budget when that is more than ``OVERRUN`` of it (the clock is read between iterations, and one
        iteration, e.g. a Newton step, can take longer than the whole budget)."""
        over = elapsed - self.max_seconds
        if over > OVERRUN * self.max_seconds:
            return (f"max_seconds={self.max_seconds:g} reached; the last iteration overran it by {over:.3g} s "
                    f"(solve time {elapsed:.4g} s)")
        return f"max_seconds={self.max_seconds:g} reached"

    def verdict(self, msr: float, msr0: float, k: int) -> StopSolve | None:
        """The stop a checkpoint's MSR calls for (diverged or target), or None to go on."""
        msr0 = max(msr0, 1e-300)
        if not math.isfinite(msr) or msr > self.divergence_factor * msr0:
            return StopSolve(Status.DIVERGED, f"MSR {msr:.3g} at iteration {k} (initial {msr0:.3g})")
        if self.target_msr and msr <= self.target_msr:
            return StopSolve(Status.TARGET, f"MSR {msr:.3g} <= target {self.target_msr:g} at iteration {k}")
        return None


def checkpoints(max_iters: int, per_decade: int = 20, dense_until: int = 10) -> list[int]:
    """0..dense_until, then ~per_decade geometric points per decade, plus max_iters."""
    pts = set(range(min(dense_until, max_iters) + 1))
    if max_iters > dense_until:
        steps = math.ceil(per_decade * math.log10(max_iters / dense_until))
        geo = np.round(dense_until * np.logspace(0, math.log10(max_iters / dense_until), steps + 1))
        pts.update(int(v) for v in geo)
    pts.add(max_iters)
    return sorted(p for p in pts if p <= max_iters)


def to_host(x) -> np.ndarray:
    """A NumPy float64 copy-or-view of a NumPy, CuPy or torch array."""
    if isinstance(x, np.ndarray):
        return x
    if hasattr(x, "detach"):  # torch
        return x.detach().to("cpu").double().numpy()
    if hasattr(x, "get"):  # cupy
        return x.get()
    return np.asarray(x, dtype=np.float64)


def as_field(problem: Problem, x) -> np.ndarray:
    """Interior vector or full field (any leading singleton dims) -> (H, W) float64 field."""
    a = np.asarray(to_host(x), dtype=np.float64)
    if a.ndim == 1 and a.size == problem.n_interior:
        return problem.to_full(a)
    if a.size == problem.mask.size:
        return a.reshape(problem.shape)
    raise ValueError(f"solver returned an array of shape {a.shape}; expected ({problem.n_interior},) "
                     f"interior values or a {problem.shape} field")


class Monitor:
    """Times a solve and records metrics at checkpoints. Call ``start`` before the solve."""

    def __init__(self, problem: Problem, budget: Budget, *, sync: Callable[[], None] = lambda: None,
                 matvecs: Callable[[], int | None] = lambda: None, per_decade: int = 20,
                 progress=None, on_row: Callable[[dict], None] | None = None,
                 clock: Callable[[], float] = time.perf_counter):
        self.problem = problem
        self.budget = budget
        self.max_iters = budget.max_iters
        self._sync = sync
        self._matvecs = matvecs
        self._progress = progress
        self._on_row = on_row  # e.g. streams rows to a supervising process, off the clock
        self._clock = clock
        self._points = checkpoints(budget.max_iters, per_decade)[1:]
        self._next = 0  # index into _points
        self.rows: list[dict] = []
        self.elapsed = 0.0
        self.last_k = 0
        self._msr0 = None
        self._t_resume = None

    # --- the solver-facing call (hot path: keep it tiny) -------------------------
    def __call__(self, k: int, x) -> None:
        self._sync()
        self.elapsed += self._clock() - self._t_resume
        self.last_k = k
        if k >= self.max_iters:
            self._record(k, x)
            raise StopSolve(Status.BUDGET, f"max_iters={self.max_iters} reached")
        if self.elapsed >= self.budget.max_seconds:
            self._record(k, x)
            raise StopSolve(Status.BUDGET, self.budget.out_of_time(self.elapsed))
        if self._next < len(self._points) and k >= self._points[self._next]:
            self._record(k, x)
        self._t_resume = self._clock()

    # --- harness-facing -----------------------------------------------------------
    def start(self, x0) -> None:
        """Record the initial field at iteration 0, time 0, and start the solve clock."""
        self._record(0, x0)
        self._sync()
        self._t_resume = self._clock()

    def finish(self, x) -> None:
        """The solver returned by itself: stop the clock and record its final field."""
        self._sync()
        self.elapsed += self._clock() - self._t_resume
        if self.rows[-1]["iteration"] != self.last_k:
            self._record(self.last_k, x)

    def _record(self, k: int, x) -> None:
        if self.rows and self.rows[-1]["iteration"] == k:
            return
        m = self.problem.metrics(as_field(self.problem, x))
        self.rows.append({"iteration": k, "time_s": self.elapsed, "matvecs": self._matvecs(), **m})
        if self._on_row is not None:
            self._on_row(self.rows[-1])
        while self._next < len(self._points) and self._points[self._next] <= k:
            self._next += 1
        if self._progress is not None:  # a harness.progress.RepeatBar
            self._progress.checkpoint(k, self.elapsed, m["msr"])
        if self._msr0 is None:
            self._msr0 = m["msr"]
        stop = self.budget.verdict(m["msr"], self._msr0, k)
        if stop is not None:
            raise stop


class BareMonitor:
    """No clock, no metrics: ends the solve after ``max_iters`` (for the timing self-check)."""

    def __init__(self, max_iters: int):
        self.max_iters = max_iters
        self.last_k = 0

    def __call__(self, k: int, x) -> None:
        self.last_k = k
        if k >= self.max_iters:
            raise StopSolve(Status.BUDGET)
