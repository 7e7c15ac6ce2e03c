"""Issue #18's targets for the shipped paper model, through the harness on the CPU
(not part of the test run; about 3 minutes on one core):

    pytest benchmarks/bench_metamizer_targets.py -s

Runs ``solver=metamizer_paper`` and ``solver=metamizer_groupnorm`` (our GroupNorm default) with
``harness.evaluate`` (the runner, the harness's MSR) on the cells of the targets and prints, for each,
the iterations to MSR 1e-10 and 1e-28. Asserted (the goal this benchmark states): the paper model
reaches 1e-10 on ``laplace_bilinear`` within 25 iterations at n = 64, 100, 128 and within 70 at 256,
and on ``laplace_obstacles`` and ``poisson_manufactured`` at n = 64 and 128 within 100. Whether it
also beats the GroupNorm model at every cell is printed, not asserted (the issue's goal, not its bar).
``METAMIZER_PAPER_CHECKPOINT=FILE`` judges a candidate file in place of the shipped one.
"""

from __future__ import annotations

import os

import torch

from harness.evaluate import evaluate

ITERS = 300
# (problem, n): the most iterations to MSR 1e-10 the paper model may take
TARGETS = {("laplace_bilinear", 64): 25, ("laplace_bilinear", 100): 25, ("laplace_bilinear", 128): 25,
           ("laplace_bilinear", 256): 70,
           ("laplace_obstacles", 64): 100, ("laplace_obstacles", 128): 100,
           ("poisson_manufactured", 64): 100, ("poisson_manufactured", 128): 100}


def _iterations(solver: str, checkpoint: str | None = None) -> dict[tuple[str, int], tuple[int | None, int | None]]:
    out = {}
    for problem, n in TARGETS:
        (row,) = evaluate(checkpoint, problems=(problem,), sizes=(n,), iters=ITERS, solver=solver)
        out[problem, n] = (row["it<=1e-10"], row["it<=1e-28"])
    return out


def test_the_paper_model_reaches_issue_18s_targets():
    torch.set_num_threads(1)
    candidate = os.environ.get("METAMIZER_PAPER_CHECKPOINT") or None
    paper, group = _iterations("metamizer_paper", candidate), _iterations("metamizer_groupnorm")
    print(f"\npaper model: {candidate or 'the shipped file'}", end="")
    print(f"\niterations to 1e-10 / 1e-28 (- = not within {ITERS}); target: paper model to 1e-10")
    print(f"{'problem':22} {'n':>4} {'target':>6} {'metamizer_paper':>16} {'metamizer_groupnorm':>20}")
    missed, behind = [], []
    for cell, most in TARGETS.items():
        p, g = paper[cell], group[cell]
        words = [f"{a if a is not None else '-'}/{b if b is not None else '-'}" for a, b in (p, g)]
        print(f"{cell[0]:22} {cell[1]:>4} {most:>6} {words[0]:>16} {words[1]:>20}")
        if p[0] is None or p[0] > most:
            missed.append(cell)
        if p[0] is None or (g[0] is not None and g[0] < p[0]):
            behind.append(cell)
    print(f"paper model behind the GroupNorm model (to 1e-10) at {len(behind)} of {len(TARGETS)} cells: {behind}")
    assert not missed, f"the paper model misses its target at {missed}"
