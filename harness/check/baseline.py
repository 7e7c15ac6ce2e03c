"""Reading and writing the committed baseline (parquet with its metadata, plus a readable baseline.json)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from omegaconf import OmegaConf

from harness import identity
from harness.check.compare import _curve, _jobs_of, _status, iterations_to
from harness.check.config import BASELINE_DIR, BASELINE_FILE, BASELINE_JSON, KEY, SWEEP, Tolerances, load_ci_config


def _baseline_paths(path: str | Path) -> tuple[Path, Path]:
    p = Path(path)
    if p.suffix == ".parquet" or p.is_file():
        return p, p.with_name(BASELINE_JSON)
    return p / BASELINE_FILE, p / BASELINE_JSON


def load_baseline(path: str | Path = BASELINE_DIR) -> tuple[pd.DataFrame, dict]:
    """(traces, metadata) of a baseline folder or parquet file; ``harness.results.ResultsError`` when it
    cannot be read. Each job's identity comes from the ``identities`` the baseline stores (``write_baseline``);
    a baseline blessed before them gets its columns' identity plus its sweep's budget."""
    from harness.results import read_metadata, read_trace

    file, _ = _baseline_paths(path)
    if not file.is_file():
        raise FileNotFoundError(f"no baseline at {file}: create one with python -m harness.check --update")
    df, meta = read_trace(file), read_metadata(file)
    budget = (meta.get("sweep_config") or {}).get("budget")
    if "identities" not in meta and isinstance(budget, dict):
        specs = {t: {**json.loads(t), **{f"budget.{k}": identity.canonical(v) for k, v in budget.items()}}
                 for t in df["spec"].unique()}
        df["identity"] = df["spec"].map({t: identity.key(spec) for t, spec in specs.items()})
        df["spec"] = df["spec"].map({t: json.dumps(spec, sort_keys=True) for t, spec in specs.items()})
    return df, meta


def baseline_error(df: pd.DataFrame, meta: dict, sweep: str, where: str | Path) -> str | None:
    """Why a loaded baseline cannot be compared with (foreign, another sweep's, empty), or None."""
    kind = meta.get("kind")
    if kind != "harness.check baseline":
        what = f"kind {kind!r}" if kind else "a trace without harness.check metadata"
        return (f"--baseline {where} is not a harness.check baseline ({what}): give the folder python -m "
                f"harness.check --update wrote (default {BASELINE_DIR})")
    if meta.get("sweep") != sweep:
        return (f"--baseline {where} is the baseline of sweep {meta.get('sweep')!r}, not {sweep!r}: give this "
                f"sweep's baseline, or bless one with --update")
    if df.empty or not _jobs_of(df):
        return f"--baseline {where} holds no job: bless one with python -m harness.check --update"
    return None


def identities(df: pd.DataFrame) -> dict[str, dict]:
    """run_id -> the job's identity, for a combined file that keeps no per-job config."""
    if "spec" not in df.columns:
        return {}
    firsts = df.drop_duplicates("run_id")
    return {str(r): json.loads(s) for r, s in zip(firsts["run_id"], firsts["spec"], strict=True) if s}


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
        "identities": identities(current),
    }
    df = current[list(COLUMNS)].sort_values(KEY + ["iteration"], na_position="first", kind="stable")
    write_trace(df.reset_index(drop=True), file, meta, overwrite=True)  # a deliberate re-bless
    readable = {**meta, "jobs": job_summary(df, tol)}
    js.write_text(json.dumps(readable, indent=2, default=str) + "\n")
    return file


