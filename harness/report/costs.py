"""What a solver costs beyond one solve: the training bill of the neural solvers, and what extra cores buy.

Training bill: a learned solver's training time (recorded by the solver itself in the trace's metadata,
``solver_info``: ``training_wall_s``, ``training_steps``, ``training_hardware``) is paid back after
``training_wall_s / (t_best - t_neural)`` solves, where ``t`` is the setup + solve time to the target and
``t_best`` the fastest solver of any other family at that size (the comparison asked for by McGreivy &
Hakim, Nature Machine Intelligence 2024). "never" when the neural solver is not faster per solve.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from harness import results

from .metrics import LEARNED, tag

TRAINING_KEYS = ("training_wall_s", "training_steps", "training_hardware")


def solver_info(folder: str | Path) -> dict[str, dict]:
    """run_id -> the solver's own description, from the trace's schema metadata.

    Read from the ``solver_info`` entry of the harness metadata JSON, or from a schema-metadata key of that
    name; missing or unreadable -> no entry.
    """
    out = {}
    for f in results.trace_files(folder):
        try:
            raw = pq.read_schema(f).metadata or {}
            meta = json.loads(raw.get(results.METADATA_KEY, b"{}"))
            info = meta.get("solver_info")
            if info is None and b"solver_info" in raw:
                info = json.loads(raw[b"solver_info"])
        except Exception:  # noqa: BLE001  (an unreadable trace is reported by results.load already)
            continue
        if isinstance(info, dict):
            out[str(meta.get("run_id", f))] = info
    return out


def training_of(df: pd.DataFrame, infos: dict[str, dict]) -> pd.DataFrame:
    """One row per neural label: its recorded training time, steps and hardware (NaN / '' when not recorded)."""
    rows = []
    neural = df[df["family"] == LEARNED].drop_duplicates(["label", "run_id"])
    for label, g in neural.groupby("label", sort=True):
        info = next((infos[r] for r in g["run_id"].astype(str) if r in infos
                     and infos[r].get("training_wall_s") is not None), {})
        wall = pd.to_numeric(pd.Series([info.get("training_wall_s")]), errors="coerce").iloc[0]
        rows.append({"label": label, "training_s": float(wall), "steps": info.get("training_steps"),
                     "authors_steps": info.get("training_authors_steps"),
                     "hardware": str(info.get("training_hardware") or "")})
    return pd.DataFrame(rows, columns=["label", "training_s", "steps", "authors_steps", "hardware"])


def training_bill(cells: pd.DataFrame, training: pd.DataFrame, target: float) -> pd.DataFrame:
    """Per (problem, n, neural label): the solves after which its training is paid back.

    ``payback`` is a number of solves (float), ``inf`` for never (not faster per solve, or the
    target not reached), NaN when the training time was not recorded or nothing else reached the target.
    """
    col = f"total@{tag(target)}"
    rows = []
    ran = cells[cells["ran"]]
    for (problem, n), g in ran.groupby(["problem", "n"], sort=True):
        others = g[(g["family"] != LEARNED) & np.isfinite(g[col])]
        best = others.sort_values([col, "label"]).head(1)
        for r in g[g["family"] == LEARNED].itertuples():
            t = float(g.loc[r.Index, col])
            train = training.loc[training["label"] == r.label]
            train_s = float(train["training_s"].iloc[0]) if len(train) else np.nan
            t_best = float(best[col].iloc[0]) if len(best) else np.nan
            saving = t_best - t if np.isfinite(t) and np.isfinite(t_best) else np.nan
            if not np.isfinite(t):
                payback = np.inf
            elif np.isnan(train_s) or np.isnan(t_best):
                payback = np.nan
            else:
                payback = train_s / saving if saving > 0 else np.inf
            rows.append({"problem": problem, "n": n, "label": r.label, "training_s": train_s,
                         "hardware": train["hardware"].iloc[0] if len(train) else "",
                         "steps": train["steps"].iloc[0] if len(train) else None,
                         "authors_steps": train["authors_steps"].iloc[0] if len(train) else None,
                         "t_neural": t, "best": best["label"].iloc[0] if len(best) else "", "t_best": t_best,
                         "saving": saving, "payback": payback})
    return pd.DataFrame(rows, columns=["problem", "n", "label", "training_s", "hardware", "steps", "authors_steps",
                                       "t_neural", "best", "t_best", "saving", "payback"])


def steps_words(steps, authors_steps) -> str:
    """Training steps; for the authors' recipe also its share of theirs: '972 (1 % of the authors' ~95,000)'."""
    if steps is None or pd.isna(steps):
        return "not recorded"
    words = f"{int(steps):,}"
    if authors_steps is not None and not pd.isna(authors_steps) and authors_steps > 0:
        words += f" ({100 * steps / authors_steps:.2g} % of the authors' ~{int(authors_steps):,})"
    return words


def payback_words(row) -> str:
    if np.isnan(row.training_s):
        return "training cost not recorded"
    if np.isinf(row.payback):
        return "never (not reaching the target)" if not np.isfinite(row.t_neural) else "never (slower per solve)"
    if np.isnan(row.payback):
        return "- (no other solver reached the target)"
    return f"{row.payback:,.0f} solves" if row.payback >= 10 else f"{row.payback:.2g} solves"


# --------------------------------------------------------------------------- threads
def thread_speedups(jobs: pd.DataFrame, target: float) -> pd.DataFrame:
    """Jobs that differ only in their thread count: time to target with the fewest vs the most threads.

    Key: problem, n, solver, params, backend, device; rows only where that key ran with >= 2 thread counts.
    ``speedup`` = median setup + solve time to ``target`` with the fewest threads / with the most (> 1: the
    extra cores help).
    """
    col = f"total@{tag(target)}"
    key = ["problem", "n", "solver", "params", "backend", "device"]
    ran = jobs[jobs["ran"] & jobs["threads"].notna()]
    rows = []
    for k, g in ran.groupby(key, sort=True):
        counts = sorted(g["threads"].unique())
        if len(counts) < 2:
            continue
        lo, hi = g[g["threads"] == counts[0]], g[g["threads"] == counts[-1]]
        t_lo, t_hi = float(lo[col].median()), float(hi[col].median())
        speed = t_lo / t_hi if np.isfinite(t_lo) and np.isfinite(t_hi) and t_hi > 0 else np.nan
        rows.append({**dict(zip(key, k, strict=True)), "base": str(g["base_label"].iloc[0]),
                     "threads_lo": int(counts[0]), "threads_hi": int(counts[-1]), "t_lo": t_lo, "t_hi": t_hi,
                     "speedup": speed})
    return pd.DataFrame(rows, columns=[*key, "base", "threads_lo", "threads_hi", "t_lo", "t_hi", "speedup"])
