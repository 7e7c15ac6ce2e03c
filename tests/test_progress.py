"""Honest progress and status words (issue 20): a bar measures what will end a solve, a log that is not a
terminal gets one line per finished repeat and no bar fragments, a sweep says how far it is, a solver that
stops by itself is "above target" only when there was a target, an overrun of max_seconds says by how much."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.monitor import Budget
from harness.progress import SweepClock, budget_share, duration, solve_bound
from harness.report.__main__ import main as report
from harness.runner import run_solver
from harness.status import status_words
from problems import make_problem
from tests.faulty_solvers import Slow

REPO = Path(__file__).resolve().parents[1]


def run_piped(tmp_path: Path, *args: str) -> str:
    """``python -m harness.run ARGS`` with stdout and stderr sent to a file, as a batch job's log is."""
    log = tmp_path / "run.log"
    with log.open("w") as out:
        subprocess.run([sys.executable, "-m", "harness.run", *args], cwd=REPO, stdout=out, stderr=subprocess.STDOUT,
                       stdin=subprocess.DEVNULL, check=True, timeout=300)
    return log.read_text()


def assert_no_bar(text: str) -> None:
    assert "\r" not in text and "\x1b[" not in text          # no carriage returns, no cursor movement
    assert "% of budget" not in text and "%|" not in text     # no bar, whole or in fragments


# --------------------------------------------------------------------------- a log that is not a terminal
def test_a_piped_job_without_target_writes_a_line_per_repeat_and_never_says_above_target(tmp_path):
    """A single job, no stop target (the default), a solver that stops by itself (a direct solve)."""
    out = tmp_path / "job"
    text = run_piped(tmp_path, "problem.n=16", "solver=splu", "repeats=3", f"hydra.run.dir={out}")
    assert_no_bar(text)
    lines = [ln for ln in text.splitlines() if ln.strip()]
    repeats = [ln for ln in lines if re.search(r"splu laplace_bilinear 16x16 rep \d:", ln)]
    assert [re.search(r"rep (\d)", ln).group(1) for ln in repeats] == ["0", "1", "2"]
    assert len(lines) == 3                                       # nothing but the three lines
    assert all("rep" in ln and ": stopped by itself, it=" in ln for ln in repeats)
    assert "(no target set)" in text and "above target" not in text
    # the report of that job says the same
    assert report([str(out), "--out", str(tmp_path / "report"), "--no-figures"]) == 0
    md = (tmp_path / "report" / "summary.md").read_text()
    assert "stopped by itself" in md and "above target" not in md


def test_a_piped_sweep_writes_a_line_per_repeat_and_per_job(tmp_path):
    text = run_piped(tmp_path, "-m", "problem.n=16", "solver=cg,splu", "repeats=2", "budget.max_iters=40",
                     "budget.target_msr=1e-40", f"hydra.sweep.dir={tmp_path / 'sweep'}")
    assert_no_bar(text)
    assert len(re.findall(r"laplace_bilinear 16x16 rep \d:", text)) == 4
    sweep = re.findall(r"^sweep: (\d) of 2 jobs done \((\d+) %\), \S+ elapsed(.*)$", text, flags=re.M)
    assert [(done, pct) for done, pct, _ in sweep] == [("1", "50"), ("2", "100")]
    assert "left at the pace so far" in sweep[0][2] and "of solving" in sweep[0][2] and sweep[1][2] == ""
    # with a stop target set, a solver that stops by itself above it says so
    assert "splu laplace_bilinear 16x16 rep 0: stopped by itself, above target, it=" in text


# --------------------------------------------------------------------------- the bar
def test_the_bar_counts_the_clock_that_will_end_the_solve():
    budget = Budget(max_iters=1000, max_seconds=10.0)
    # 100 iterations in 5 s: the time budget binds (10 s comes before 1000 iterations)
    share, left, text = budget_share(budget, 100, 5.0)
    assert share == pytest.approx(0.5) and left == pytest.approx(5.0) and "5.0/10 s" in text
    # 500 iterations in 1 s: the iterations bind; 500 more take about 1 s, not the 9 s the clock allows
    share, left, text = budget_share(budget, 500, 1.0)
    assert share == pytest.approx(0.5) and left == pytest.approx(1.0) and "it 500/1,000" in text


@given(max_iters=st.integers(1, 10**6), max_seconds=st.floats(0.01, 1e4), iteration=st.integers(0, 10**6),
       used=st.floats(0, 1.5))
def test_the_bar_never_promises_more_time_than_the_budget_allows(max_iters, max_seconds, iteration, used):
    iteration = min(iteration, max_iters)
    time_s = used * max_seconds
    share, left, _ = budget_share(Budget(max_iters=max_iters, max_seconds=max_seconds), iteration, time_s)
    assert 0.0 <= share <= 1.0
    assert 0.0 <= left <= max(0.0, max_seconds - time_s) * (1 + 1e-9) + 1e-12


def test_the_sweep_line():
    clock = SweepClock(total=4)
    clock.started -= 60                                          # one minute in
    assert clock.finished(budget_s=14.0) == ("sweep: 1 of 4 jobs done (25 %), 1m00s elapsed, ~3m00s left at the pace "
                                             "so far (the budgets of the 3 jobs left allow up to 42s of solving)")
    assert solve_bound(10.0, 3, 2.0) == 14.0 and solve_bound(10.0, 1, None) == 10.0
    assert duration(3725) == "1h02m05s" and duration(4.2) == "4s"
    assert SweepClock(total=None).finished(1.0).startswith("sweep: 1 jobs done")


# --------------------------------------------------------------------------- status words
def test_stopped_by_itself_is_above_target_only_with_a_target():
    assert status_words("stalled") == "stopped by itself"
    assert status_words("stalled", target_set=True) == "stopped by itself, above target"
    assert status_words("stalled x2, target x1", target_set=True) == ("stopped by itself, above target x2, "
                                                                      "reached the stop target x1")


def test_an_iteration_that_outruns_the_clock_says_by_how_much():
    p = make_problem("laplace_bilinear", n=16)
    r = run_solver(p, Slow(delay=0.3), Budget(max_iters=100, max_seconds=0.05), warmup=False)
    last = r.trace.iloc[-1]
    assert r.status == "budget" and last.iteration == 1 and last.time_s >= 0.3
    over = float(re.search(r"overran it by ([\d.e+-]+) s", r.message).group(1))
    assert r.message.startswith("max_seconds=0.05 reached; the last iteration overran it by ")
    assert over == pytest.approx(last.time_s - 0.05, rel=1e-2)
    # within 1 % of the budget nothing is said
    assert Budget(max_seconds=10.0).out_of_time(10.05) == "max_seconds=10 reached"
