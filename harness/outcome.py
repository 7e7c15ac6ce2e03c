"""What a ``python -m harness.run`` command ended with, and the exit status that says so.

A single job's exit status is decided by the job itself (``job_faults``). A sweep's
jobs may run in this process, in joblib workers or on Slurm nodes, so each job
appends one line to a ledger in the sweep folder (``record``; its path travels
in the ``HARNESS_LEDGER`` environment variable, which every launcher passes on),
and the command reads it when the sweep ends (``summarise``): how many jobs ran,
how many failed and how, how many a resume found complete. The ledger is
removed afterwards; it is never a result.

Exit status (also in the README): 0 every job ran (or was already complete) and
none failed; 1 a job ended ``error``, ``timeout`` or ``unavailable``, a sweep ran
no job, or results could not be written; 2 bad input, refused before anything
was written; 130 / 143 stopped from outside (Ctrl-C or SIGHUP / SIGTERM).
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

from harness.results import final_rows, read_trace
from harness.status import FAULTS

LEDGER_ENV = "HARNESS_LEDGER"
LEDGER_NAME = ".harness-jobs.jsonl"
RAN, FAILED, SKIPPED = "ran", "failed", "skipped"


def job_faults(trace: str | Path) -> list[tuple[str, str]]:
    """(status, message) of every repeat of a job that ended with a fault (``harness.status.FAULTS``)."""
    last = final_rows(read_trace(trace))
    return [(str(r.status), str(r.message)) for r in last.itertuples() if r.status in FAULTS]


def start_ledger(folder: Path) -> Path:
    """An empty ledger in ``folder`` (a stale one, of a run that was killed, is emptied), announced to the jobs."""
    ledger = Path(folder) / LEDGER_NAME
    ledger.write_text("")
    os.environ[LEDGER_ENV] = str(ledger)
    return ledger


def record(outcome: str, where: str | Path, status: str = "", message: str = "") -> None:
    """Append one job's outcome (``RAN``, ``FAILED``, ``SKIPPED``) to the sweep's ledger, if there is one."""
    ledger = os.environ.get(LEDGER_ENV)
    if not ledger or not Path(ledger).parent.is_dir():
        return
    line = json.dumps({"outcome": outcome, "where": str(where), "status": status, "message": message}) + "\n"
    fd = os.open(ledger, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())  # one write per line: lines of concurrent jobs never interleave
    finally:
        os.close(fd)


def summarise(ledger: Path, folder: Path) -> tuple[int, str | None]:
    """(exit status, one line or None) for a finished sweep, from its ledger; the ledger is removed."""
    try:
        entries = [json.loads(ln) for ln in ledger.read_text().splitlines() if ln.strip()]
    except (OSError, ValueError):
        entries = []
    finally:
        ledger.unlink(missing_ok=True)
        os.environ.pop(LEDGER_ENV, None)
    counts = Counter(e.get("outcome") for e in entries)
    failed = [e for e in entries if e.get("outcome") == FAILED]
    if failed:
        how = Counter(e.get("status") or "error" for e in failed)
        kinds = ", ".join(f"{n} {status}" for status, n in sorted(how.items()))
        first = failed[0]
        return 1, (f"error: {len(failed)} of {len(entries)} jobs failed ({kinds}), the first in {first['where']}: "
                   f"{first.get('message') or first.get('status')}; every trace written is kept in {folder}")
    if not counts[RAN] and not counts[SKIPPED]:
        return 1, f"error: the sweep ran no job (nothing was launched into {folder})"
    if not counts[RAN]:
        return 0, f"note: all {counts[SKIPPED]} jobs were already complete in {folder}: nothing to run"
    return 0, None


__all__ = ["FAILED", "LEDGER_ENV", "LEDGER_NAME", "RAN", "SKIPPED", "job_faults", "record", "start_ledger",
           "summarise"]
