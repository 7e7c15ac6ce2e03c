"""The monitor: checkpoints, budgets, statuses, and that its own work is off the clock."""

import math

import numpy as np
import pytest

from harness.monitor import Budget, Monitor, StopSolve, checkpoints
from harness.runner import run_solver
from problems import make_problem
from solvers.base import Solver


def test_checkpoints_dense_then_geometric_plus_last():
    pts = checkpoints(1000)
    assert pts[:11] == list(range(11))
    assert pts[-1] == 1000
    per_decade = sum(1 for p in pts if 100 < p <= 1000)
    assert 15 <= per_decade <= 25
    assert checkpoints(7) == list(range(8))
    assert checkpoints(1037)[-1] == 1037


class FakeClock:
    """Advances only when the test says so: lets us prove what is charged to the solve."""

    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


class SlowMetricsProblem:
    """Wraps a problem so that each metric evaluation 'takes' 1 s on the fake clock."""

    def __init__(self, problem, clock):
        self.p, self.clock = problem, clock

    def __getattr__(self, name):
        return getattr(self.p, name)

    def metrics(self, u):
        self.clock.t += 1.0
        return self.p.metrics(u)


def test_monitor_work_is_not_charged_to_the_solve():
    clock = FakeClock()
    base = make_problem("laplace_bilinear", n=16)
    prob = SlowMetricsProblem(base, clock)
    mon = Monitor(prob, Budget(max_iters=50, max_seconds=1e9), clock=clock)
    x = base.initial_field()
    mon.start(x)
    with pytest.raises(StopSolve) as stop:
        for k in range(1, 51):
            clock.t += 0.01  # the solver's own work per iteration
            mon(k, x)
    assert stop.value.status == "budget"
    times = [r["time_s"] for r in mon.rows]
    assert times[-1] == pytest.approx(0.5)  # 50 x 0.01 s; the 1 s per checkpoint is not in it
    assert [r["iteration"] for r in mon.rows] == checkpoints(50)


def test_time_budget_target_and_divergence():
    p = make_problem("laplace_bilinear", n=16)
    clock = FakeClock()
    mon = Monitor(p, Budget(max_iters=10**6, max_seconds=0.05), clock=clock)
    mon.start(p.initial_field())
    with pytest.raises(StopSolve) as stop:
        for k in range(1, 1000):
            clock.t += 0.01
            mon(k, p.initial_field())
    assert stop.value.status == "budget" and mon.rows[-1]["iteration"] == 5

    mon = Monitor(p, Budget(max_iters=100, target_msr=1e-20))
    mon.start(p.initial_field())
    with pytest.raises(StopSolve) as stop:
        mon(1, p.exact)
    assert stop.value.status == "target"

    mon = Monitor(p, Budget(max_iters=100))
    mon.start(p.initial_field())
    with pytest.raises(StopSolve) as stop:
        mon(1, np.full(p.shape, np.nan))
    assert stop.value.status == "diverged"
    mon = Monitor(p, Budget(max_iters=100))
    mon.start(p.initial_field())
    with pytest.raises(StopSolve) as stop:
        mon(1, p.to_full(1e5 * np.random.default_rng(0).standard_normal(p.n_interior)))
    assert stop.value.status == "diverged"


@pytest.mark.parametrize("kw", [{"max_iters": 0}, {"max_iters": -1}, {"max_iters": 2.5}, {"max_seconds": 0},
                                {"max_seconds": -1.0}, {"target_msr": -1.0}])
def test_bad_budget(kw):
    with pytest.raises(ValueError, match="budget"):
        Budget(**kw)


class Jacobi(Solver):
    """A tiny damped-Jacobi solver written against the interface (full-field callbacks)."""

    family = "test"

    def setup(self, problem):
        self.matvecs = 0

    def solve(self, problem, monitor):
        u = problem.initial_field()
        for k in range(1, monitor.max_iters + 1):
            u = u + 0.3 * self._res(problem, u)
            self.matvecs += 1
            monitor(k, u)
        return u

    @staticmethod
    def _res(problem, u):
        r = np.zeros(problem.shape)
        r[problem.interior] = problem.residual(u)
        return r / 3.0


class Raises(Solver):
    def solve(self, problem, monitor):
        monitor(1, problem.initial_field())
        raise RuntimeError("boom")


class Unavailable(Solver):
    def available(self):
        return "needs a flux capacitor"


def test_runner_statuses_and_trace():
    p = make_problem("laplace_bilinear", n=16)
    r = run_solver(p, Jacobi("jacobi"), Budget(max_iters=2000, target_msr=1e-12))
    assert r.status == "target" and r.trace.msr.iloc[-1] <= 1e-12
    assert r.trace.iteration.iloc[0] == 0 and r.trace.time_s.iloc[0] == 0
    assert (np.diff(r.trace.time_s) >= 0).all() and (np.diff(r.trace.iteration) > 0).all()
    assert r.trace.matvecs.iloc[-1] == r.trace.iteration.iloc[-1]

    r = run_solver(p, Raises("raises"), Budget(max_iters=10))
    assert r.status == "error" and "RuntimeError: boom" in r.message
    assert list(r.trace.iteration) == [0, 1]  # what was recorded before the failure is kept

    r = run_solver(p, Unavailable("u"), Budget())
    assert r.status == "unavailable" and r.message == "needs a flux capacitor" and r.trace.empty


def test_timing_self_check_is_recorded_and_bounded():
    p = make_problem("laplace_bilinear", n=64)
    r = run_solver(p, Jacobi("jacobi"), Budget(max_iters=200), verify_timing=True)
    tc = r.timing_check
    assert tc["iterations"] == 200 and tc["pairs"] >= 5
    assert len(tc["instrumented_s"]) == len(tc["bare_s"]) == tc["pairs"] and min(tc["bare_s"]) > 0
    assert math.isfinite(tc["spread"]) and tc["spread"] >= 0
    # The fastest instrumented solve against the fastest bare one: the monitor's own work is off
    # the clock, so they agree (the bound leaves room for a busy machine).
    assert 0.8 <= tc["ratio"] <= 1.25, tc
