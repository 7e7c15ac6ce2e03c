"""What the Slurm scheduler says about jobs: their states, Slurm's reasons, and cancelling them.

The states come from ``squeue``, never from ``sacct``: a cluster without accounting (such as the
one-node cluster of ``scripts/slurm_local.sh``) has no ``sacct`` to ask, and submitit's watcher,
which asks it, then prints a "Bypassing sacct error" warning per poll and never learns that a
cancelled job ended. ``squeue --states=all`` reports a finished job for ``MinJobAge`` seconds
(300 by default), far longer than the launcher's poll interval; only a job that is gone from it
is looked up in ``sacct``, quietly, where accounting exists.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

# A job in one of these states will not run again (unless someone requeues it by hand).
FINAL = frozenset({"COMPLETED", "CANCELLED", "FAILED", "TIMEOUT", "PREEMPTED", "NODE_FAIL", "BOOT_FAIL",
                   "DEADLINE", "OUT_OF_MEMORY", "REVOKED", "SPECIAL_EXIT"})
STOPPED = frozenset({"CANCELLED", "PREEMPTED", "NODE_FAIL", "BOOT_FAIL", "DEADLINE", "REVOKED"})  # from outside
ACTIVE = frozenset({"RUNNING", "COMPLETING", "CONFIGURING", "SIGNALING", "STAGE_OUT", "SUSPENDED", "RESIZING"})
GONE = "UNKNOWN"  # no longer reported by squeue, nor by sacct


@dataclass(frozen=True)
class JobState:
    state: str         # Slurm's job state, e.g. RUNNING, CANCELLED, TIMEOUT
    reason: str = ""   # squeue's reason ("Resources", "BeginTime", ...); "" for None
    node: str = ""

    @property
    def final(self) -> bool:
        return self.state in FINAL or self.state == GONE


def _run(command: list[str], timeout: float = 60) -> str | None:
    """A Slurm command's output, or None if it failed (the controller may be briefly busy)."""
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


def job_states(job_ids: list[str]) -> dict[str, JobState] | None:
    """Job id (``123`` or an array task ``123_4``) -> its state, for the jobs and arrays named (array
    tasks listed one by one); None when squeue could not be asked."""
    if not job_ids:
        return {}
    out = _run(["squeue", "--noheader", "--array", "--states=all", "--jobs", ",".join(sorted(set(job_ids))),
                "--format=%i|%T|%r|%N"])
    if out is None:
        return None
    states = {}
    for line in out.splitlines():
        parts = line.strip().split("|")
        if len(parts) == 4:
            job, state, reason, node = parts
            states[job] = JobState(state.split()[0], "" if reason in ("None", "(null)") else reason, node)
    return states


def accounting_state(job_id: str) -> JobState:
    """The final state of a job squeue no longer reports, from sacct where accounting exists, else GONE."""
    out = _run(["sacct", "--noheader", "--parsable2", "--jobs", job_id, "--format=JobID,State,NodeList"])
    for line in (out or "").splitlines():
        job, state, node = (line.split("|") + ["", ""])[:3]
        if job == job_id and state:
            return JobState(state.split()[0], "", node)
    return JobState(GONE, "no longer reported by squeue, and this cluster keeps no accounting (sacct)")


def stepd_line(stderr_file: Path | None) -> str:
    """Slurm's own account of how a job ended, as slurmstepd writes it into the job's error stream:
    ``*** JOB 12 ON node1 CANCELLED AT 2026-12-05T07:23:33 DUE TO TIME LIMIT ***`` ('' if none)."""
    try:
        text = Path(stderr_file).read_text(errors="replace") if stderr_file else ""
    except OSError:
        return ""
    found = re.findall(r"\*\*\* JOB .*? \*\*\*", text)
    return found[-1] if found else ""


def cancel(job_ids: list[str]) -> None:
    if job_ids:
        _run(["scancel", *sorted(set(job_ids))])


def submission_error(exc: BaseException) -> str:
    """The lines sbatch gave when it refused a submission (``sbatch: error: ...``), as one line."""
    text = str(exc)
    lines = [ln.strip() for ln in text.splitlines() if "error" in ln.lower()] or text.strip().splitlines()[:1]
    return " ".join(dict.fromkeys(lines)) or type(exc).__name__
