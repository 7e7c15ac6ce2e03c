"""Hydra callbacks of a sweep: a line per finished job (``SweepProgress``), a summary table at the end
(``SweepSummary``, rich); after a Slurm sweep, what Slurm ran. A Slurm sweep some of whose jobs left no
trace (cancelled, preempted, failed) exits 1, after saying which and how to run them (``harness.slurm``)."""

from __future__ import annotations

import logging
import math

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

log = logging.getLogger("harness")


def sweep_size(config: DictConfig) -> int | None:
    """How many jobs the sweep runs: the product of the number of values of every swept key (the sweep file's
    ``hydra.sweeper.params``, overridden by the command line's); None when a key is swept by a range."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    params = {str(k): str(v) for k, v in (config.hydra.sweeper.get("params") or {}).items()}
    for arg in config.hydra.overrides.task:
        key, sep, value = str(arg).partition("=")
        if sep:
            params[key.lstrip("+~")] = value
    total = 1
    parser = OverridesParser.create()
    for key, value in params.items():
        override = parser.parse_overrides([f"{key}={value}"])[0]
        if override.is_sweep_override():
            if not override.is_discrete_sweep():
                return None
            total *= len(list(override.sweep_string_iterator()))
    return total


class SweepProgress(Callback):
    """After each job of a sweep run one after the other (Hydra's basic launcher), one line: jobs done of
    total, time elapsed, time left. Other launchers run jobs in other processes: no line (they keep their
    own logs)."""

    def __init__(self) -> None:
        self.clock = None

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        from harness.progress import SweepClock

        basic = str(OmegaConf.select(config, "hydra.launcher._target_", default="")).endswith("BasicLauncher")
        if basic and config.get("progress", True):
            try:
                total = sweep_size(config)
            except Exception:  # noqa: BLE001  (a count we cannot make is no reason to stop a sweep)
                total = None
            self.clock = SweepClock(total)

    def on_job_end(self, config: DictConfig, job_return, **kwargs) -> None:
        if self.clock is None:
            return
        from harness.progress import solve_bound

        budget = config.get("budget") or {}
        seconds = float(budget.get("max_seconds") or math.inf)
        under = config.get("repeat_solve_under_s")
        log.info(self.clock.finished(solve_bound(seconds, int(config.get("repeats") or 1),
                                                 float(under) if under else None)))


class SweepSummary(Callback):
    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        from harness.console import print_summary
        from harness.results import ResultsError, load
        from harness.slurm import LAUNCHES, summary_lines

        folder = config.hydra.sweep.dir
        try:
            df = load(folder)
        except ResultsError as exc:
            print(f"no results to summarise: {exc}")
        else:
            target = OmegaConf.select(config, "budget.target_msr", default=None)
            print_summary(df, title=f"{config.get('sweep_name', 'sweep')}: {folder}", target_set=bool(target))
            print(f"traces: {folder}   report: python -m harness.report {folder}")
        slurm = summary_lines([r for launch in LAUNCHES for r in launch], folder)
        for line in slurm:
            print(line)
        if slurm and slurm[-1].startswith("incomplete:"):
            raise SystemExit(1)
