"""Per-iteration cost of the Metamizer solver vs a bare forward pass of its network.

``pytest benchmarks/bench_metamizer.py -s`` (not part of the test run). One thread
(``METAMIZER_BENCH_THREADS`` to change), the harness's default.

For each model and n = 64, 128, 256 it prints the solver's ms per iteration with the
eager network and with the forward path the solver chose in setup (``fast.py``:
eager or channels_last, whichever measured faster), the bare forward pass of the
same network on the same input with that path, and their ratio.
Goal (asserted): one solver iteration <= 1.15 x one bare forward pass, i.e. the
float64 gradient, normalisation, update and Dirichlet reset cost little next to
the U-Net. Timings are best-of-7 interleaved rounds; on a machine shared with other
jobs they are noisy, so compare runs on a quiet machine.
"""

from __future__ import annotations

import os
import time

import pytest
import torch

from harness.evaluate import solver_params
from problems import make_problem
from solvers.metamizer.solver import Metamizer as MetamizerSolver

THREADS = int(os.environ.get("METAMIZER_BENCH_THREADS", "1"))
SIZES = (64, 128, 256)
MODELS = ("metamizer_groupnorm", "metamizer_paper")
ITERS = 10
GOAL = 1.15


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


def _solver(config, n, fast_path):
    problem = make_problem("laplace_bilinear", n=n)
    solver = MetamizerSolver(**{**solver_params(config), "fast_path": fast_path})
    reason = solver.available()
    if reason:
        pytest.skip(reason)
    solver.setup(problem)
    with torch.inference_mode():  # the network input of the first iteration (real data, not zeros)
        u = solver.physics.initial_field()[None]
        x = solver.model.features(solver.physics.gradient(u[0])[None], solver.model.initial_state(u))
    return problem, solver, x


def _solve(problem, solver):
    solver.solve(problem, _Quiet(ITERS))


def _forward(solver, x):
    with torch.inference_mode():
        for _ in range(ITERS):
            solver.model.nn(x)


def _best(pairs, rounds=7):
    """Best time per iteration of each (fn, args), the calls interleaved round by round."""
    for fn, args in pairs:
        fn(*args)  # warm-up
    best = [float("inf")] * len(pairs)
    for _ in range(rounds):
        for i, (fn, args) in enumerate(pairs):
            t0 = time.perf_counter()
            fn(*args)
            best[i] = min(best[i], (time.perf_counter() - t0) / ITERS)
    return best


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("config", MODELS)
def test_iteration_vs_forward(config, n):
    problem, eager, _ = _solver(config, n, "eager")
    _, fast, x = _solver(config, n, "auto")
    t_eager, t_fast, t_fwd = _best([(_solve, (problem, eager)), (_solve, (problem, fast)), (_forward, (fast, x))])
    ratio = t_fast / t_fwd
    print(f"\n{config} n={n} threads={THREADS}: eager {1e3 * t_eager:.2f} ms/it, chosen path "
          f"{fast.forward_path} {1e3 * t_fast:.2f} ms/it, bare forward ({fast.forward_path}) "
          f"{1e3 * t_fwd:.2f} ms, ratio {ratio:.3f} (goal <= {GOAL})")
    assert ratio <= GOAL, f"solver iteration {ratio:.3f} x the bare forward (goal {GOAL})"
