"""Reading and writing the committed baseline (parquet with its metadata, plus a readable baseline.json)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from omegaconf import OmegaConf

from harness.check.compare import _curve, _jobs_of, _status, iterations_to
from harness.check.config import BASELINE_DIR, BASELINE_FILE, BASELINE_JSON, KEY, SWEEP, Tolerances, load_ci_config


def _baseline_paths(path: str | Path) -> tuple[Path, Path]:
    p = Path(path)
    if p.suffix == ".parquet":
        return p, p.with_name(BASELINE_JSON)
    return p / BASELINE_FILE, p / BASELINE_JSON


def load_baseline(path: str | Path = BASELINE_DIR) -> tuple[pd.DataFrame, dict]:
    """(traces, metadata) of a baseline folder or parquet file."""
    from harness.results import read_metadata, read_trace

    file, _ = _baseline_paths(path)
    if not file.is_file():
        raise FileNotFoundError(f"no baseline at {file}: create one with python -m harness.check --update")
    return read_trace(file), read_metadata(file)


def job_summary(df: pd.DataFrame, tol: Tolerances) -> list[dict]:
    out = []
    for (p, n, s), g in _jobs_of(df).items():
        c = _curve(g)
        it = iterations_to(c, tol.iters_target, tol.floor) if not c.empty else None
        out.append({"problem": p, "n": n, "solver": s, "status": _status(g),
                    "last_iteration": int(c["iteration"].iloc[-1]) if not c.empty else None,
                    "final_msr": float(c["msr"].iloc[-1]) if not c.empty else None,
                    f"iters_to_{tol.iters_target:g}": None if it is None else round(it, 2)})
    return out


def write_baseline(current: pd.DataFrame, path: str | Path = BASELINE_DIR, *, sweep: str = SWEEP,
                   tol: Tolerances | None = None) -> Path:
    """Bless ``current`` as the baseline: parquet (metadata inside) plus a readable baseline.json."""
    from harness.environment import environment, now
    from harness.results import COLUMNS, write_trace

    sweep_cfg = load_ci_config(sweep)
    tol = tol or Tolerances.from_config(sweep_cfg.get("check"))
    file, js = _baseline_paths(path)
    env = environment()
    meta = {
        "kind": "harness.check baseline",
        "sweep": sweep,
        "date": now(),
        "commit": env["commit"],
        "versions": env["versions"],
        "cpu": env["cpu"],
        "platform": env["platform"],
        "sweep_config": OmegaConf.to_container(sweep_cfg, resolve=True),
        "skipped": current.attrs.get("skipped", {}),
        "checkpoints": current.attrs.get("checkpoints", {}),
        "wall_s": round(float(current.attrs.get("wall_s", float("nan"))), 2),
    }
    df = current[list(COLUMNS)].sort_values(KEY + ["iteration"], na_position="first", kind="stable")
    write_trace(df.reset_index(drop=True), file, meta)
    readable = {**meta, "jobs": job_summary(df, tol)}
    js.write_text(json.dumps(readable, indent=2, default=str) + "\n")
    return file


