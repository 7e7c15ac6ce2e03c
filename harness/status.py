"""Every status a job (one repeat) can end with, and what each one means.

One place for the list: the runner and the job produce these, the report,
the tables and the check read them (``Status.describe`` gives the one-line
meaning for a legend). ``Status`` is a ``StrEnum``: a status is the string stored in traces
(``Status.TARGET == "target"``).
"""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    TARGET = "target"
    BUDGET = "budget"
    STALLED = "stalled"
    DIVERGED = "diverged"
    TIMEOUT = "timeout"
    ERROR = "error"
    UNAVAILABLE = "unavailable"

    @property
    def description(self) -> str:
        return DESCRIPTIONS[self]

    @classmethod
    def describe(cls, value: str) -> str:
        """The one-line meaning of a status value ('' for a value this version does not produce)."""
        try:
            return cls(value).description
        except ValueError:
            return ""


DESCRIPTIONS = {
    Status.TARGET: "reached budget.target_msr",
    Status.BUDGET: "ran until budget.max_iters or budget.max_seconds ended it",
    Status.STALLED: "returned by itself before its budget, without reaching the target "
                    "(or with no target set); the message gives the solver's reason",
    Status.DIVERGED: "MSR became non-finite or grew past divergence_factor x its initial value",
    Status.TIMEOUT: "killed after job_timeout_s of wall clock (partial trace kept)",
    Status.ERROR: "raised an exception, crashed, or was refused (message says which)",
    Status.UNAVAILABLE: "cannot run here (missing library or device, or unsupported problem)",
}

STATUSES = tuple(s.value for s in Status)
FAILED = (Status.DIVERGED, Status.TIMEOUT, Status.ERROR, Status.UNAVAILABLE)

__all__ = ["DESCRIPTIONS", "FAILED", "STATUSES", "Status"]
