"""A sweep through Slurm, seen from the machine that submits it (``hydra/launcher=slurm``).

submitit writes the batch scripts and submits the jobs as one Slurm array; this module does
the rest of what a benchmark needs from a launcher:
- jobs that ``resume=`` finds complete are not submitted at all;
- every job is waited for, until Slurm says it ended (``harness.slurm.scheduler``, from squeue:
  quiet without accounting), and one stopped job never stops the wait for the others;
- a job Slurm stopped at its time limit is recorded as a ``timeout`` trace; one that sbatch refused
  (e.g. GPUs on a cluster without any), or that stayed pending with nothing of the sweep running
  for ``max_pending_min``, as ``unavailable``, with Slurm's reason; a cancelled, preempted or
  failed job leaves no trace (``resume=`` runs it again) and its reason is recorded;
- ``<sweep>/slurm_jobs.jsonl`` keeps what became of each job, and the sweep's summary counts them;
- stopping the sweep (Ctrl-C, SIGTERM) cancels its jobs still queued or running.

On the node, a job ends at once on SIGTERM (scancel, preemption, time limit), leaving nothing that
looks complete, as a job of the basic launcher does (``node_signals``).
"""

from __future__ import annotations

import logging
import shutil
import signal
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from harness.slurm.jobs import PlannedJob, complete_trace, compose, find_trace, record_not_run, relative
from harness.slurm.record import JobRecord, Outcome, append_records
from harness.slurm.scheduler import (
    ACTIVE,
    STOPPED,
    JobState,
    accounting_state,
    cancel,
    job_states,
    stepd_line,
    submission_error,
)

log = logging.getLogger("harness")
STOPS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

LAUNCHES: list[list[JobRecord]] = []  # what this process launched, for the sweep's summary
SWEEP_STOPPED = "cancelled because the sweep was stopped"
UNSEEN_GRACE_S = 120  # a job squeue has never listed this long after submission is looked up in sacct


def refuse_without_slurm() -> None:
    """Before the sweep writes anything: one line and exit 2 where no Slurm job can be submitted."""
    if shutil.which("sbatch") is None:
        print("error: hydra/launcher=slurm needs Slurm's sbatch, which this machine does not have: run the sweep "
              "on a Slurm submit host (or try it here: bash scripts/slurm_local.sh start)", file=sys.stderr)
        raise SystemExit(2)


def node_signals() -> None:
    """In the job, on the node: SIGTERM (scancel, preemption, the time limit) ends the job at once; its
    solver child dies with it (``harness.guard``) and no trace is written, so the launcher records Slurm's
    reason and ``resume=`` runs it again. submitit's own handlers would ignore SIGTERM for ``KillWait``
    seconds and turn the time-limit warning (USR2) into an error: the warning is only logged."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGUSR2, lambda sig, frame: log.info("Slurm: the time limit is near"))


def launch(launcher, job_overrides, initial_job_idx: int, *, max_pending_min: float | None,
           poll_s: float) -> list:
    """Submit the jobs not yet complete, wait for all of them, record each; the JobReturns of those
    that returned."""
    from hydra.core.utils import filter_overrides

    stamp = datetime.now().astimezone().isoformat(timespec="seconds")
    sweep_dir = Path(str(launcher.config.hydra.sweep.dir))
    sweep_dir.mkdir(parents=True, exist_ok=True)
    jobs = [PlannedJob(initial_job_idx + i, list(o)) for i, o in enumerate(job_overrides)]
    resuming = bool(launcher.config.get("resume"))
    records = []
    for job in jobs:
        log.info(f"\t#{job.num} : {' '.join(filter_overrides(job.overrides))}")
        if resuming:
            job.complete = complete_trace(compose(launcher, job))
            if job.complete is not None:
                log.info(f"\t#{job.num} complete in {job.complete.parent} (resume: not submitted)")
                records.append(JobRecord(job.num, job.overrides, Outcome.SKIPPED,
                                         trace=relative(job.complete, sweep_dir)))
    todo = [j for j in jobs if j.complete is None]
    returns = []
    try:
        if todo:
            returns = _submit_and_wait(launcher, todo, sweep_dir, records, max_pending_min, poll_s)
    finally:
        for r in records:
            r.launch = stamp
        append_records(sweep_dir, records)
        LAUNCHES.append(records)
    return returns


def _submit_and_wait(launcher, todo: list[PlannedJob], sweep_dir: Path, records: list[JobRecord],
                     max_pending_min: float | None, poll_s: float) -> list:
    from hydra.core.singleton import Singleton

    executor = _executor(launcher.params)
    log.info(f"Slurm: submitting {len(todo)} jobs; sweep output dir: {sweep_dir}")
    args = [(j.overrides, "hydra.sweep.dir", j.num, f"job_id_for_{j.num}", Singleton.get_state()) for j in todo]
    # A stop (Ctrl-C, SIGTERM) during submission waits until the jobs' ids are known, so that it can cancel
    # them: stopped inside sbatch, the array would run on unseen.
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, STOPS)
    try:
        submitted = executor.map_array(launcher, *zip(*args, strict=True))
    except Exception as exc:  # noqa: BLE001 - sbatch refused the array: every job is recorded, none runs
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        reason = f"Slurm refused the job: {submission_error(exc)}"
        for job in todo:
            records.append(record_not_run(launcher, job, sweep_dir, Outcome.UNAVAILABLE, "", reason))
        return []
    by_id = {s.job_id: (job, s) for job, s in zip(todo, submitted, strict=True)}
    final: dict[str, JobState] = {}
    gave_up: set[str] = set()
    try:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)  # a stop that came meanwhile is raised here
        log.info(f"Slurm: array {submitted[0].job_id.split('_')[0]}, {len(submitted)} jobs")
        _wait(list(by_id), final, gave_up, max_pending_min, poll_s)
    except BaseException:  # the sweep was stopped: its jobs stop too, so nothing writes into the folder later
        cancel([i for i in by_id if i not in final])
        for i in by_id:
            final.setdefault(i, JobState("CANCELLED", SWEEP_STOPPED))
        raise
    finally:
        returns = []
        for job_id, (job, submitted_job) in by_id.items():
            record, returned = _outcome(launcher, job, submitted_job, final[job_id], job_id in gave_up, sweep_dir)
            records.append(record)
            if returned is not None:
                returns.append(returned)
    return returns


def _executor(params: dict[str, Any]):
    """A submitit Slurm executor with the launcher's parameters (the generic names, e.g. ``timeout_min``,
    as they are; the Slurm ones, e.g. ``partition``, as submitit's ``slurm_*``)."""
    import submitit
    from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf
    from omegaconf import OmegaConf

    params = dict(params)
    executor = submitit.AutoExecutor(folder=params.pop("submitit_folder"), cluster="slurm",
                                     slurm_max_num_timeout=params.pop("max_num_timeout", 0))
    generic = set(OmegaConf.structured(BaseQueueConf).keys())
    executor.update_parameters(**{k if k in generic else f"slurm_{k}": v for k, v in params.items()})
    return executor


def _wait(job_ids: list[str], final: dict[str, JobState], gave_up: set[str], max_pending_min: float | None,
          poll_s: float) -> None:
    """Poll squeue until every job is in a final state (filling ``final``). Jobs still pending when
    nothing of the sweep has run for ``max_pending_min`` minutes are cancelled (and put in ``gave_up``)."""
    start = progress = time.monotonic()
    warned = False
    while len(final) < len(job_ids):
        states = job_states([i.split("_")[0] for i in job_ids if i not in final])
        if states is None:
            if not warned:
                log.warning("Slurm: squeue did not answer; still waiting for the jobs")
                warned = True
            time.sleep(max(poll_s, 5.0))
            continue
        for i in job_ids:
            if i in final:
                continue
            state = states.get(i)
            if state is None and time.monotonic() - start > UNSEEN_GRACE_S:
                state = accounting_state(i)
            if state is not None and state.final:
                final[i] = state
                progress = time.monotonic()
            elif state is not None and state.state in ACTIVE:
                progress = time.monotonic()
        stuck = [i for i in job_ids if i not in final and states.get(i) and states[i].state == "PENDING"]
        if max_pending_min is not None and stuck and time.monotonic() - progress > 60 * max_pending_min:
            cancel(stuck)
            for i in stuck:
                pending = states[i].reason or "none given"
                final[i] = JobState("PENDING", f"still pending after {max_pending_min:g} min with nothing of "
                                               f"the sweep running (Slurm's reason: {pending}); cancelled")
                gave_up.add(i)
        if len(final) < len(job_ids):
            time.sleep(poll_s)


def _has_result(submitted) -> bool:
    return submitted.paths.result_pickle.exists()


def _outcome(launcher, job: PlannedJob, submitted, state: JobState, gave_up: bool, sweep_dir: Path):
    """(the job's record, its JobReturn or None)."""
    from hydra.core.utils import JobStatus

    job_id = submitted.job_id
    if state.reason == SWEEP_STOPPED and not _has_result(submitted):
        return JobRecord(job.num, job.overrides, Outcome.CANCELLED, job_id, state.state, state.reason), None
    if gave_up:
        return record_not_run(launcher, job, sweep_dir, Outcome.UNAVAILABLE, job_id, state.reason), None
    returned, error = None, ""
    if _has_result(submitted):
        try:
            returned = submitted.results()[0]
        except Exception as exc:  # noqa: BLE001 - the job raised outside the harness's own handling
            error = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        if returned is not None and returned.status != JobStatus.COMPLETED:
            error, returned = f"{type(returned._return_value).__name__}: {returned._return_value}", None
    trace = find_trace(launcher, job, returned)
    why = "; ".join(p for p in (state.reason, stepd_line(submitted.paths.stderr), error) if p)
    if trace is not None:  # the job wrote its trace: its result, whatever Slurm did afterwards
        return JobRecord(job.num, job.overrides, Outcome.COMPLETED, job_id, state.state, why if
                         state.state != "COMPLETED" else "", relative(trace, sweep_dir)), returned
    if state.state == "TIMEOUT":
        limit = launcher.params.get("timeout_min")
        message = (f"Slurm stopped job {job_id} at its time limit (hydra.launcher.timeout_min={limit}): "
                   f"{why or 'TIMEOUT'}; the partial trace is lost with the job")
        return record_not_run(launcher, job, sweep_dir, Outcome.TIMED_OUT, job_id, message, state), None
    outcome = Outcome.CANCELLED if state.state in STOPPED else Outcome.FAILED
    return JobRecord(job.num, job.overrides, outcome, job_id, state.state, why or "no reason given"), None


__all__ = ["LAUNCHES", "launch", "node_signals", "refuse_without_slurm"]
