"""Draw and save the report's static figures, several at a time.

Each figure is a ``Task``: a function that draws it from tables already in memory. The tasks run in forked
worker processes (one per core, at most one per figure), which inherit those tables instead of receiving a
copy; where ``fork`` is unavailable they run one after the other here. A figure that fails is reported with
its error and the others are kept.
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


def draw_all(tasks: list[Task], *, svg: bool = False, processes: int | None = None) -> list[Drawn]:
    """Every task's files, in the order given (``processes``: at most this many workers; 1 = here)."""
    global _TASKS
    count = workers(len(tasks)) if processes is None else max(1, min(processes, len(tasks)))
    _TASKS = list(tasks)
    try:
        if count > 1 and "fork" in multiprocessing.get_all_start_methods():
            with ProcessPoolExecutor(count, mp_context=multiprocessing.get_context("fork")) as pool:
                outcomes = list(pool.map(_run, range(len(tasks)), [svg] * len(tasks)))
        else:
            outcomes = [_run(i, svg) for i in range(len(tasks))]
    finally:
        _TASKS = []
    return [Drawn(task, paths, error) for task, (paths, error) in zip(tasks, outcomes, strict=True)]
