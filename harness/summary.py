"""Hydra callback: a summary table at the end of a sweep (rich)."""

from __future__ import annotations

from hydra.experimental.callback import Callback
from omegaconf import DictConfig


class SweepSummary(Callback):
    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        from harness.console import print_summary
        from harness.results import ResultsError, load

        folder = config.hydra.sweep.dir
        try:
            df = load(folder)
        except ResultsError as exc:
            print(f"no results to summarise: {exc}")
            return
        print_summary(df, title=f"{config.get('sweep_name', 'sweep')}: {folder}")
        print(f"traces: {folder}   report: python -m harness.report {folder}")
