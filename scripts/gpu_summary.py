"""The GPU check's summary: time to MSR 1e-10 and 1e-20, per-iteration cost, and the paper's GPU claims.

    python scripts/gpu_summary.py SWEEP_DIR [--out summary.md]

Times and iterations to a target are the report's (``harness.curve.crossing``: interpolated between
the checkpoints around the first one at or below the target; solve clock, setup reported beside it);
per-iteration ms = solve time / iterations at the job's last checkpoint.
Repeat 0 only. The claims are those of Wandel et al., "Metamizer" (ICLR 2025), measured there on
an RTX 4090; the verdict rule for each is stated next to it.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import pandas as pd

from harness.curve import crossing
from harness.results import load, load_metadata

TARGETS = (1e-10, 1e-20)


def first_time(trace: pd.DataFrame, target: float) -> tuple[float, float]:
    """(solve time, iteration) at which the trace reaches ``target``, as the report reads it; nan if never.

    As in the report, a direct solver's one step is not interpolated."""
    direct = (trace.family == "direct").any()
    t, it = crossing(trace.time_s, trace.iteration, trace.msr, target, interpolate=not direct)
    return (t, it) if math.isfinite(t) else (math.nan, math.nan)


def table(df: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for (n, solver), t in df[df.repeat.fillna(0) == 0].groupby(["n", "solver"]):
        t = t.sort_values("iteration")
        last = t.iloc[-1]
        row = {"n": int(n), "solver": solver, "device": last.device, "status": last.status,
               "setup_s": last.setup_s, "final_msr": last.msr}
        for target in TARGETS:
            row[f"t_{target:.0e}"], row[f"it_{target:.0e}"] = first_time(t, target)
        its = last.iteration
        row["ms_per_iter"] = 1e3 * last.time_s / its if its and its > 0 and last.strategy == "callback" else math.nan
        row["iterations"] = its
        rows.append(row)
    return pd.DataFrame(rows)


def fmt(x: float, unit: str = "") -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    if unit == "it":
        return f"{x:.0f}"
    return f"{x:.3g}{unit}"


def markdown(tab: pd.DataFrame) -> list[str]:
    lines = ["| n | solver | status | t(1e-10) s | it(1e-10) | t(1e-20) s | it(1e-20) | ms/iter | setup s "
             "| final MSR |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for _, r in tab.sort_values(["n", "solver"]).iterrows():
        lines.append(f"| {r.n} | {r.solver} | {r.status} | {fmt(r['t_1e-10'])} | {fmt(r['it_1e-10'], 'it')} | "
                     f"{fmt(r['t_1e-20'])} | {fmt(r['it_1e-20'], 'it')} | {fmt(r.ms_per_iter)} | {fmt(r.setup_s)} | "
                     f"{fmt(r.final_msr)} |")
    return lines


def _time(tab: pd.DataFrame, n: int, solver: str, target: float) -> float:
    hit = tab[(tab.n == n) & (tab.solver == solver)]
    return float(hit[f"t_{target:.0e}"].iloc[0]) if not hit.empty else math.nan


def claims(tab: pd.DataFrame) -> list[str]:
    neural = sorted(s for s in tab.solver.unique() if s.startswith("metamizer") and s.endswith("_cuda"))
    out = ["## The paper's GPU claims, as measured here", ""]
    if not neural:
        return [*out, "No Metamizer job ran on CUDA: no claim can be tested."]
    for target in TARGETS:
        out.append(f"Time to MSR {target:.0e} (solve clock; ratio = Metamizer / classical, < 1 means Metamizer "
                   "is faster):")
        out.append("")
        for meta in neural:
            cg100, m100 = _time(tab, 100, "cupy_cg", target), _time(tab, 100, meta, target)
            r = m100 / cg100
            verdict = ("not testable (one of them did not reach the target or did not run)" if math.isnan(r) else
                       "confirmed" if 0.5 <= r <= 2 else
                       f"refuted: Metamizer is {r:.2g}x the time of CuPy CG" if r > 2 else
                       f"refuted the other way: Metamizer is {1 / r:.2g}x faster")
            out.append(f"- *{meta} about as fast as CuPy CG at 100x100* (rule: ratio within 0.5-2): "
                       f"{fmt(m100)} s vs {fmt(cg100)} s, ratio {fmt(r)} -> **{verdict}**")
            parts, ratios = [], []
            for other in ("cupy_cg", "cupy_minres"):
                t_o, t_m = _time(tab, 400, other, target), _time(tab, 400, meta, target)
                ratios.append(t_m / t_o)
                parts.append(f"vs {other} {fmt(t_m)} s / {fmt(t_o)} s = {fmt(t_m / t_o)}")
            verdict = ("not testable (a job did not reach the target or did not run)"
                       if any(math.isnan(x) for x in ratios) else
                       "confirmed" if all(x < 1 for x in ratios) else "refuted")
            out.append(f"- *{meta} faster than CuPy CG and MINRES at 400x400* (rule: ratio < 1 against both; the "
                       f"paper used a model trained at 400x400, ours was not): {'; '.join(parts)} -> **{verdict}**")
        out.append("")
    amgx = sorted(s for s in tab.solver.unique() if s.startswith("amgx_"))
    if not amgx or tab[tab.solver.isin(amgx)].status.eq("unavailable").all():
        out.append("- *AMGX up to 10x faster than Metamizer*: **not tested** (AMGX/pyamgx is not installed on this "
                   "machine; it must be built by hand, docs/GPU.md).")
    return out


def environment_lines(folder: Path) -> list[str]:
    meta = next(iter(load_metadata(folder).values()), {})
    v = meta.get("versions", {})
    keep = {k: v[k] for k in ("python", "torch", "cupy-cuda13x", "cupy-cuda12x", "numpy", "scipy") if k in v}
    return [f"- GPU: {meta.get('gpu')}; CUDA: {json.dumps(meta.get('cuda'))}",
            f"- CPU: {meta.get('cpu')} ({meta.get('cpu_count')} cores; CPU solvers use threads={meta.get('threads')})",
            f"- versions: {json.dumps(keep)}", f"- commit: {meta.get('commit')}; date: {meta.get('date')}"]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="gpu_summary")
    p.add_argument("sweep", type=Path)
    p.add_argument("--out", type=Path)
    args = p.parse_args(argv)
    df = load(args.sweep)
    tab = table(df)
    text = ["# GPU check summary", "", *environment_lines(args.sweep), "",
            "Repeat 0 of each job; times are solve time (setup separate). '-' = not reached within the budget.", "",
            *markdown(tab), "", *claims(tab), ""]
    body = "\n".join(text)
    print(body)
    if args.out:
        args.out.write_text(body)
        tab.to_csv(args.out.with_suffix(".csv"), index=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
