"""Progress on the console: a bar per repeat that measures what will end it, and a line per finished job of a
sweep (jobs done of total, time elapsed, time left).

On a terminal a repeat shows a bar (tqdm, on stderr). When the output is not a terminal (a log file, a pipe)
there is no bar at all, so a log holds no bar fragments: the job's line per finished repeat
(``harness.job``) and the sweep's line per finished job are the progress.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

from harness.monitor import Budget


def budget_share(budget: Budget, iteration: int, time_s: float) -> tuple[float, float, str]:
    """(share of the budget used, seconds of solve left, what the bar says) for a solve at ``iteration`` after
    ``time_s`` of solve time.

    A budget has two clocks, ``max_iters`` and ``max_seconds``; the one further along at this pace is the one
    that will end the solve (unless the target or the solver does first), so the share is the larger of the
    two and the time left is counted on that clock. It is never more than the budget allows: at most
    ``max_seconds - time_s``.
    """
    by_time = time_s / budget.max_seconds
    by_iters = iteration / budget.max_iters
    if by_iters >= by_time and iteration > 0:
        left = time_s * (budget.max_iters - iteration) / iteration   # <= max_seconds - time_s here
        text = f"it {iteration:,}/{budget.max_iters:,}, ~{left:.1f} s left"
    else:
        left = max(0.0, budget.max_seconds - time_s)
        text = f"{time_s:.1f}/{budget.max_seconds:g} s, it {iteration:,}, <={left:.1f} s left"
    return min(1.0, max(by_time, by_iters)), left, text


class RepeatBar:
    """One repeat's bar: the share of its budget used (``budget_share``); nothing when not on a terminal."""

    FORMAT = "{desc} {percentage:3.0f}% of budget |{bar:24}|{postfix}"   # tqdm puts ", " before the postfix

    def __init__(self, desc: str, budget: Budget, file=None):
        from tqdm import tqdm

        self.budget = budget
        self._bar = tqdm(total=1.0, desc=desc, leave=False, dynamic_ncols=True, mininterval=0.5, file=file,
                         disable=None, bar_format=self.FORMAT)   # disable=None: no bar unless a terminal

    @property
    def shown(self) -> bool:
        return not self._bar.disable

    def checkpoint(self, iteration: int, time_s: float, msr: float) -> None:
        if not self.shown:
            return
        share, _, text = budget_share(self.budget, iteration, time_s)
        self._bar.set_postfix_str(f"{text}, msr={msr:.2e}", refresh=False)
        self._bar.update(share - self._bar.n)   # refreshes (at most every mininterval) with the new text

    def close(self) -> None:
        self._bar.close()


def duration(seconds: float) -> str:
    """62 -> '1m02s', 3725 -> '1h02m05s', 4.2 -> '4s'."""
    if not math.isfinite(seconds):
        return "?"
    s = int(round(seconds))
    h, rest = divmod(s, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s" if m else f"{s}s"


def solve_bound(max_seconds: float, repeats: int, repeat_under_s: float | None) -> float:
    """The most solve time one job's budget allows: its first repeat up to ``max_seconds``; a later repeat only
    follows a solve shorter than ``repeat_under_s`` (``harness.job.more_repeats``)."""
    later = min(max_seconds, repeat_under_s) if repeat_under_s else max_seconds
    return max_seconds + (max(1, repeats) - 1) * later


@dataclass
class SweepClock:
    """Jobs done of ``total``; what is left, estimated from the pace so far and bounded by the jobs' budgets."""

    total: int | None
    started: float = field(default_factory=time.monotonic)
    done: int = 0

    def finished(self, budget_s: float) -> str:
        """Count one more job done; the line to print (``budget_s``: a job's ``solve_bound``)."""
        self.done += 1
        elapsed = time.monotonic() - self.started
        if not self.total:
            return f"sweep: {self.done} jobs done, {duration(elapsed)} elapsed"
        remaining = max(0, self.total - self.done)
        line = (f"sweep: {self.done} of {self.total} jobs done ({100 * self.done / self.total:.0f} %), "
                f"{duration(elapsed)} elapsed")
        if remaining:
            jobs = f"{remaining} job{'s' if remaining > 1 else ''}"
            line += (f", ~{duration(elapsed / self.done * remaining)} left at the pace so far (the budgets of the "
                     f"{jobs} left allow up to {duration(remaining * budget_s)} of solving)")
        return line
