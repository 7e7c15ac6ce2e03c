"""A job's identity: everything that makes it a different experiment, in one place.

``spec(config)`` flattens a job's resolved config to the settings that decide its
result: the problem (name, every generator parameter, and the grid it really
has: ``problem.h`` x ``problem.w``, whatever mix of ``n``/``h``/``w`` set it),
the solver (class, name and every parameter), every ``budget.*`` key, the
repeats and their rule, the seed, the thread setting and the warm-up. Not part
of it: what only changes how a job is run or shown (``progress``,
``verify_timing``, the guard settings, ``sweep_name``, ``resume``, the folders,
the solver label, the order of the overrides).

``key(spec)`` hashes it. The same identity is used by

* ``harness.resume``: a job is complete when a trace of its key is in the folder;
* ``harness.report``: a job is superseded only by a newer copy of the same key in
  the same sweep, and jobs of one label that differ in anything else get a label
  that says what (``differences``);
* ``harness.check``: a baseline job is compared only with a job of the same
  experiment (``experiment``: the identity without the solver's parameters, which
  are what a regression check is about).

Traces store their full config, so the identity is recomputed from it
(``from_trace``); a trace without one (hand-made, foreign, or a combined
baseline file) gets the identity its columns can give.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

VERSION = 3  # 3: one identity for resume, report and check (2: the measurement changed; never mix)
TOP_LEVEL = {"repeats": 1, "repeat_solve_under_s": None, "seed": 0, "threads": None, "warmup": True}
GRID = "grid"  # how ``differences`` names a (problem.h, problem.w) pair


def canonical(v: Any) -> Any:
    """Numbers as floats (5 and 5.0 are the same budget), containers as sorted JSON text."""
    if isinstance(v, bool) or v is None or isinstance(v, str):
        return v
    if isinstance(v, (int, float)):
        return float(v)
    if isinstance(v, (Mapping, list, tuple)):
        return json.dumps(v, sort_keys=True, default=str, separators=(",", ":"))
    return str(v)


def _grid(problem: Mapping[str, Any]) -> tuple[Any, Any]:
    """The grid a problem config builds (``problems.make_problem``: h and w default to n)."""
    n = problem.get("n")
    h = problem.get("h") if problem.get("h") is not None else n
    w = problem.get("w") if problem.get("w") is not None else n
    return h, w


def spec(config: Mapping[str, Any]) -> dict[str, Any]:
    """The flat identity of a job (``problem.*``, ``solver.*``, ``budget.*``, top-level keys) from its resolved
    config (a plain dict)."""
    problem = dict(config.get("problem") or {})
    h, w = _grid(problem)
    out: dict[str, Any] = {f"problem.{k}": v for k, v in problem.items() if k not in ("n", "h", "w")}
    out.update({"problem.h": h, "problem.w": w})
    out.update({f"solver.{k}": v for k, v in (config.get("solver") or {}).items()})
    out.update({f"budget.{k}": v for k, v in (config.get("budget") or {}).items()})
    out.update({k: config.get(k, default) for k, default in TOP_LEVEL.items()})
    return {k: canonical(v) for k, v in sorted(out.items())}


def key(identity: Mapping[str, Any]) -> str:
    """A short hash of an identity (``spec``)."""
    blob = json.dumps({"version": VERSION, **identity}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def config_key(config: Mapping[str, Any]) -> str:
    return key(spec(config))


def has_config(meta: Mapping[str, Any]) -> bool:
    config = meta.get("config")
    return isinstance(config, Mapping) and {"problem", "solver", "budget"} <= set(config)


def from_columns(row: Mapping[str, Any]) -> dict[str, Any]:
    """The identity a trace's columns can give (a trace stored without its config): the problem and its
    grid, the solver with its label and parameters, the seed and the threads."""
    out = {"problem.name": row.get("problem"), "problem.h": row.get("h"), "problem.w": row.get("w"),
           "solver.name": row.get("solver"), "solver.label": row.get("label"), "solver.params": row.get("params"),
           "seed": row.get("seed"), "threads": row.get("threads")}
    return {k: canonical(_plain(v)) for k, v in sorted(out.items())}


def _plain(v: Any) -> Any:
    """numpy / pandas scalars as Python values, missing values as None."""
    try:
        if v != v:  # NaN, pd.NA raises
            return None
    except (TypeError, ValueError):
        return None
    return v.item() if hasattr(v, "item") else v


def from_trace(meta: Mapping[str, Any], row: Mapping[str, Any]) -> dict[str, Any]:
    """The identity of the job whose trace has metadata ``meta`` and first row ``row``."""
    return spec(meta["config"]) if has_config(meta) else from_columns(row)


def experiment(identity: Mapping[str, Any]) -> dict[str, Any]:
    """What a regression check holds fixed: the identity without the solver's parameters (its name kept; a
    changed parameter is what the check is there to catch) and without the repeat rule (it compares one solve)."""
    return {k: v for k, v in identity.items()
            if (not k.startswith("solver.") or k == "solver.name") and k not in ("repeats", "repeat_solve_under_s")}


def differing(identities: Iterable[Mapping[str, Any]], ignore: Iterable[str] = ()) -> list[str]:
    """Keys whose value is not the same in all ``identities`` (a key one lacks counts as differing)."""
    identities = list(identities)
    ignore = set(ignore)
    keys = sorted({k for i in identities for k in i} - ignore)
    return [k for k in keys if len({json.dumps(i.get(k, "<absent>"), default=str) for i in identities}) > 1]


def show(value: Any) -> str:
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    if isinstance(value, float):
        return f"{value:g}"
    return "null" if value is None else str(value)


def differences(identity: Mapping[str, Any], keys: Iterable[str]) -> str:
    """``keys`` of ``identity`` as text for a label: 'seed=1, problem.variant=x2-y2, grid=16x24'."""
    keys = list(keys)
    parts = [f"{k}={show(identity.get(k))}" for k in keys if k not in ("problem.h", "problem.w")]
    if "problem.h" in keys or "problem.w" in keys:
        parts.append(f"{GRID}={show(identity.get('problem.h'))}x{show(identity.get('problem.w'))}")
    return ", ".join(parts)


__all__ = ["VERSION", "canonical", "config_key", "differences", "differing", "experiment", "from_columns", "from_trace",
           "has_config", "key", "show", "spec"]
