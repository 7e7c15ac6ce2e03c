"""Sweeps through a Slurm scheduler (``hydra/launcher=slurm``; the launcher class itself must live in
``hydra_plugins/harness_slurm``, where Hydra looks for plugins).

- ``scheduler``: what squeue says about jobs, Slurm's reasons, scancel;
- ``sweep``: submit a sweep's jobs, wait for all of them, record what became of each;
- ``record``: ``<sweep>/slurm_jobs.jsonl`` and the summary's lines about it.
"""

from harness.slurm.record import JobRecord, Outcome, read_records, summary_lines
from harness.slurm.sweep import LAUNCHES, launch, node_signals, refuse_without_slurm

__all__ = ["LAUNCHES", "JobRecord", "Outcome", "launch", "node_signals", "read_records", "refuse_without_slurm",
           "summary_lines"]
