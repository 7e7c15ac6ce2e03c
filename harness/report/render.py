"""Draw and save the report's static figures, several at a time.

Each figure is a ``Task``: a function that draws it from tables already in memory. The tasks run in forked
worker processes (one per core, at most one per figure), which inherit those tables instead of receiving a
copy, while the caller goes on with the rest of the report (``start``, then ``Drawing.collect``); where
``fork`` is unavailable they run one after the other here. A figure that fails is reported with its error
and the others are kept.
"""

from __future__ import annotations

import multiprocessing
import os
import warnings
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

_TASKS: list[Task] = []   # what the forked workers run (inherited, never pickled)


@dataclass
class Task:
    title: str
    stem: Path                       # figures/<grouping>/<name>, no suffix
    draw: Callable[[], object]       # a matplotlib figure, or None when there is nothing to draw
    kind: str = ""                   # sections.TITLES key ("" for the training bill)


@dataclass
class Drawn:
    task: Task
    paths: list[Path]                # png (and svg); empty when nothing was drawn or drawing failed
    error: str = ""


def _run(index: int, svg: bool) -> tuple[list[Path], str]:
    from . import canvas

    task = _TASKS[index]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            fig = task.draw()
            return ([] if fig is None else canvas.save(fig, task.stem, svg)), ""
    except Exception as exc:  # noqa: BLE001  (one bad figure must not lose the rest of the report)
        return [], f"{type(exc).__name__}: {exc}"


def workers(tasks: int) -> int:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(cores, tasks))


# the most expensive figures first, so the workers finish together
COST = ("families", "setup_solve", "msr_iterations", "msr_time", "mse_time", "scaling", "headline")


class Drawing:
    """Figures being drawn in worker processes while the caller goes on (``start``); ``collect`` waits."""

    def __init__(self, tasks: list[Task], svg: bool, processes: int | None):
        global _TASKS
        self.tasks = list(tasks)
        count = workers(len(tasks)) if processes is None else max(1, min(processes, len(tasks)))
        self._pool = self._futures = None
        self._outcomes = None
        order = sorted(range(len(tasks)), key=lambda i: COST.index(tasks[i].kind) if tasks[i].kind in COST else 99)
        _TASKS = self.tasks
        if count > 1 and "fork" in multiprocessing.get_all_start_methods():
            self._pool = ProcessPoolExecutor(count, mp_context=multiprocessing.get_context("fork"))
            self._futures = {i: self._pool.submit(_run, i, svg) for i in order}
        else:
            self._outcomes = [_run(i, svg) for i in range(len(tasks))]

    def collect(self) -> list[Drawn]:
        """Every task's files, in the order given."""
        global _TASKS
        try:
            if self._outcomes is None:
                self._outcomes = [self._futures[i].result() for i in range(len(self.tasks))]
        finally:
            if self._pool is not None:
                self._pool.shutdown()
            _TASKS = []
        return [Drawn(t, paths, error) for t, (paths, error) in zip(self.tasks, self._outcomes, strict=True)]


def start(tasks: list[Task], *, svg: bool = False, processes: int | None = None) -> Drawing:
    """Start drawing ``tasks`` (``processes``: at most this many workers; 1 = here, now)."""
    return Drawing(tasks, svg, processes)


def draw_all(tasks: list[Task], *, svg: bool = False, processes: int | None = None) -> list[Drawn]:
    """Every task's files, in the order given."""
    return start(tasks, svg=svg, processes=processes).collect()
