"""Per-iteration cost of the Metamizer solver vs a bare forward pass of its network.

``pytest benchmarks/bench_metamizer.py --benchmark-only`` (not part of the test run).
Threads: torch.set_num_threads(1) (``METAMIZER_BENCH_THREADS`` to change), the
harness's default. Goal: solver iteration <= 1.15 x bare forward pass, i.e. the
float64 gradient, normalisation, update and Dirichlet reset cost little next
to the U-Net.
"""

from __future__ import annotations

import os
import time

import pytest
import torch

from problems import make_problem
from solvers.metamizer.solver import Metamizer as MetamizerSolver

THREADS = int(os.environ.get("METAMIZER_BENCH_THREADS", "1"))
SIZES = (64, 128, 256)
ITERS = 20


class _Quiet:
    """A monitor that only counts (no snapshots): the solver's own cost per iteration."""

    def __init__(self, n):
        self.max_iters = n

    def __call__(self, k, x):
        pass


@pytest.fixture(scope="module", autouse=True)
def _threads():
    old = torch.get_num_threads()
    torch.set_num_threads(THREADS)
    yield
    torch.set_num_threads(old)


def _setup(n):
    problem = make_problem("laplace_bilinear", n=n)
    solver = MetamizerSolver("metamizer")
    reason = solver.available()
    if reason:
        pytest.skip(reason)
    solver.setup(problem)
    with torch.inference_mode():  # the network input of the first iteration (real data, not zeros)
        u = solver.physics.initial_field()[None]
        x = solver.model.features(solver.physics.gradient(u[0])[None], solver.model.initial_state(u))
    return problem, solver, x


def _solver_iteration(problem, solver):
    solver.solve(problem, _Quiet(ITERS))


def _forward(solver, x):
    with torch.inference_mode():
        for _ in range(ITERS):
            solver.model.nn(x)


@pytest.mark.parametrize("n", SIZES)
def test_solver_iteration(benchmark, n):
    problem, solver, _ = _setup(n)
    benchmark.extra_info.update(threads=THREADS, iterations_per_round=ITERS)
    benchmark.pedantic(_solver_iteration, args=(problem, solver), rounds=5, warmup_rounds=1)


@pytest.mark.parametrize("n", SIZES)
def test_bare_forward(benchmark, n):
    _, solver, x = _setup(n)
    benchmark.extra_info.update(threads=THREADS, iterations_per_round=ITERS)
    benchmark.pedantic(_forward, args=(solver, x), rounds=5, warmup_rounds=1)


def _best(fn, *args, rounds=7):
    fn(*args)
    out = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn(*args)
        out.append(time.perf_counter() - t0)
    return min(out) / ITERS


@pytest.mark.parametrize("n", SIZES)
def test_overhead_ratio(benchmark, n):
    """Solver iteration / bare forward (best of 7 interleaved rounds); goal <= 1.15."""
    problem, solver, x = _setup(n)
    t_solver = _best(_solver_iteration, problem, solver)
    t_fwd = _best(_forward, solver, x)
    ratio = t_solver / t_fwd
    benchmark.extra_info.update(threads=THREADS, solver_ms=1e3 * t_solver, forward_ms=1e3 * t_fwd, ratio=ratio)
    print(f"\nn={n} threads={THREADS}: solver {1e3 * t_solver:.3f} ms/it, forward {1e3 * t_fwd:.3f} ms, "
          f"ratio {ratio:.3f}")
    benchmark.pedantic(lambda: None, rounds=1)
    assert ratio < 1.5
