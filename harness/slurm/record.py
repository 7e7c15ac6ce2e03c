"""What became of each Slurm job of a sweep: kept in ``<sweep>/slurm_jobs.jsonl`` (one line per job and
launch, appended by every launch into the folder, resumes included) and summed up after the sweep."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass
from enum import StrEnum
from pathlib import Path

RECORD_NAME = "slurm_jobs.jsonl"


class Outcome(StrEnum):
    COMPLETED = "completed"        # the job ran and wrote its trace (whatever the solver's status)
    TIMED_OUT = "timed out"        # Slurm stopped it at its time limit: recorded as a `timeout` trace
    CANCELLED = "cancelled"        # stopped from outside (scancel, preemption, node failure): no trace
    FAILED = "failed"              # ended without a trace for another reason (the message says which)
    UNAVAILABLE = "unavailable"    # never ran: refused by sbatch or left pending; an `unavailable` trace
    SKIPPED = "skipped"            # resume=: complete in the folder already, not submitted


WITHOUT_TRACE = (Outcome.CANCELLED, Outcome.FAILED)  # the jobs resume= runs again


@dataclass
class JobRecord:
    num: int                        # Hydra's job number in the sweep
    overrides: list[str]
    outcome: str                    # an Outcome
    slurm_job: str = ""             # e.g. "123_4" (array 123, task 4)
    state: str = ""                 # Slurm's final state
    reason: str = ""                # Slurm's reason, and slurmstepd's line, for a job that did not complete
    trace: str | None = None        # its trace, relative to the sweep folder
    launch: str = ""                # when the launch that submitted it started

    def describe(self) -> str:
        job = f"job {self.num} ({' '.join(self.overrides)})"
        slurm = f" Slurm job {self.slurm_job}" if self.slurm_job else ""
        state = f" {self.state}" if self.state else ""
        return f"{job}{slurm}:{state} {self.reason}".rstrip()


def append_records(sweep_dir: str | Path, records: list[JobRecord]) -> Path:
    path = Path(sweep_dir) / RECORD_NAME
    with path.open("a") as f:
        for r in sorted(records, key=lambda r: r.num):
            f.write(json.dumps(asdict(r), sort_keys=True) + "\n")
    return path


def read_records(sweep_dir: str | Path) -> list[JobRecord]:
    path = Path(sweep_dir) / RECORD_NAME
    if not path.exists():
        return []
    return [JobRecord(**json.loads(line)) for line in path.read_text().splitlines() if line.strip()]


def summary_lines(records: list[JobRecord], sweep_dir: str | Path) -> list[str]:
    """What Slurm ran, as the sweep's summary prints it: one line of counts, then one line per job that
    did not complete normally, then how to run the missing jobs."""
    if not records:
        return []
    counts = Counter(r.outcome for r in records)
    submitted = sum(n for o, n in counts.items() if o != Outcome.SKIPPED)
    parts = [f"{counts.get(o, 0)} {o}" for o in Outcome if o != Outcome.SKIPPED and (counts.get(o) or o in (
        Outcome.COMPLETED, Outcome.FAILED, Outcome.CANCELLED))]
    skipped = f" ({counts[Outcome.SKIPPED]} complete already, not submitted)" if counts.get(Outcome.SKIPPED) else ""
    lines = [f"Slurm: {submitted} job{'' if submitted == 1 else 's'} submitted{skipped}: {', '.join(parts)}"]
    lines += [f"  {r.outcome}: {r.describe()}" for r in records
              if r.outcome not in (Outcome.COMPLETED, Outcome.SKIPPED)]
    missing = sum(counts.get(o, 0) for o in WITHOUT_TRACE)
    if missing:
        lines.append(f"incomplete: {missing} job{'s' if missing > 1 else ''} left no trace; to run "
                     f"{'them' if missing > 1 else 'it'}, repeat the command with resume={Path(sweep_dir)}")
    return lines


__all__ = ["RECORD_NAME", "WITHOUT_TRACE", "JobRecord", "Outcome", "append_records", "read_records",
           "summary_lines"]
