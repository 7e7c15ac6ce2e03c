"""The machine and software behind a set of results, from the traces' metadata."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

FIELDS = (("cpu", "CPU"), ("cpu_count", "CPU cores"), ("gpu", "GPU"), ("threads", "threads"),
          ("hostname", "host"), ("platform", "platform"), ("commit", "commit"), ("date", "date"))


def _empty(v: Any) -> bool:
    if isinstance(v, list | tuple):
        return all(_empty(x) for x in v)
    return v is None or v == "" or v == {}


def _unique(values: Iterable[Any]) -> list[str]:
    out = []
    for v in values:
        if _empty(v):
            continue
        s = v if isinstance(v, str) else json.dumps(v, sort_keys=True, default=str)
        if s not in out:
            out.append(s)
    return out


def summary(metadata: dict[str, dict[str, Any]], run_ids: Iterable[str] | None = None) -> list[tuple[str, str]]:
    """(field, value) pairs; a field that differs between jobs lists every value.

    ``run_ids`` restricts to the jobs shown (None: every job in the metadata).
    Dates are given as a range; package versions one line per package.
    """
    metas = list(metadata.values()) if run_ids is None else [metadata[r] for r in run_ids if r in metadata]
    rows: list[tuple[str, str]] = [("jobs with metadata", str(len(metas)))]
    for key, name in FIELDS:
        values = _unique(m.get(key) for m in metas)
        if key == "date" and len(values) > 1:
            values = [f"{min(values)} .. {max(values)}"]
        rows.append((name, "; ".join(values) if values else ("none recorded" if key == "gpu" else "unknown")))
    packages: dict[str, list[str]] = {}
    for m in metas:
        for pkg, ver in (m.get("versions") or {}).items():
            packages.setdefault(pkg, [])
            if str(ver) not in packages[pkg]:
                packages[pkg].append(str(ver))
    for pkg in sorted(packages):
        rows.append((f"version: {pkg}", ", ".join(packages[pkg])))
    checks = _unique(m.get("timing_check") for m in metas)
    if not checks:
        rows.append(("timing check", "not run (verify_timing=false)"))
    else:
        rows.append(("timing check", checks[0] if len(checks) == 1 else f"{len(checks)} distinct; first: {checks[0]}"))
    return rows


def machine(metadata: dict[str, dict[str, Any]], run_ids: Iterable[str] | None = None) -> str:
    """Short machine name for figure titles: the CPU model (and GPU if any)."""
    metas = list(metadata.values()) if run_ids is None else [metadata[r] for r in run_ids if r in metadata]
    cpus = _unique(m.get("cpu") for m in metas)
    gpus = [g for g in _unique(m.get("gpu") for m in metas) if g.lower() not in ("none", "null", "-")]
    name = " / ".join(cpus) if cpus else "unknown CPU"
    if gpus:
        name += " + " + " / ".join(gpus)
    return name
