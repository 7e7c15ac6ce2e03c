"""The command line of ``python -m harness.check`` (see ``harness.check`` for what it checks)."""

from __future__ import annotations

import math
import sys
import time
from argparse import SUPPRESS
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import pandas as pd

from harness.arguments import OneLineParser
from harness.check.baseline import baseline_error, identities, load_baseline, write_baseline
from harness.check.compare import (
    TIMING_FACTOR,
    TIMING_REFERENCE,
    Deviation,
    _jobs_of,
    _status,
    bitwise_differences,
    compare,
    compare_timing,
    compared_jobs,
    config_deviations,
    regressions,
)
from harness.check.config import BASELINE_DIR, BASELINE_FILE, CONF, DEFAULT_OUT, SWEEP, Tolerances, load_ci_config
from harness.check.render import plot_overlay, print_deviations
from harness.check.sweep import NoJobRan, run_ci_sweep
from harness.results import ResultsError
from harness.status import ENDED

DESCRIPTION = "Convergence-curve regression check: python -m harness.check [--update]."


# --- command line -------------------------------------------------------------------------------------
def parser() -> OneLineParser:
    ap = OneLineParser(prog="python -m harness.check", description=DESCRIPTION)
    ap.add_argument("--update", action="store_true", help="re-bless the baseline with this run (exit 0)")
    ap.add_argument("--baseline", default=str(BASELINE_DIR), help="baseline folder or parquet (default %(default)s)")
    ap.add_argument("--out", default=str(DEFAULT_OUT), help="report folder: overlay.png, deviations.csv, "
                    "current/trace.parquet (default %(default)s)")
    ap.add_argument("--current", help="compare this saved trace (parquet or results folder) instead of running")
    ap.add_argument("--sweep", default=SWEEP, help=SUPPRESS)
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
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    # every input is checked before the sweep runs or anything is written: one line, exit 2
    refusal = _argument_error(args)
    if refusal:
        return _refuse(refusal)
    sweep_cfg = load_ci_config(args.sweep)
    tol = Tolerances.from_config(sweep_cfg.get("check"))
    baseline, meta = None, {}
    try:
        baseline, meta = load_baseline(args.baseline)
        refusal = baseline_error(baseline, meta, args.sweep, args.baseline)
    except FileNotFoundError as exc:
        refusal = None if args.update else str(exc)  # --update creates it
    except ResultsError as exc:
        refusal = (f"--baseline {args.baseline}: {exc}; give the folder python -m harness.check --update wrote "
                   f"(default {BASELINE_DIR})")
    if refusal and (not args.update or meta.get("kind") != "harness.check baseline"):
        return _refuse(refusal + ("; --update never overwrites a file that is not a baseline" if args.update else ""))
    if refusal:  # --update re-blesses a baseline that cannot be compared with (another sweep's, empty)
        baseline = None
    if args.current:
        try:
            current = _read_any(args.current)
        except ResultsError as exc:
            return _refuse(f"--current {args.current}: {exc}; give a results folder or a trace file of the ci sweep")
        if current.empty or not _jobs_of(current):
            return _refuse(f"--current {args.current} holds no job (no repeat 0 of any problem, size and solver): "
                           f"give the traces of a ci sweep")

    from rich.console import Console

    console = Console(width=None if Console().is_terminal else 160)
    out = Path(args.out)

    t0 = time.perf_counter()
    if not args.current:
        console.print(f"running the {args.sweep} sweep in-process ...")
        skip = _skipped(args.skip)
        try:
            current = run_ci_sweep(sweep=args.sweep, skip=skip, verbose=True)
        except NoJobRan as exc:
            return _refuse(str(exc))
        for s, why in current.attrs.get("skipped", {}).items():
            console.print(f"[yellow]skipped solver {s}[/yellow]: {why}")
    if args.twice:
        again = run_ci_sweep(sweep=args.sweep, skip=_skipped(args.skip))
        diffs = bitwise_differences(current, again)
        for key, what in diffs.items():
            console.print(f"[yellow]not bit-reproducible[/yellow] {key[2]} {key[0]} n={key[1]}: {what}")
        console.print(f"bit-for-bit identical: {len(_jobs_of(current)) - len(diffs)} of {len(_jobs_of(current))} jobs")
    if baseline is not None and not args.update and not compared_jobs(baseline, current):
        return _refuse(f"no job was compared: none of the {len(_jobs_of(current))} current job(s) is a job of the "
                       f"baseline, the same experiment ({len(_jobs_of(baseline))} job(s) in {args.baseline}); check "
                       f"--baseline and --current, or bless this run with --update")
    from harness.results import COLUMNS, write_trace

    out.mkdir(parents=True, exist_ok=True)
    write_trace(current[list(COLUMNS)], out / "current" / BASELINE_FILE,
                {"kind": "harness.check current", "identities": identities(current)}, overwrite=True)

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
    compared = compared_jobs(baseline, current)
    if new and not bad:
        console.print(f"[yellow]{len(new)} job(s) not covered by the baseline[/yellow]: "
                      "python -m harness.check --update to include them")
    if bad:
        console.print(f"[red]REGRESSION[/red]: {len(bad)} deviation(s) beyond tolerance ({wall:.1f}s)")
        return 1
    console.print(f"[green]OK[/green]: {compared} jobs match the baseline ({wall:.1f}s)")
    return 0


def _refuse(line: str) -> int:
    print(f"harness.check: error: {' '.join(str(line).split())}", file=sys.stderr)
    return 2


# The files the check writes into --out; a folder holding anything else is not the check's.
OWN_FILES = {"overlay.png", "deviations.csv", "current"}


def _argument_error(args) -> str | None:
    """One line for the first bad option, or None."""
    if not (CONF / "sweep" / f"{args.sweep}.yaml").is_file():
        valid = ", ".join(sorted(p.stem for p in (CONF / "sweep").glob("*.yaml")))
        return f"--sweep {args.sweep}: no such sweep (conf/sweep/{args.sweep}.yaml); valid: {valid}"
    if not args.timing_factor > 1 or not math.isfinite(args.timing_factor):
        return "--timing-factor must be a finite number > 1, e.g. 2"
    if args.max_rows < 0:
        return "--max-rows must be >= 0, e.g. 200"
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        return f"--out {out} is a file: give a folder for the check's report (e.g. --out reports/check)"
    if out.is_dir():
        foreign = sorted(p.name for p in out.iterdir() if p.name not in OWN_FILES)
        if foreign:
            return (f"--out {out} holds files the check did not write ({', '.join(foreign[:3])}): nothing there is "
                    f"overwritten; give an empty or new folder")
    current = Path(args.current) if args.current else None
    if current is not None and not current.exists():
        return f"--current {current} does not exist: give a results folder or a trace file (.parquet)"
    return None


def _read_any(path: str | Path) -> pd.DataFrame:
    from harness.results import load, read_trace

    p = Path(path)
    return read_trace(p) if p.is_file() else load(p)




def _skipped(args: list[str]) -> list[str]:
    return [s.strip() for arg in args for s in arg.split(",") if s.strip()]
