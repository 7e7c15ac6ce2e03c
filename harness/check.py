"""Convergence-curve regression check: ``python -m harness.check [--update]``.

Runs the ``ci`` sweep (``conf/sweep/ci.yaml``) in-process through Hydra's
compose API and ``harness.job.run_job``, then compares it with the committed
baseline ``tests/baselines/ci/trace.parquet``:

- log10 MSR at every checkpoint iteration both traces have, within
  ``check.decades`` (per-solver overrides in ``check.per_solver``);
- iterations to reach MSR ``check.iters_target`` (1e-10), interpolated in log10
  MSR between checkpoints, within ``check.iters_rel`` (10 %); reached in the
  baseline but not now is a regression;
- every (problem, n, solver) of the baseline is present now ("missing solver",
  "missing job");
- no new failure status (error, diverged, timeout, unavailable where the
  baseline was ok, budget or target);
- the last iteration of a trace (a solver that now stops early or runs longer).

The noise rule: MSR is clipped at ``check.floor`` (1e-32) before log10 and is
compared as ``log10(max(msr, noise_floor))`` with ``noise_floor`` 1e-26. The
float64 floor of the MSR on these problems is 1e-33..1e-29 and where a solver
lands in that band depends on the last bits of its arithmetic, so two values
that are both below the noise floor never count as a deviation, and a value
below it is measured from the noise floor (1e-30 against 1e-24 is a 2-decade
deviation, not 6).

Determinism: every job runs in this process with one thread, with ``random``,
``numpy`` and ``torch`` seeded from ``cfg.seed`` before the job and
``torch.use_deterministic_algorithms(True)``. The seeding matters for
``pyamg_sa``: PyAMG estimates the spectral radius for its prolongation smoother
from the global ``np.random``, so without it the hierarchy, and the curve, depend
on whatever ran before (the differences stay below the noise floor here, but
they are not bit-identical). With the seeds every solver of the sweep, metamizer
included, is bit-for-bit reproducible run to run and process to process on one
machine (``--twice`` checks that in-process); two threads instead of one also
gave identical traces. Across machines the SIMD kernels of OpenBLAS and ATen
round differently; simulate another machine with e.g.
``OPENBLAS_CORETYPE=SkylakeX ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2
python -m harness.check``. The measured spread and the per-solver tolerance it
justifies (lbfgsb only) are documented in ``conf/sweep/ci.yaml``.

Usage::

    python -m harness.check                  # run, compare, table, reports/check/overlay.png; exit 1 on a regression
    python -m harness.check --update         # re-bless tests/baselines/ci/ (records commit, date, versions)
    python -m harness.check --skip metamizer # leave a solver out (e.g. bless without an uncommitted checkpoint)
    python -m harness.check --current DIR    # compare saved traces (a results folder or parquet) instead of running
    python -m harness.check --twice          # determinism self-check: run twice, list jobs not bit-identical
    python -m harness.check --timing         # also compare times to target relative to cg (warning only)
    python -m harness.check --timing-strict  # the same, and a timing move beyond the factor fails (exit 1)

Timing check (``--timing``): for every job, the setup + solve time to MSR ``check.iters_target`` (the
report's time-to-target rule) is divided by cg's on the same problem and size in the same run; that ratio
is compared with the baseline's, and a move by more than ``--timing-factor`` (default 2) either way is
flagged. Dividing by cg cancels most of the machine's speed, not its load: timings on a shared or busy
machine are noisy, so the flags are warnings unless ``--timing-strict`` is given; the iteration check above
stays the gate.

Exit status: 0 when nothing regressed, 1 on a regression, 2 on a usage error
(no baseline, unreadable files).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import random
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from omegaconf import DictConfig, OmegaConf

from harness.report.metrics import crossing

REPO = Path(__file__).resolve().parents[1]
CONF = REPO / "conf"
SWEEP = "ci"
BASELINE_DIR = REPO / "tests" / "baselines" / SWEEP
BASELINE_FILE = "trace.parquet"
BASELINE_JSON = "baseline.json"
DEFAULT_OUT = Path("reports") / "check"
KEY = ["problem", "n", "solver"]
LEGACY_STATUSES = {"ok": "stalled"}  # baselines written before "stalled" replaced "ok" (issue 11)
OK_STATUSES = ("budget", "target", "stalled", *LEGACY_STATUSES)
PER_SOLVER_KEYS = ("decades", "iters_rel", "noise_floor")

__all__ = ["Deviation", "Tolerances", "compare", "load_baseline", "load_ci_config", "main", "regressions",
           "run_ci_sweep", "write_baseline", "format_deviations"]


# --- configuration ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Tolerances:
    decades: float = 0.5
    iters_rel: float = 0.10
    iters_target: float = 1e-10
    floor: float = 1e-32
    noise_floor: float = 1e-26
    symmetric: bool = True
    fail_on_new: bool = False
    per_solver: dict[str, dict[str, float]] = field(default_factory=dict)

    def for_solver(self, solver: str) -> Tolerances:
        extra = self.per_solver.get(solver) or {}
        bad = set(extra) - set(PER_SOLVER_KEYS)
        if bad:
            raise ValueError(f"check.per_solver.{solver}: unknown keys {sorted(bad)} "
                             f"(valid: {', '.join(PER_SOLVER_KEYS)})")
        return replace(self, **extra) if extra else self

    @classmethod
    def from_config(cls, check: dict | DictConfig | None) -> Tolerances:
        d = OmegaConf.to_container(check, resolve=True) if isinstance(check, DictConfig) else dict(check or {})
        names = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in d.items() if k in names and v is not None})


def load_ci_config(sweep: str = SWEEP) -> DictConfig:
    """The sweep file itself (sweeper params and the ``check`` section)."""
    path = CONF / "sweep" / f"{sweep}.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"no sweep config {path}")
    return OmegaConf.load(path)


def _split(v: Any) -> list[str]:
    return [s.strip() for s in str(v).split(",") if s.strip()]


@dataclass(frozen=True)
class Job:
    problem: str
    n: int
    solver: str


def ci_jobs(sweep_cfg: DictConfig) -> list[Job]:
    params = sweep_cfg.hydra.sweeper.params
    return [Job(p, int(n), s) for p in _split(params.problem) for n in _split(params["problem.n"])
            for s in _split(params.solver)]


# --- running ------------------------------------------------------------------------------------------
def _seed_everything(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _optional_reason(solver: str, cfg: DictConfig) -> str | None:
    """None if an optional solver can run here, else why not."""
    if not (CONF / "solver" / f"{solver}.yaml").is_file():
        return f"conf/solver/{solver}.yaml does not exist"
    from hydra.utils import instantiate

    try:
        return instantiate(cfg.solver, _convert_="all").available()
    except Exception as exc:
        return f"cannot build the solver: {type(exc).__name__}: {exc}"


def checkpoint_hash(path: str | Path) -> str | None:
    p = Path(path)
    if not p.is_absolute():
        p = REPO / p
    if not p.is_file():
        return None
    return hashlib.sha256(p.read_bytes()).hexdigest()


def run_ci_sweep(out_dir: str | Path | None = None, *, sweep: str = SWEEP, jobs: Iterable[Job] | None = None,
                 overrides: dict[str, Sequence[str]] | None = None, skip: Iterable[str] = (),
                 verbose: bool = False) -> pd.DataFrame:
    """Run the ci sweep (or ``jobs`` of it) in this process; one DataFrame of every trace.

    ``overrides`` maps a solver name to extra Hydra overrides for its jobs
    (e.g. ``{"adam": ["solver.lr=1e-4"]}``); ``skip`` leaves solvers out. ``df.attrs`` carries ``skipped``
    (optional solver -> reason), ``checkpoints`` (solver -> sha256 of a
    ``solver.checkpoint`` file) and ``wall_s``.
    """
    import torch
    from hydra import compose, initialize_config_dir
    from threadpoolctl import ThreadpoolController

    from harness.job import run_job
    from harness.results import load

    sweep_cfg = load_ci_config(sweep)
    optional = set(sweep_cfg.get("check", {}).get("optional_solvers", []) or [])
    jobs = list(jobs) if jobs is not None else ci_jobs(sweep_cfg)
    overrides = overrides or {}
    tmp = None
    if out_dir is None:
        tmp = tempfile.TemporaryDirectory(prefix="harness-check-")
        out_dir = tmp.name
    out_dir = Path(out_dir)
    skipped: dict[str, str] = {s: "left out with --skip" for s in skip}
    hashes: dict[str, str] = {}
    frames = []
    t_start = time.perf_counter()
    det_before = torch.are_deterministic_algorithms_enabled()
    threads_before = torch.get_num_threads()
    torch.use_deterministic_algorithms(True)
    try:
        with ThreadpoolController().limit(limits=1), \
                initialize_config_dir(version_base="1.3", config_dir=str(CONF), job_name="check"):
            for i, job in enumerate(jobs):
                extra = list(overrides.get(job.solver, ()))
                ov = [f"+sweep={sweep}", f"problem={job.problem}", f"problem.n={job.n}",
                      f"solver={job.solver}", *extra]
                if job.solver in skipped:
                    continue
                if job.solver in optional and not (CONF / "solver" / f"{job.solver}.yaml").is_file():
                    skipped[job.solver] = f"conf/solver/{job.solver}.yaml does not exist"
                    continue
                cfg = compose("config", overrides=ov)
                if job.solver in optional:
                    reason = _optional_reason(job.solver, cfg)
                    if reason:
                        skipped[job.solver] = reason
                        continue
                ck = cfg.solver.get("checkpoint")
                if ck and job.solver not in hashes:
                    h = checkpoint_hash(ck)
                    if h:
                        hashes[job.solver] = h
                _seed_everything(int(cfg.seed))
                t0 = time.perf_counter()
                folder = out_dir / f"{job.problem}_n{job.n}" / job.solver
                run_job(cfg, folder, [f"solver={job.solver}", *extra])
                df = load(folder).drop(columns=["path"])
                frames.append(df)
                if verbose:
                    last = df.iloc[-1]
                    print(f"[{i + 1:>2}/{len(jobs)}] {job.solver:>10s} {job.problem:<21s} n={job.n:<4d}"
                          f" {last.status:<8s} it={_fmt_int(last.iteration):>5s} msr={_fmt_e(last.msr)}"
                          f"  {time.perf_counter() - t0:5.2f}s", flush=True)
    finally:
        torch.use_deterministic_algorithms(det_before)
        torch.set_num_threads(threads_before)
        if tmp is not None:
            tmp.cleanup()
    if not frames:
        raise RuntimeError("the ci sweep ran no job")
    out = pd.concat(frames, ignore_index=True)
    out = out.sort_values(KEY + ["iteration"], na_position="first", kind="stable").reset_index(drop=True)
    out.attrs.update(skipped=skipped, checkpoints=hashes, wall_s=time.perf_counter() - t_start)
    return out


# --- comparing ----------------------------------------------------------------------------------------
@dataclass
class Deviation:
    kind: str  # msr | iters_to_target | status | missing solver | missing job | last iteration | new job | config
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
    df = df[df["repeat"].fillna(0) == 0] if "repeat" in df.columns else df
    return {(p, int(n), s): g.sort_values("iteration", na_position="first")
            for (p, n, s), g in df.groupby(KEY, sort=True)}


def _status(g: pd.DataFrame) -> str:
    status = str(g["status"].iloc[-1])
    return LEGACY_STATUSES.get(status, status)


def _curve(g: pd.DataFrame) -> pd.DataFrame:
    c = g.dropna(subset=["iteration"])[["iteration", "msr"]].copy()
    c["iteration"] = c["iteration"].astype(int)
    return c.drop_duplicates("iteration", keep="last").reset_index(drop=True)


def log_msr(msr, floor: float) -> np.ndarray:
    """log10 of MSR clipped at ``floor``; non-finite MSR (diverged) becomes +inf."""
    a = np.asarray(msr, dtype=float)
    with np.errstate(invalid="ignore"):
        out = np.log10(np.clip(np.nan_to_num(a, nan=np.inf), floor, None))
    return out


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
        devs += _compare_job(key, base[key], now[key], tol.for_solver(key[2]))
    return devs


def _compare_job(key, b: pd.DataFrame, c: pd.DataFrame, tol: Tolerances) -> list[Deviation]:
    problem, n, solver = key
    devs = []
    sb, sc = _status(b), _status(c)
    if sb != sc:
        if sb in OK_STATUSES and sc not in OK_STATUSES:
            devs.append(Deviation("status", solver, problem, n, baseline=sb, now=sc,
                                  note=f"new failure: {str(c['message'].iloc[-1])[:80]}"))
        elif sb not in OK_STATUSES and sc in OK_STATUSES:
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
        censored = sc == "budget" and least <= tol.iters_rel
        devs.append(Deviation("iters_to_target", solver, problem, n, baseline=ib, now=None, delta=least,
                              tolerance=tol.iters_rel, regression=not censored,
                              note=f"{target} reached in the baseline, not now"
                              + (f" (within tolerance of the trace end {ec})" if censored else "")))
    elif ib is None and ic is not None:
        least = (ic - eb) / max(eb, 1.0)  # the smallest speed-up consistent with "not reached by eb"
        censored = sb == "budget" and -least <= tol.iters_rel
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
    setup = float(pd.to_numeric(c["setup_s"], errors="coerce").fillna(0.0).iloc[0])
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
def _baseline_paths(path: str | Path) -> tuple[Path, Path]:
    p = Path(path)
    if p.suffix == ".parquet":
        return p, p.with_name(BASELINE_JSON)
    return p / BASELINE_FILE, p / BASELINE_JSON


def load_baseline(path: str | Path = BASELINE_DIR) -> tuple[pd.DataFrame, dict]:
    """(traces, metadata) of a baseline folder or parquet file."""
    import pyarrow.parquet as pq

    from harness.results import read_metadata

    file, _ = _baseline_paths(path)
    if not file.is_file():
        raise FileNotFoundError(f"no baseline at {file}: create one with python -m harness.check --update")
    df = pq.read_table(file).to_pandas()
    return df, read_metadata(file)


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


# --- reporting ----------------------------------------------------------------------------------------
def _fmt_e(v) -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{float(v):.2e}"


def _fmt_int(v) -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else str(int(v))


def _fmt_value(kind: str, v) -> str:
    if v is None:
        return "-"
    if kind == "msr":
        return _fmt_e(v)
    if kind == "timing":
        return f"{v:.3g} x cg"
    if kind in ("iters_to_target", "last iteration") and isinstance(v, (int, float)):
        return f"{v:.1f}" if isinstance(v, float) and not float(v).is_integer() else str(int(v))
    return str(v)


def _fmt_delta(d: Deviation) -> str:
    if d.delta is None:
        return "-"
    if d.kind == "timing":
        return f"x{d.delta:.2f}"
    if d.kind == "msr":
        return f"{d.delta:+.2f} dec"
    return f"{100 * d.delta:+.1f}%"


def _fmt_tol(d: Deviation) -> str:
    if d.tolerance is None:
        return "-"
    if d.kind == "timing":
        return f"x{d.tolerance:g}"
    return f"{d.tolerance:g} dec" if d.kind == "msr" else f"{100 * d.tolerance:g}%"


def print_deviations(devs: list[Deviation], *, max_rows: int = 200, console=None, title: str = "") -> None:
    from rich.console import Console
    from rich.table import Table

    console = console or Console(width=None if Console().is_terminal else 160)
    if not devs:
        console.print(f"[green]no deviation from the baseline[/green] {title}")
        return
    table = Table(title=f"deviations from the baseline {title}".strip(), show_lines=False)
    for col in ("", "kind", "solver", "problem", "n", "iteration", "baseline", "now", "delta", "tol", "note"):
        table.add_column(col, justify="right" if col in ("n", "iteration", "baseline", "now", "delta", "tol")
                         else "left", no_wrap=col != "note")
    order = sorted(devs, key=lambda d: (not d.regression, d.solver, d.problem, d.n or 0, d.kind,
                                        d.iteration if d.iteration is not None else -1))
    for d in order[:max_rows]:
        flag = "[red]FAIL[/red]" if d.regression else "[yellow]warn[/yellow]" if d.kind == "timing" else \
            "[yellow]info[/yellow]"
        table.add_row(flag, d.kind, d.solver,
                      d.problem or "-", _fmt_int(d.n), _fmt_int(d.iteration), _fmt_value(d.kind, d.baseline),
                      _fmt_value(d.kind, d.now), _fmt_delta(d), _fmt_tol(d), d.note,
                      style=None if d.regression else "dim")
    console.print(table)
    if len(order) > max_rows:
        console.print(f"... {len(order) - max_rows} more rows (all of them in deviations.csv)")


def format_deviations(devs: list[Deviation], max_rows: int = 60) -> str:
    """The deviation table as plain text (for assertion messages and logs)."""
    from rich.console import Console

    console = Console(record=True, width=170, file=open(os.devnull, "w"), color_system=None)  # noqa: SIM115
    print_deviations(devs, max_rows=max_rows, console=console)
    return console.export_text()


def plot_overlay(baseline: pd.DataFrame, current: pd.DataFrame, devs: list[Deviation], path: str | Path,
                 tol: Tolerances | None = None) -> Path:
    """One panel per (problem, n): baseline dashed, now solid, deviating checkpoints circled red."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tol = tol or Tolerances()
    base, now = _jobs_of(baseline), _jobs_of(current)
    panels = sorted({(k[0], k[1]) for k in list(base) + list(now)})
    solvers = sorted({k[2] for k in list(base) + list(now)})
    cmap = plt.get_cmap("tab10")
    colours = {s: cmap(i % 10) for i, s in enumerate(solvers)}
    ncol = min(2, len(panels)) or 1
    nrow = math.ceil(len(panels) / ncol) or 1
    fig, axes = plt.subplots(nrow, ncol, figsize=(6.5 * ncol, 4.2 * nrow), squeeze=False)
    failing = {(d.problem, d.n, d.solver) for d in devs if d.regression}
    for ax, (problem, n) in zip(axes.flat, panels, strict=False):
        for s in solvers:
            for src, style in ((base, "--"), (now, "-")):
                g = src.get((problem, n, s))
                if g is None:
                    continue
                c = _curve(g)
                if c.empty:
                    continue
                lw = 2.2 if (problem, n, s) in failing else 1.3
                ax.plot(c["iteration"], np.power(10.0, log_msr(c["msr"], tol.floor)), style, color=colours[s],
                        lw=lw, alpha=0.55 if style == "--" else 0.95,
                        label=s if src is now or (problem, n, s) not in now else None)
        pts = [d for d in devs if d.kind == "msr" and d.problem == problem and d.n == n and d.regression]
        if pts:
            ax.scatter([d.iteration for d in pts], [max(d.now, tol.floor) for d in pts], s=40, facecolors="none",
                       edgecolors="red", linewidths=1.2, zorder=5, label="deviation")
        ax.axhspan(tol.floor, tol.noise_floor, color="0.85", zorder=0)
        ax.axhline(tol.iters_target, color="0.5", lw=0.8, ls=":")
        ax.set_yscale("log")
        ax.set_ylim(tol.floor / 3, None)
        bad = any(k[0] == problem and k[1] == n for k in failing)
        ax.set_title(f"{problem} n={n}" + ("  REGRESSION" if bad else ""), color="red" if bad else "black")
        ax.set_xlabel("iteration")
        ax.set_ylabel("MSR")
        ax.legend(fontsize=7, ncol=2)
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    fig.suptitle("harness.check: baseline (dashed) vs now (solid); grey band: below the noise floor")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


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


# --- command line -------------------------------------------------------------------------------------
def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m harness.check", description=__doc__.split("\n\n")[0])
    ap.add_argument("--update", action="store_true", help="re-bless the baseline with this run (exit 0)")
    ap.add_argument("--baseline", default=str(BASELINE_DIR), help="baseline folder or parquet (default %(default)s)")
    ap.add_argument("--out", default=str(DEFAULT_OUT), help="report folder: overlay.png, deviations.csv, "
                    "current/trace.parquet (default %(default)s)")
    ap.add_argument("--current", help="compare this saved trace (parquet or results folder) instead of running")
    ap.add_argument("--sweep", default=SWEEP, help=argparse.SUPPRESS)
    ap.add_argument("--twice", action="store_true", help="determinism self-check: run the sweep twice "
                    "in-process and list every job that is not bit-for-bit identical")
    ap.add_argument("--skip", action="append", default=[], metavar="SOLVER",
                    help="leave a solver of the sweep out (repeatable; comma lists work)")
    ap.add_argument("--max-rows", type=int, default=200, help="rows of the deviation table to print")
    ap.add_argument("--no-plot", action="store_true")
    ap.add_argument("--timing", action="store_true", help="also compare each solver's time to the target relative "
                    "to cg in the same run with the baseline's ratio (warning only: timing is noisy)")
    ap.add_argument("--timing-strict", action="store_true", help="like --timing, and a flagged move fails (exit 1)")
    ap.add_argument("--timing-factor", type=float, default=TIMING_FACTOR,
                    help="flag a ratio that moved by more than this factor either way (default %(default)s)")
    args = ap.parse_args(argv)
    if not args.timing_factor > 1:
        print("harness.check: error: --timing-factor must be > 1, e.g. 2", file=sys.stderr)
        return 2

    from rich.console import Console

    console = Console(width=None if Console().is_terminal else 160)
    sweep_cfg = load_ci_config(args.sweep)
    tol = Tolerances.from_config(sweep_cfg.get("check"))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    t0 = time.perf_counter()
    if args.current:
        current = _read_any(args.current)
    else:
        console.print(f"running the {args.sweep} sweep in-process ...")
        skip = [x for arg in args.skip for x in _split(arg)]
        current = run_ci_sweep(sweep=args.sweep, skip=skip, verbose=True)
        for s, why in current.attrs.get("skipped", {}).items():
            console.print(f"[yellow]skipped solver {s}[/yellow]: {why}")
    if args.twice:
        again = run_ci_sweep(sweep=args.sweep, skip=[x for arg in args.skip for x in _split(arg)])
        diffs = bitwise_differences(current, again)
        for key, what in diffs.items():
            console.print(f"[yellow]not bit-reproducible[/yellow] {key[2]} {key[0]} n={key[1]}: {what}")
        console.print(f"bit-for-bit identical: {len(_jobs_of(current)) - len(diffs)} of {len(_jobs_of(current))} jobs")
    from harness.results import COLUMNS, write_trace

    write_trace(current[list(COLUMNS)], out / "current" / BASELINE_FILE, {"kind": "harness.check current"})

    try:
        baseline, meta = load_baseline(args.baseline)
    except FileNotFoundError as exc:
        if not args.update:
            console.print(f"[red]error[/red]: {exc}")
            return 2
        baseline, meta = None, {}

    devs: list[Deviation] = []
    if baseline is not None:
        devs = config_deviations(meta, sweep_cfg, current) + compare(baseline, current, tol)
        if args.timing or args.timing_strict:
            timing = compare_timing(baseline, current, target=tol.iters_target, factor=args.timing_factor,
                                    strict=args.timing_strict)
            devs += timing
            word = "fail" if args.timing_strict else "warning only"
            console.print(f"timing vs {TIMING_REFERENCE} (x{args.timing_factor:g} either way, {word}): "
                          + (f"[yellow]{len(timing)} solver/size(s) moved[/yellow]" if timing else "no move")
                          + "; timings on a shared machine are noisy")
        pd.DataFrame([asdict(d) for d in devs], columns=list(Deviation.__dataclass_fields__)).to_csv(
            out / "deviations.csv", index=False)
        title = f"(baseline {str(meta.get('commit', '?'))[:12]} of {meta.get('date', '?')})"
        print_deviations(devs, max_rows=args.max_rows, console=console, title=title)
        if not args.no_plot:
            png = plot_overlay(baseline, current, devs, out / "overlay.png", tol)
            console.print(f"overlay figure: {png}")
    wall = time.perf_counter() - t0

    if args.update:
        failed = [k for k, g in _jobs_of(current).items() if _status(g) not in OK_STATUSES]
        for problem, n, solver in failed:
            console.print(f"[yellow]warning[/yellow]: blessing a failed job: {solver} {problem} n={n}")
        path = write_baseline(current, args.baseline, sweep=args.sweep, tol=tol)
        console.print(f"[green]baseline re-blessed[/green]: {path} ({len(_jobs_of(current))} jobs, "
                      f"{len(regressions(devs))} regressions against the old one); commit it with "
                      f"git add {Path(path).parent}")
        return 0
    bad = regressions(devs)
    new = [d for d in devs if d.kind == "new job"]
    if new and not bad:
        console.print(f"[yellow]{len(new)} job(s) not covered by the baseline[/yellow]: "
                      "python -m harness.check --update to include them")
    if bad:
        console.print(f"[red]REGRESSION[/red]: {len(bad)} deviation(s) beyond tolerance ({wall:.1f}s)")
        return 1
    compared = len(_jobs_of(current)) - len(new)
    console.print(f"[green]OK[/green]: {compared} jobs match the baseline ({wall:.1f}s)")
    return 0


def _read_any(path: str | Path) -> pd.DataFrame:
    p = Path(path)
    if p.is_file():
        import pyarrow.parquet as pq

        return pq.read_table(p).to_pandas()
    from harness.results import load

    return load(p)


if __name__ == "__main__":
    sys.exit(main())
