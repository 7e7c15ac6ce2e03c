"""Hydra callback: a summary table at the end of a sweep (rich); after a Slurm sweep, what Slurm ran.
A Slurm sweep some of whose jobs left no trace (cancelled, preempted, failed) exits 1, after saying
which and how to run them (``harness.slurm``)."""

from __future__ import annotations

from hydra.experimental.callback import Callback
from omegaconf import DictConfig


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
            print_summary(df, title=f"{config.get('sweep_name', 'sweep')}: {folder}")
            print(f"traces: {folder}   report: python -m harness.report {folder}")
        slurm = summary_lines([r for launch in LAUNCHES for r in launch], folder)
        for line in slurm:
            print(line)
        if slurm and slurm[-1].startswith("incomplete:"):
            raise SystemExit(1)
