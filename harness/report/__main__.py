"""CLI: ``python -m harness.report [RESULTS_DIR] [--target 1e-10] [--out DIR] [--mode all|paper|paper_...] [--svg]``."""

from __future__ import annotations

import math
import sys
from pathlib import Path

from harness import results
from harness.arguments import OneLineParser

from .build import build
from .groups import MODES


def parser() -> OneLineParser:
    p = OneLineParser(
        prog="python -m harness.report",
        description="Figures and tables comparing the solvers of a sweep: which solver reaches which accuracy "
                    "how fast, at which grid size.")
    p.add_argument("results", nargs="?", type=Path,
                   help="a sweep folder (or a folder of sweeps); default: the newest sweep under --results-root")
    p.add_argument("--results-root", type=Path, default=Path("results"), help="where to look for the newest sweep")
    p.add_argument("--target", type=float, default=1e-10,
                   help="MSR target for ranking, speedup and the scaling figure (default 1e-10)")
    p.add_argument("--out", type=Path, help="report folder (default reports/<sweep>_<timestamp>[_<mode>])")
    p.add_argument("--reports-root", type=Path, default=Path("reports"), help="parent of the default report folder")
    p.add_argument("--mode", choices=list(MODES), default="all",
                   help="all: every solver together; paper: one section per comparison of the Metamizer paper; "
                        "paper_<name>: one of them")
    p.add_argument("--reference", default="cg", help="solver that speedups are relative to (default cg)")
    p.add_argument("--no-figures", action="store_true", help="tables only (fast)")
    p.add_argument("--svg", action="store_true", help="also write each figure as SVG (for papers; slower)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    refusal = argument_error(args)
    if refusal:
        print(f"harness.report: error: {refusal}", file=sys.stderr)
        return 2
    try:
        source = args.results if args.results is not None else results.newest_sweep(args.results_root)
        outcome = build(source, out=args.out, target=args.target, mode=args.mode, reference=args.reference,
                        reports_root=args.reports_root, draw=not args.no_figures, svg=args.svg)
    except results.ResultsError as exc:
        print(f"harness.report: error: {exc}", file=sys.stderr)
        return 1
    for line in outcome.warnings:
        print(f"harness.report: warning: {line}", file=sys.stderr)
    index = outcome.folder / "index.html"
    if outcome.jobs_ran == 0:
        print(f"harness.report: error: no job in {source} produced a trace ({outcome.jobs} failed or unavailable); "
              f"their reasons are listed in {index}", file=sys.stderr)
        return 1
    print(f"report: {index} ({outcome.jobs_ran} of {outcome.jobs} jobs ran)")
    return 0


def argument_error(args) -> str | None:
    """One line for the first bad option (checked before anything is read or written), or None."""
    if not (args.target > 0 and math.isfinite(args.target)):
        return f"--target {args.target:g} is not valid: use a positive finite MSR, e.g. --target 1e-10"
    if args.out is not None and args.out.exists():
        if not args.out.is_dir():
            return f"--out {args.out} is a file: give a new or empty folder for the report"
        if any(args.out.iterdir()):
            return (f"--out {args.out} is not empty: a report never overwrites files; give a new or empty folder "
                    f"(or leave --out out: reports/<sweep>_<stamp>)")
    for name, folder in (("--reports-root", args.reports_root), ("--results-root", args.results_root)):
        if folder.exists() and not folder.is_dir():
            return f"{name} {folder} is a file: give a folder"
    return None


if __name__ == "__main__":
    sys.exit(main())
