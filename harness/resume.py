"""Resuming a sweep: which jobs of a sweep folder are already complete.

A job is identified by its *content*, not by its Hydra job number: the
problem (name, n/h/w and generator parameters), the solver (class, label and
every parameter), the budget, the number of repeats, the seed, the thread
count and whether the solve was warmed up. ``job_key`` hashes that; ``harness.job.run_job`` stores the key in each
trace's metadata, and the key can also be recomputed from the full config and
command-line overrides every trace stores (so traces written before keys
existed resume too). A narrowed, widened or reordered sweep therefore resumes
correctly: ``python -m harness.run +sweep=NAME resume=results/NAME/<stamp>``.

A trace file exists only once its job finished (it is written atomically at
the very end of the job), so "complete" is simply "a readable trace.parquet
whose key matches". A job killed mid-run leaves at most a ``.trace-*.tmp``
file, which nothing reads.
"""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from harness.results import read_metadata, trace_files

KEY_VERSION = 2  # 2: the measurement changed (warm-up, assembly in every setup): never resume into older traces


def solver_label(name: str, overrides: list[str] | tuple[str, ...]) -> str:
    """'adam' plus the solver parameters set on the command line, e.g. 'adam(lr=0.1)'."""
    extra = [o.split("solver.", 1)[1] for o in overrides if o.lstrip("+~").startswith("solver.")]
    return f"{name}({','.join(sorted(extra))})" if extra else name


def _canonical(v: Any) -> Any:
    """Numbers as floats (5 and 5.0 are the same budget), containers recursively."""
    if isinstance(v, bool) or v is None or isinstance(v, str):
        return v
    if isinstance(v, (int, float)):
        return float(v)
    if isinstance(v, dict):
        return {str(k): _canonical(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_canonical(x) for x in v]
    return str(v)


def job_spec(config: dict[str, Any], overrides: list[str] | tuple[str, ...] = ()) -> dict[str, Any]:
    """What makes two jobs the same job, from a resolved config (a plain dict)."""
    solver = dict(config["solver"])
    return _canonical({
        "key_version": KEY_VERSION,
        "problem": config["problem"],
        "solver": solver,
        "label": solver_label(str(solver.get("name")), list(overrides)),
        "budget": config["budget"],
        "repeats": config.get("repeats", 1),
        "seed": config.get("seed", 0),
        "threads": config.get("threads"),
        "warmup": config.get("warmup", True),
        "repeat_solve_under_s": config.get("repeat_solve_under_s"),
    })


def job_key(config: dict[str, Any], overrides: list[str] | tuple[str, ...] = ()) -> str:
    blob = json.dumps(job_spec(config, overrides), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def key_from_metadata(meta: dict[str, Any]) -> str | None:
    """The job key of a trace: recomputed from its stored config when possible."""
    config = meta.get("config")
    if isinstance(config, dict) and {"problem", "solver", "budget"} <= set(config):
        try:
            return job_key(config, meta.get("overrides") or [])
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


__all__ = ["complete_jobs", "find_complete", "job_key", "job_spec", "key_from_metadata", "solver_label"]
