"""The verdict the report opens with: per problem, size and neural solver, how much slower or faster it reaches
the target than the fastest classical solvers, and one sentence that says it in words.

Pure pandas, from the cell table (``metrics.cell_table``: medians, min and max over repeats). Any number of
neural solvers: every label whose family is ``metrics.LEARNED``. Two comparisons per row: the fastest
*iterative* classical solver (every other family but the direct one), and the fastest *direct* solver, the
limit that a fast Poisson solver sets where it applies. ratio = neural time / classical time (> 1: the
neural solver is slower); its spread pairs the extreme repeats (``lo`` = fastest neural / slowest classical,
``hi`` = slowest neural / fastest classical).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .metrics import LEARNED, LIMIT, tag

COLUMNS = ["problem", "n", "label", "ran", "t", "t_min", "t_max", "it", "it_min", "it_max", "best_msr", "solve_s",
           "status", "rival", "rival_t", "ratio", "ratio_lo", "ratio_hi",
           "direct", "direct_t", "direct_ratio", "direct_lo", "direct_hi"]


def _fastest(g: pd.DataFrame, col: str) -> pd.Series | None:
    ok = g[g["ran"] & np.isfinite(g[col])]
    return None if ok.empty else ok.sort_values([col, "label"]).iloc[0]


def _ratio(row: pd.Series, best: pd.Series | None, col: str) -> tuple[float, float, float]:
    if best is None or not np.isfinite(row[col]):
        return np.nan, np.nan, np.nan
    return (row[col] / best[col], row[f"{col}_min"] / best[f"{col}_max"], row[f"{col}_max"] / best[f"{col}_min"])


def compare(cells: pd.DataFrame, target: float) -> pd.DataFrame:
    """One row per (problem, n, neural label); see ``COLUMNS``."""
    tg = tag(target)
    col, it = f"total@{tg}", f"it@{tg}"
    rows = []
    for (problem, n), g in cells.groupby(["problem", "n"], sort=True):
        neural = g[g["family"] == LEARNED]
        rival = _fastest(g[~g["family"].isin([LEARNED, LIMIT])], col)
        direct = _fastest(g[g["family"] == LIMIT], col)
        for _, r in neural.sort_values("label").iterrows():
            ratio, lo, hi = _ratio(r, rival, col)
            d_ratio, d_lo, d_hi = _ratio(r, direct, col)
            rows.append({"problem": problem, "n": n, "label": r["label"], "ran": bool(r["ran"]),
                         "t": r[col], "t_min": r[f"{col}_min"], "t_max": r[f"{col}_max"],
                         "it": r[it], "it_min": r[f"{it}_min"], "it_max": r[f"{it}_max"],
                         "best_msr": r["best_msr"], "solve_s": r["solve_s"], "status": r["status"],
                         "rival": "" if rival is None else rival["label"],
                         "rival_t": np.nan if rival is None else rival[col], "ratio": ratio, "ratio_lo": lo,
                         "ratio_hi": hi, "direct": "" if direct is None else direct["label"],
                         "direct_t": np.nan if direct is None else direct[col], "direct_ratio": d_ratio,
                         "direct_lo": d_lo, "direct_hi": d_hi})
    return pd.DataFrame(rows, columns=COLUMNS)


def factor(x: float) -> str:
    """A ratio as a factor: 17, 9.1, 0.52."""
    if not np.isfinite(x):
        return "inf" if x > 0 else "-"
    return f"{x:.0f}" if x >= 10 else f"{x:.2g}"


def sizes_text(ns) -> str:
    ns = [str(int(n)) for n in ns]
    return ns[0] if len(ns) == 1 else ", ".join(ns[:-1]) + " and " + ns[-1]


def _range(values: pd.Series) -> str:
    lo, hi = float(values.min()), float(values.max())
    return f"{factor(lo)}x" if factor(lo) == factor(hi) else f"{factor(lo)}-{factor(hi)}x"


def _clause(rows: pd.DataFrame, tg: str) -> str:
    """What one neural solver's rows say, in words."""
    label = rows["label"].iloc[0]
    reached = rows[rows["ran"] & np.isfinite(rows["t"])]
    compared = reached[np.isfinite(reached["ratio"])]
    parts = []
    slower, faster = compared[compared["ratio"] > 1], compared[compared["ratio"] <= 1]
    if len(slower):
        names = ", ".join(dict.fromkeys(slower["rival"]))
        parts.append(f"{_range(slower['ratio'])} slower than the fastest iterative classical solver ({names}) at "
                     f"n = {sizes_text(slower['n'])}")
    if len(faster):
        names = ", ".join(dict.fromkeys(faster["rival"]))
        parts.append(f"{_range(1 / faster['ratio'])} faster than the fastest iterative classical solver ({names}) "
                     f"at n = {sizes_text(faster['n'])}")
    alone = reached[~np.isfinite(reached["ratio"])]
    if len(alone):
        parts.append(f"reached {tg} where no iterative classical solver did, at n = {sizes_text(alone['n'])}")
    missed = rows[rows["ran"] & ~np.isfinite(rows["t"])]
    if len(missed):
        parts.append(f"did not reach {tg} at n = {sizes_text(missed['n'])}")
    never = rows[~rows["ran"]]
    if len(never):
        parts.append(f"did not run at n = {sizes_text(never['n'])} ({never['status'].iloc[0]})")
    return f"{label}: " + "; ".join(parts)


def sentence(rows: pd.DataFrame, problem: str, target: float) -> str:
    """The verdict of one problem in words, generated from its rows of ``compare``."""
    tg = tag(target)
    if rows.empty:
        return f"{problem}: no neural solver in these results, so there is no verdict to give."
    clauses = [_clause(g, tg) for _, g in rows.groupby("label", sort=True)]
    direct = rows[np.isfinite(rows["direct_ratio"])]
    tail = ""
    if len(direct) and (direct["direct_ratio"] > 1).all():
        tail = (f" The direct solver ({', '.join(dict.fromkeys(direct['direct']))}) is faster still at every size "
                f"where both reached {tg}: {_range(direct['direct_ratio'])} faster than the neural solvers.")
    return f"{problem}, setup + solve time to MSR <= {tg}: " + ". ".join(clauses) + "." + tail
