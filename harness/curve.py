"""One convergence curve (a job's checkpoints), read the same way by the report and the check.

Time-to-target rule (``crossing``): the first checkpoint whose MSR is <= the target; between
that checkpoint and the previous one, log10(MSR) is taken as linear in solve time (and in
iteration), and the crossing point is interpolated. MSR is floored at ``FLOOR`` first (an
exact zero has no logarithm).
"""

from __future__ import annotations

import numpy as np

FLOOR = 1e-32  # MSR floor for logarithms (plots and interpolation)


def crossing(time_s, iteration, msr, target: float, interpolate: bool = True) -> tuple[float, float]:
    """(time, iteration) at which one trace first reaches ``msr <= target``.

    Arrays are one job's checkpoints in iteration order. Returns (inf, inf) when
    the target is never reached, (nan, nan) for an empty trace.
    """
    t = np.asarray(time_s, dtype=float)
    it = np.asarray(iteration, dtype=float)
    m = np.asarray(msr, dtype=float)
    if m.size == 0:
        return np.nan, np.nan
    m = np.where(np.isnan(m), np.nan, np.maximum(m, FLOOR))
    hit = np.flatnonzero(m <= target)
    if hit.size == 0:
        return np.inf, np.inf
    i = hit[0]
    if i == 0 or not interpolate or not (np.isfinite(m[i - 1]) and np.isfinite(t[i - 1])):
        return float(t[i]), float(it[i])
    lo, hi, goal = np.log10(m[i - 1]), np.log10(m[i]), np.log10(target)
    frac = (goal - lo) / (hi - lo) if hi != lo else 1.0
    return float(t[i - 1] + frac * (t[i] - t[i - 1])), float(it[i - 1] + frac * (it[i] - it[i - 1]))


def log_msr(msr, floor: float) -> np.ndarray:
    """log10 of MSR clipped at ``floor``; non-finite MSR (diverged) becomes +inf."""
    a = np.asarray(msr, dtype=float)
    with np.errstate(invalid="ignore"):
        out = np.log10(np.clip(np.nan_to_num(a, nan=np.inf), floor, None))
    return out
