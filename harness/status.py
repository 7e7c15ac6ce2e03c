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

    @property
    def words(self) -> str:
        """How the status reads in a table."""
        return WORDS[self]

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

WORDS = {
    Status.TARGET: "reached the stop target",
    Status.BUDGET: "used its whole budget",
    Status.STALLED: "stopped by itself",
    Status.DIVERGED: "diverged",
    Status.TIMEOUT: "killed at the job timeout",
    Status.ERROR: "failed with an error",
    Status.UNAVAILABLE: "unavailable here",
}
# Statuses older traces wrote: "ok" for a solver that returned by itself (issue 11 split it into
# stalled and budget/target); ``normalise`` reads it as the status that replaced it.
LEGACY = {"ok": Status.STALLED}
LEGACY_WORDS = {"ok": "finished by itself"}

STATUSES = tuple(s.value for s in Status)
ENDED = (Status.TARGET, Status.BUDGET, Status.STALLED)  # ran until the budget, the target or the solver ended it
FAILED = (Status.DIVERGED, Status.TIMEOUT, Status.ERROR, Status.UNAVAILABLE)
BROKE = (Status.DIVERGED, Status.ERROR, Status.TIMEOUT)  # failed after it started: its partial curve is marked
# The job did not measure what it was asked to (a diverging solver did: that is its result): a non-zero exit.
FAULTS = (Status.ERROR, Status.TIMEOUT, Status.UNAVAILABLE)


def normalise(value: str) -> str:
    """A stored status as this version names it ("ok" -> "stalled"; others unchanged)."""
    return str(LEGACY.get(value, value))


ABOVE_TARGET = "stopped by itself, above target"  # the stalled status's words when a stop target was set


def status_words(summary: str, target_set: bool = False) -> str:
    """'budget x2, diverged x1' -> 'used its whole budget x2, diverged x1' (unknown statuses kept as they are).

    A solver that returned by itself is "stopped by itself"; "above target" is added only when the job had a
    stop target (``budget.target_msr``) to be above: ``target_set``.
    """
    out = []
    for part in str(summary).split(", "):
        word, _, count = part.partition(" x")
        text = WORDS[Status(word)] if word in STATUSES else LEGACY_WORDS.get(word, word)
        if word == Status.STALLED and target_set:
            text = ABOVE_TARGET
        out.append(text + (f" x{count}" if count else ""))
    return ", ".join(dict.fromkeys(out))


__all__ = ["ABOVE_TARGET", "BROKE", "DESCRIPTIONS", "ENDED", "FAILED", "FAULTS", "LEGACY", "STATUSES", "WORDS",
           "Status", "normalise", "status_words"]
