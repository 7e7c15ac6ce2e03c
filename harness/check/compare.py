"""Comparing a run with the baseline: curves, iterations to target, statuses, configuration, timing."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from omegaconf import DictConfig, OmegaConf

from harness import identity
from harness.check.config import KEY, Tolerances
from harness.curve import crossing, log_msr
from harness.status import ENDED, Status, normalise


# --- comparing ----------------------------------------------------------------------------------------
@dataclass
class Deviation:
    kind: str  # msr | iters_to_target | status | missing solver | missing job | last iteration | new job | config
    #            | experiment (same problem, size and solver, but another budget, seed, ...: not compared)
    #            | timing (a warning unless --timing-strict)
    solver: str
    problem: str = ""
    n: int | None = None
    iteration: int | None = None
    baseline: Any = None
    now: Any = None
    delta: float | None = None   # decades (msr), relative change (iterations), None (categorical)
    tolerance: float | None = None
    regression: bool = True      # False: reported, does not fail the check
    note: str = ""


def regressions(devs: Iterable[Deviation]) -> list[Deviation]:
    return [d for d in devs if d.regression]


def _jobs_of(df: pd.DataFrame) -> dict[tuple, pd.DataFrame]:
    df = df[df["repeat"] == 0]  # a loaded frame (harness.results.load / read_trace) has a repeat everywhere
    return {(p, int(n), s): g.sort_values("iteration", na_position="first")
            for (p, n, s), g in df.groupby(KEY, sort=True)}


def _status(g: pd.DataFrame) -> str:
    return normalise(str(g["status"].iloc[-1]))  # baselines written before issue 11 say "ok"


def _experiment(g: pd.DataFrame) -> dict[str, Any]:
    """A job's experiment (``harness.identity.experiment``), from the ``spec`` its trace was loaded with."""
    text = str(g["spec"].iloc[0]) if "spec" in g.columns and len(g) else ""
    try:
        return identity.experiment(json.loads(text)) if text else {}
    except (ValueError, AttributeError):
        return {}


def experiment_difference(b: pd.DataFrame, c: pd.DataFrame) -> list[str]:
    """'key: baseline vs now' for every setting both jobs record and that differs (not the same experiment)."""
    eb, ec = _experiment(b), _experiment(c)
    return [f"{k}: {identity.show(eb[k])} vs {identity.show(ec[k])}" for k in sorted(set(eb) & set(ec))
            if eb[k] != ec[k]]


def compared_jobs(baseline: pd.DataFrame | None, current: pd.DataFrame) -> int:
    """How many jobs of ``current`` are compared with the baseline: same (problem, n, solver), same experiment."""
    if baseline is None:
        return 0
    base, now = _jobs_of(baseline), _jobs_of(current)
    return sum(not experiment_difference(base[k], now[k]) for k in set(base) & set(now))


def _curve(g: pd.DataFrame) -> pd.DataFrame:
    c = g.dropna(subset=["iteration"])[["iteration", "msr"]].copy()
    c["iteration"] = c["iteration"].astype(int)
    return c.drop_duplicates("iteration", keep="last").reset_index(drop=True)


def iterations_to(curve: pd.DataFrame, target: float, floor: float) -> float | None:
    """First iteration where MSR <= target: the report's time-to-target rule, on the iteration axis."""
    msr = np.maximum(curve["msr"].to_numpy(dtype=float), floor)
    _, it = crossing(curve["iteration"], curve["iteration"], msr, max(target, floor))
    return float(it) if np.isfinite(it) else None


def compare(baseline: pd.DataFrame, current: pd.DataFrame, tol: Tolerances | None = None) -> list[Deviation]:
    """Every deviation of ``current`` from ``baseline`` (pure; see the module docstring for the rules)."""
    tol = tol or Tolerances()
    base, now = _jobs_of(baseline), _jobs_of(current)
    devs: list[Deviation] = []
    base_solvers, now_solvers = {k[2] for k in base}, {k[2] for k in now}
    for s in sorted(base_solvers - now_solvers):
        skipped = (current.attrs.get("skipped") or {}).get(s)
        devs.append(Deviation("missing solver", s, note=skipped or "no job of this solver ran"))
    for key in sorted(set(base) - set(now)):
        if key[2] in now_solvers:
            devs.append(Deviation("missing job", key[2], key[0], key[1], note="problem/size not run"))
    for key in sorted(set(now) - set(base)):
        devs.append(Deviation("new job", key[2], key[0], key[1], regression=tol.fail_on_new,
                              note="not in the baseline (python -m harness.check --update)"))
    for key in sorted(set(base) & set(now)):
        differs = experiment_difference(base[key], now[key])
        if differs:  # a foreign baseline or run: its curves would be compared with those of another experiment
            devs.append(Deviation("experiment", key[2], key[0], key[1], note="not the same experiment, not compared: "
                                  + "; ".join(differs)))
            continue
        devs += _compare_job(key, base[key], now[key], tol.for_solver(key[2]))
    return devs


def _compare_job(key, b: pd.DataFrame, c: pd.DataFrame, tol: Tolerances) -> list[Deviation]:
    problem, n, solver = key
    devs = []
    sb, sc = _status(b), _status(c)
    if sb != sc:
        if sb in ENDED and sc not in ENDED:
            devs.append(Deviation("status", solver, problem, n, baseline=sb, now=sc,
                                  note=f"new failure: {str(c['message'].iloc[-1])[:80]}"))
        elif sb not in ENDED and sc in ENDED:
            devs.append(Deviation("status", solver, problem, n, baseline=sb, now=sc, regression=False,
                                  note="baseline failure is gone: re-bless with --update"))
        else:
            devs.append(Deviation("status", solver, problem, n, baseline=sb, now=sc, regression=False,
                                  note="status changed"))
    cb, cc = _curve(b), _curve(c)
    if cb.empty or cc.empty:
        return devs
    # MSR at every common checkpoint, compared above the noise floor.
    m = cb.merge(cc, on="iteration", suffixes=("_b", "_c"))
    lo = max(tol.floor, tol.noise_floor)
    lb, lc = log_msr(m["msr_b"], lo), log_msr(m["msr_c"], lo)
    with np.errstate(invalid="ignore"):
        d = lc - lb
    d = np.where(np.isnan(d), 0.0, d)  # inf - inf: both non-finite
    for it, vb, vc, dd in zip(m["iteration"], m["msr_b"], m["msr_c"], d, strict=True):
        worse = dd > tol.decades
        better = dd < -tol.decades
        if worse or better:
            devs.append(Deviation("msr", solver, problem, n, int(it), float(vb), float(vc), float(dd),
                                  tol.decades, regression=bool(worse or tol.symmetric),
                                  note="worse" if worse else "better"))
    # Iterations to the target MSR. A trace that ended on its budget without reaching the target is
    # censored at its last iteration: "reached in the baseline at 468, not by 500 now" only proves a
    # slowdown of >= 6.8 %, which is within a 10 % tolerance (reported, not failed).
    eb, ec = int(cb["iteration"].iloc[-1]), int(cc["iteration"].iloc[-1])
    ib, ic = iterations_to(cb, tol.iters_target, tol.floor), iterations_to(cc, tol.iters_target, tol.floor)
    target = f"MSR {tol.iters_target:g}"
    if ib is not None and ic is None:
        least = (ec - ib) / max(ib, 1.0)  # the smallest slowdown consistent with "not reached by ec"
        censored = sc == Status.BUDGET and least <= tol.iters_rel
        devs.append(Deviation("iters_to_target", solver, problem, n, baseline=ib, now=None, delta=least,
                              tolerance=tol.iters_rel, regression=not censored,
                              note=f"{target} reached in the baseline, not now"
                              + (f" (within tolerance of the trace end {ec})" if censored else "")))
    elif ib is None and ic is not None:
        least = (ic - eb) / max(eb, 1.0)  # the smallest speed-up consistent with "not reached by eb"
        censored = sb == Status.BUDGET and -least <= tol.iters_rel
        devs.append(Deviation("iters_to_target", solver, problem, n, baseline=None, now=ic, delta=least,
                              tolerance=tol.iters_rel, regression=tol.symmetric and not censored,
                              note=f"{target} reached now, not in the baseline"
                              + (f" (within tolerance of the trace end {eb})" if censored else "")))
    elif ib is not None and ic is not None:
        rel = (ic - ib) / max(ib, 1.0)
        if abs(rel) > tol.iters_rel:
            devs.append(Deviation("iters_to_target", solver, problem, n, baseline=ib, now=ic, delta=rel,
                                  tolerance=tol.iters_rel, regression=bool(rel > 0 or tol.symmetric),
                                  note="slower" if rel > 0 else "faster"))
    # Where the trace ends (a solver that now stops early, or runs on).
    if eb != ec:
        rel = (ec - eb) / max(eb, 1)
        if abs(rel) > tol.iters_rel:
            devs.append(Deviation("last iteration", solver, problem, n, baseline=eb, now=ec, delta=rel,
                                  tolerance=tol.iters_rel, regression=bool(rel < 0 or tol.symmetric),
                                  note="stops earlier" if rel < 0 else "runs longer"))
    return devs


def config_deviations(meta: dict, sweep_cfg: DictConfig, current: pd.DataFrame) -> list[Deviation]:
    """The sweep config or a solver checkpoint changed since the baseline was blessed."""
    devs = []
    base_budget = (meta.get("sweep_config") or {}).get("budget")
    budget = OmegaConf.to_container(sweep_cfg.get("budget"), resolve=True) if "budget" in sweep_cfg else None
    if base_budget is not None and budget is not None and base_budget != budget:
        devs.append(Deviation("config", "*", baseline=json.dumps(base_budget), now=json.dumps(budget),
                              note="conf/sweep/ci.yaml budget changed: re-bless with --update"))
    for solver, h in (current.attrs.get("checkpoints") or {}).items():
        hb = (meta.get("checkpoints") or {}).get(solver)
        if hb and hb != h:
            devs.append(Deviation("checkpoint", solver, baseline=hb[:12], now=h[:12], regression=False,
                                  note="the solver's checkpoint file changed (its curves decide)"))
    return devs


# --- timing relative to cg -----------------------------------------------------------------------------
TIMING_FACTOR = 2.0
TIMING_REFERENCE = "cg"


def time_to_target(g: pd.DataFrame, target: float) -> float:
    """Setup + solve seconds to MSR <= target (interpolated as in the report); inf when not reached."""
    c = g.dropna(subset=["iteration"]).sort_values("iteration")
    if c.empty:
        return math.nan
    t, _ = crossing(c["time_s"], c["iteration"], c["msr"], target)
    setup = float(c["setup_s"].fillna(0.0).iloc[0])
    return float(t) + setup


def timing_ratios(df: pd.DataFrame, target: float, reference: str = TIMING_REFERENCE) -> pd.DataFrame:
    """Per (problem, n, solver): time to target and its ratio to the reference solver's in the same run."""
    rows = [{"problem": p, "n": n, "solver": s, "t": time_to_target(g, target)}
            for (p, n, s), g in _jobs_of(df).items()]
    out = pd.DataFrame(rows, columns=["problem", "n", "solver", "t"])
    ref = out[out["solver"] == reference].set_index(["problem", "n"])["t"]
    out["t_ref"] = [ref.get((p, n), math.nan) for p, n in zip(out["problem"], out["n"], strict=True)]
    ok = np.isfinite(out["t"]) & np.isfinite(out["t_ref"]) & (out["t_ref"] > 0)
    out["ratio"] = np.where(ok, out["t"] / out["t_ref"].where(ok, 1.0), math.nan)
    return out


def compare_timing(baseline: pd.DataFrame, current: pd.DataFrame, *, target: float = 1e-10,
                   factor: float = TIMING_FACTOR, strict: bool = False,
                   reference: str = TIMING_REFERENCE) -> list[Deviation]:
    """A 'timing' deviation for every solver whose time-to-target ratio to ``reference`` moved beyond ``factor``.

    ``delta`` = ratio now / ratio in the baseline (3.0: three times slower relative to cg). Jobs that did not
    reach the target in both runs, or whose run lacks the reference, are not compared.
    """
    b = timing_ratios(baseline, target, reference).set_index(["problem", "n", "solver"])
    c = timing_ratios(current, target, reference).set_index(["problem", "n", "solver"])
    devs = []
    for key in sorted(set(b.index) & set(c.index)):
        if key[2] == reference:
            continue
        rb, rc = b.loc[key, "ratio"], c.loc[key, "ratio"]
        if not (np.isfinite(rb) and np.isfinite(rc) and rb > 0):
            continue
        move = float(rc / rb)
        if move > factor or move < 1 / factor:
            devs.append(Deviation("timing", key[2], key[0], int(key[1]), baseline=round(float(rb), 3),
                                  now=round(float(rc), 3), delta=move, tolerance=factor, regression=strict,
                                  note=f"time to MSR {target:g} relative to {reference}: "
                                       f"{'slower' if move > 1 else 'faster'} by {max(move, 1 / move):.1f}x"))
    return devs


# --- the baseline -------------------------------------------------------------------------------------
def bitwise_differences(a: pd.DataFrame, b: pd.DataFrame) -> dict[tuple, str]:
    """Jobs whose status or (iteration, msr, mse, rel_res, matvecs) differ at all between two runs."""
    ja, jb = _jobs_of(a), _jobs_of(b)
    out = {}
    cols = ["iteration", "msr", "mse", "rel_res", "matvecs"]
    for key in sorted(set(ja) | set(jb)):
        if key not in ja or key not in jb:
            out[key] = "present in one run only"
            continue
        x, y = ja[key][cols].reset_index(drop=True), jb[key][cols].reset_index(drop=True)
        if _status(ja[key]) != _status(jb[key]):
            out[key] = f"status {_status(ja[key])} vs {_status(jb[key])}"
        elif not x.equals(y):
            if len(x) != len(y) or not x["iteration"].equals(y["iteration"]):
                out[key] = "different checkpoints"
            else:
                cols_diff = [c for c in cols if not x[c].equals(y[c])]
                rows = np.zeros(len(x), dtype=bool)
                for c in cols_diff:
                    rows |= ~((x[c] == y[c]) | (x[c].isna() & y[c].isna())).to_numpy()
                first = int(x["iteration"][int(np.argmax(rows))])
                la = np.log10(x["msr"].astype(float).clip(1e-300))
                lb = np.log10(y["msr"].astype(float).clip(1e-300))
                out[key] = (f"{', '.join(cols_diff)} first differ at iteration {first}; "
                            f"max |dlog10 msr| {(la - lb).abs().max():.2e}")
    return out


