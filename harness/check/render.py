"""Showing deviations: a rich table, a plain-text summary and the overlay figure."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pandas as pd

from harness.check.compare import Deviation, Tolerances, _curve, _jobs_of
from harness.curve import log_msr
from harness.formats import count, number


def _fmt_value(kind: str, v) -> str:
    if v is None:
        return "-"
    if kind == "msr":
        return number(v, ".2e")
    if kind == "timing":
        return f"{v:.3g} x cg"
    if kind in ("iters_to_target", "last iteration") and isinstance(v, (int, float)):
        return count(v)
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
                      d.problem or "-", count(d.n), count(d.iteration), _fmt_value(d.kind, d.baseline),
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


