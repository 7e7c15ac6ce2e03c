"""One job of a Slurm sweep, seen from the submitting machine: its config as Hydra composes it on the
node, its folder, whether ``resume=`` finds it complete, and the trace of a job that never ran there."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import outcome as ledger
from harness.slurm.record import JobRecord, Outcome
from harness.slurm.scheduler import JobState


@dataclass
class PlannedJob:
    num: int
    overrides: list[str]
    config: Any = None            # the composed job config (with its hydra node), composed when needed
    complete: Path | None = None  # resume=: this job's trace already in the folder


def find_trace(launcher, job: PlannedJob, returned) -> Path | None:
    """The job's trace, if it wrote one (its folder from what it returned, else from its config)."""
    from harness.results import TRACE_NAME

    runtime = returned.hydra_cfg.hydra.runtime if returned is not None and returned.hydra_cfg else None
    folder = Path(str(runtime.output_dir)) if runtime is not None else job_folder(launcher, job)
    trace = folder / TRACE_NAME
    return trace if trace.exists() else None


def record_not_run(launcher, job: PlannedJob, sweep_dir: Path, outcome: Outcome, job_id: str, message: str,
                    state: JobState | None = None) -> JobRecord:
    """Write the trace of a job that never ran (or whose run Slurm ended), and its record."""
    from harness.job import run_job
    from harness.runner import JobResult
    from harness.status import Status

    status = Status.TIMEOUT if outcome == Outcome.TIMED_OUT else Status.UNAVAILABLE
    cfg = compose(launcher, job)
    folder = job_folder(launcher, job)
    slurm = {"job": job_id, "state": state.state if state else "", "node": state.node if state else "",
             "reason": message}
    trace = run_job(task_config(cfg), folder, list(cfg.hydra.overrides.task),
                    not_run=JobResult(status, message), facts={"slurm": slurm})
    ledger.record(ledger.FAILED, folder, getattr(status, "value", str(status)), message)  # the sweep exits 1
    return JobRecord(job.num, job.overrides, outcome, job_id, state.state if state else "", message,
                     relative(trace, sweep_dir))


def compose(launcher, job: PlannedJob):
    """The job's full config, as Hydra composes it on the node (hydra node included)."""
    from omegaconf import open_dict

    if job.config is None:
        cfg = launcher.hydra_context.config_loader.load_sweep_config(launcher.config, list(job.overrides))
        with open_dict(cfg.hydra.job):
            cfg.hydra.job.num = job.num
            cfg.hydra.job.id = f"job_id_for_{job.num}"
        job.config = cfg
    return job.config


def task_config(cfg):
    """The job's config without its hydra node: what the task function gets."""
    from omegaconf import open_dict, read_write

    task = copy.deepcopy(cfg)
    with read_write(task), open_dict(task):
        del task["hydra"]
    return task


def job_folder(launcher, job: PlannedJob) -> Path:
    cfg = compose(launcher, job)
    return Path(str(cfg.hydra.sweep.dir)) / str(cfg.hydra.sweep.subdir)


def complete_trace(cfg) -> Path | None:
    """resume=: the trace of this job already in the folder (the same test ``harness.run`` makes in the job)."""
    from omegaconf import OmegaConf

    from harness.resume import find_complete, job_key

    task = task_config(cfg)
    return find_complete(task.resume, job_key(OmegaConf.to_container(task, resolve=True)))


def relative(path: Path, root: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)


__all__ = ["PlannedJob", "complete_trace", "compose", "find_trace", "job_folder", "record_not_run", "relative",
           "task_config"]
