"""Resuming a sweep: which jobs of a sweep folder are already complete.

A job is identified by its *content*, not by its Hydra job number: its identity
(``harness.identity``: the problem and its real grid, the solver and every
parameter, the budget, the repeats, the seed, the threads, the warm-up), hashed.
``harness.job.run_job`` stores the key in each trace's metadata, and the key is
recomputed from the full config every trace stores (so traces written before
keys existed resume too). A narrowed, widened or reordered sweep therefore
resumes correctly: ``python -m harness.run +sweep=NAME resume=results/NAME/<stamp>``.

A trace file exists only once its job finished (it is written atomically at
the very end of the job), so "complete" is simply "a readable trace.parquet
whose key matches". A job killed mid-run leaves at most a ``.trace-*.tmp``
file, which nothing reads.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from harness import identity
from harness.results import read_metadata, trace_files


def solver_label(name: str, overrides: list[str] | tuple[str, ...]) -> str:
    """'adam' plus the solver parameters set on the command line, e.g. 'adam(lr=0.1)'."""
    extra = [o.split("solver.", 1)[1] for o in overrides if o.lstrip("+~").startswith("solver.")]
    return f"{name}({','.join(sorted(extra))})" if extra else name


def job_key(config: dict[str, Any]) -> str:
    """The key of a job's identity, from its resolved config (a plain dict)."""
    return identity.config_key(config)


def key_from_metadata(meta: dict[str, Any]) -> str | None:
    """The job key of a trace: recomputed from its stored config when possible."""
    if identity.has_config(meta):
        try:
            return job_key(meta["config"])
        except (KeyError, TypeError, ValueError):
            pass
    return meta.get("job_key")


def complete_jobs(folder: str | Path) -> dict[str, Path]:
    """job key -> trace file, for every readable trace under ``folder``."""
    out: dict[str, Path] = {}
    for f in trace_files(folder):
        try:
            key = key_from_metadata(read_metadata(f))
        except Exception:  # noqa: BLE001 - unreadable: not complete, the job runs again
            continue
        if key:
            out.setdefault(key, f)
    return out


@lru_cache(maxsize=8)
def _index(folder: str) -> dict[str, Path]:
    return complete_jobs(folder)


def find_complete(folder: str | Path, key: str) -> Path | None:
    """The trace of job ``key`` in ``folder`` if it is complete (folder scanned once per process)."""
    return _index(str(Path(folder).resolve())).get(key)


__all__ = ["complete_jobs", "find_complete", "job_key", "key_from_metadata", "solver_label"]
