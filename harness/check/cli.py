"""The command line of ``python -m harness.check`` (see ``harness.check`` for what it checks)."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import pandas as pd

from harness.check.baseline import load_baseline, write_baseline
from harness.check.compare import (
    TIMING_FACTOR,
    TIMING_REFERENCE,
    Deviation,
    _jobs_of,
    _status,
    bitwise_differences,
    compare,
    compare_timing,
    config_deviations,
    regressions,
)
from harness.check.config import BASELINE_DIR, BASELINE_FILE, DEFAULT_OUT, SWEEP, Tolerances, load_ci_config
from harness.check.render import plot_overlay, print_deviations
from harness.check.sweep import run_ci_sweep
from harness.status import ENDED

DESCRIPTION = "Convergence-curve regression check: python -m harness.check [--update]."


# --- command line -------------------------------------------------------------------------------------
def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m harness.check", description=DESCRIPTION)
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
        skip = _skipped(args.skip)
        current = run_ci_sweep(sweep=args.sweep, skip=skip, verbose=True)
        for s, why in current.attrs.get("skipped", {}).items():
            console.print(f"[yellow]skipped solver {s}[/yellow]: {why}")
    if args.twice:
        again = run_ci_sweep(sweep=args.sweep, skip=_skipped(args.skip))
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
        failed = [k for k, g in _jobs_of(current).items() if _status(g) not in ENDED]
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
    from harness.results import load, read_trace

    p = Path(path)
    return read_trace(p) if p.is_file() else load(p)




def _skipped(args: list[str]) -> list[str]:
    return [s.strip() for arg in args for s in arg.split(",") if s.strip()]
