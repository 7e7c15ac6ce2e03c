"""The curves as drawn: repeats pooled into one line per solver and size, thinned to the points the eye can see.

Drawing only: every table reads the full checkpoints (``metrics``), never these. A curve keeps its first and
last point and every point where it turns (Ramer-Douglas-Peucker in log10-log10 coordinates, with a tolerance
far below a pixel), and at most ``MAX_POINTS`` points.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from harness.status import BROKE

MAX_POINTS = 300        # per drawn curve
TOLERANCE = 0.01        # decades: a point this close to the line through its neighbours adds nothing visible


def _log(values: np.ndarray) -> np.ndarray:
    """log10 where positive; a non-positive value (iteration 0 on a linear-then-log axis) sits at -1."""
    v = np.asarray(values, dtype=float)
    return np.where(v > 0, np.log10(np.where(v > 0, v, 1.0)), -1.0)


def _rdp(u: np.ndarray, v: np.ndarray, tol: float) -> np.ndarray:
    """Indices kept by Ramer-Douglas-Peucker: the farthest point from each chord is kept while over ``tol``."""
    keep = np.zeros(len(u), dtype=bool)
    keep[[0, -1]] = True
    stack = [(0, len(u) - 1)]
    while stack:
        a, b = stack.pop()
        if b - a < 2:
            continue
        du, dv = u[b] - u[a], v[b] - v[a]
        inner = slice(a + 1, b)
        norm = np.hypot(du, dv)
        if norm == 0:
            dist = np.hypot(u[inner] - u[a], v[inner] - v[a])
        else:
            dist = np.abs(dv * (u[inner] - u[a]) - du * (v[inner] - v[a])) / norm
        i = int(np.argmax(dist))
        if dist[i] > tol:
            k = a + 1 + i
            keep[k] = True
            stack += [(a, k), (k, b)]
    return np.flatnonzero(keep)


def thin(x, y, max_points: int = MAX_POINTS, tolerance: float = TOLERANCE) -> np.ndarray:
    """Indices of the points of one curve worth drawing (log-log), at most ``max_points`` of them."""
    n = len(x)
    if n <= 2:
        return np.arange(n)
    u, v = _log(x), _log(y)
    finite = np.isfinite(u) & np.isfinite(v)
    if not finite.all():  # keep non-finite points (a diverged end) and thin the rest
        idx = np.flatnonzero(finite)
        kept = idx[thin(np.asarray(x)[idx], np.asarray(y)[idx], max_points, tolerance)] if idx.size else idx
        return np.union1d(kept, np.flatnonzero(~finite))
    kept = _rdp(u, v, tolerance)
    while len(kept) > max_points:
        tolerance *= 2
        kept = _rdp(u, v, tolerance)
    return kept


def pooled(curves: pd.DataFrame, x: str, y: str) -> pd.DataFrame:
    """One line per (problem, label, n): median x and y per iteration over repeats, ``lo``/``hi`` = min/max of y,
    thinned for drawing. ``failed``: every repeat diverged or failed (its end is marked)."""
    if curves.empty:
        return pd.DataFrame(columns=["problem", "label", "family", "n", "iteration", "x", "y", "lo", "hi", "failed"])
    keys = ["problem", "label", "n"]
    g = curves.groupby([*keys, "iteration"], sort=True)
    line = g.agg(family=("family", "first"), x=(x, "median"), y=(y, "median"), lo=(y, "min"), hi=(y, "max"))
    line = line.reset_index()
    broke = curves["status"].isin(BROKE).groupby([curves[k] for k in keys]).all().rename("failed")
    line = line.merge(broke.reset_index(), on=keys, how="left")    # still sorted by keys, then iteration
    codes = line.groupby(keys, sort=False).ngroup().to_numpy()
    starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]])
    ends = np.r_[starts[1:], len(line)]
    x, y = line["x"].to_numpy(dtype=float), line["y"].to_numpy(dtype=float)
    kept = np.concatenate([a + thin(x[a:b], y[a:b]) for a, b in zip(starts, ends, strict=True)])
    return line.iloc[kept].reset_index(drop=True)
