"""Report figures (seaborn figure-level plots), one file pair (PNG + SVG) per figure.
Over 300 lines: one seaborn figure per view of the same prepared frame; they share the legend and note helpers.

Every function takes prepared tables from ``metrics`` and a ``Look`` (palette,
machine name, failure notes) so a solver has the same colour and line style in every
figure of a report.
"""

from __future__ import annotations

import math
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from harness.status import BROKE

from . import style
from .metrics import FIT_SIZES, FLOOR, size_name, tag

HEIGHT, ASPECT, DPI = 3.3, 1.2, 120


def _height(n_labels: int) -> float:
    """Taller panels when many curves share them."""
    return HEIGHT if n_labels <= 12 else HEIGHT + 1.0
MAX_NOTE_LINES = 8


@dataclass
class Look:
    palette: dict                  # label -> colour, in legend order (style.palette)
    machine: str
    repeats: bool = False
    notes: dict[str, list[str]] = field(default_factory=dict)  # problem -> failure lines

    def aggregate(self) -> dict:
        """Median with a min-max band over repeats; raw lines when every cell has one run."""
        return {"estimator": "median", "errorbar": ("pi", 100)} if self.repeats else {"estimator": None}

    def labels(self, data: pd.DataFrame) -> list[str]:
        """The labels present in ``data``, in legend order (family, then name)."""
        present = set(data["label"])
        return [lab for lab in self.palette if lab in present] + sorted(present - set(self.palette))


def save(fig: plt.Figure, stem: Path) -> list[Path]:
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = []
    for ext in ("png", "svg"):
        path = stem.with_suffix(f".{ext}")
        fig.savefig(path, dpi=DPI, bbox_inches="tight")
        paths.append(path)
    plt.close(fig)
    return paths


# --------------------------------------------------------------------------- helpers
def _caption(fig: plt.Figure, lines: list[str]) -> None:
    if len(lines) > MAX_NOTE_LINES:
        lines = lines[: MAX_NOTE_LINES - 1] + [f"... and {len(lines) - MAX_NOTE_LINES + 1} more (see summary.md)"]
    width = max(60, int(fig.get_figwidth() * 15))
    text = "\n".join(textwrap.fill(line, width, subsequent_indent="    ") for line in lines)
    fig.text(0.01, 0.0, text, ha="left", va="top", fontsize=8, family="sans-serif",
             bbox={"boxstyle": "round,pad=0.4", "facecolor": "#f6f6f6", "edgecolor": "#cccccc"})


def _legend(g: sns.FacetGrid, header: dict[str, str] | None = None, suffix: dict[str, str] | None = None) -> None:
    """Legend outside on the right, in as many columns as the figure height needs."""
    if g.legend is None:
        return
    for text in g.legend.texts:
        t = text.get_text()
        if header and t in header:
            text.set_text(header[t])
            text.set_fontweight("bold")
        elif suffix and t in suffix:
            text.set_text(f"{t}{suffix[t]}")
    entries = len(g.legend.texts)
    boxes = [ax.get_position() for ax in g.axes.flat]
    right, top, bottom = max(b.x1 for b in boxes), max(b.y1 for b in boxes), min(b.y0 for b in boxes)
    rows = max(8, int((top - bottom) * g.figure.get_figheight() * 5.5))
    sns.move_legend(g, "upper left", bbox_to_anchor=(right + 0.01, top), ncol=math.ceil(entries / rows),
                    frameon=False, fontsize=8, title=None)


def _title(g: sns.FacetGrid, title: str) -> None:
    top = max(ax.get_position().y1 for ax in g.axes.flat)
    g.figure.text(0.5 * (min(ax.get_position().x0 for ax in g.axes.flat)
                         + max(ax.get_position().x1 for ax in g.axes.flat)),
                  top + 0.35 / g.figure.get_figheight(), title, ha="center", va="bottom", fontsize=12)


def _size_titles(g: sns.FacetGrid, data: pd.DataFrame) -> None:
    for n, ax in g.axes_dict.items():
        ax.set_title(size_name(data, n), fontsize=10)


def _mark_ends(*, data: pd.DataFrame, x: str, y: str, palette: dict, **_) -> None:
    """An 'x' at the last drawn checkpoint of diverged or failed jobs."""
    bad = data[data["status"].isin(BROKE)]
    if bad.empty:
        return
    ends = bad.sort_values("iteration").groupby("label").tail(1)
    ax = plt.gca()
    for _, row in ends.iterrows():
        ax.plot(row[x], row[y], marker="X", markersize=9, color=palette.get(row["label"], "k"),
                markeredgecolor="black", linestyle="none", zorder=5)


def _wrap(n: int) -> int | None:
    return None if n <= 3 else 3


# --------------------------------------------------------------------------- line figures
def _lines(data: pd.DataFrame, x: str, y: str, look: Look, title: str, xlabel: str, ylabel: str,
           notes: list[str], xscale: str = "log") -> plt.Figure:
    sizes = sorted(data["n"].unique())
    labels = look.labels(data)
    fams = style.family_order(data["family"].unique())
    g = sns.relplot(data=data, kind="line", x=x, y=y, hue="label", hue_order=labels, palette=look.palette,
                    style="family", style_order=fams, dashes=style.dashes(fams), col="n", col_order=sizes,
                    col_wrap=_wrap(len(sizes)), height=_height(len(labels)), aspect=ASPECT, linewidth=1.5,
                    facet_kws={"sharex": False, "sharey": True, "legend_out": False}, **look.aggregate())
    g.map_dataframe(_mark_ends, x=x, y=y, palette=look.palette)
    if xscale == "symlog":
        g.set(xscale="symlog", yscale="log")
        for ax in g.axes.flat:
            ax.set_xscale("symlog", linthresh=1, linscale=0.6)
            ax.set_xlim(left=0)
    else:
        g.set(xscale=xscale, yscale="log")
    g.set_axis_labels(xlabel, ylabel)
    _size_titles(g, data)
    for ax in g.axes.flat:
        ax.grid(True, which="major", alpha=0.3)
    _legend(g, header={"label": "solver", "family": "family (line style)"})
    _title(g, title)
    _caption(g.figure, notes)
    return g.figure


REPEATS_TIME = ("Repeats: each checkpoint is drawn at its median solve time over repeats, the band is the min-max "
                "of the y value over repeats; the spread of times is in the tables and the scaling figure.")
REPEATS_ITER = "Repeats: median over repeats, band = min-max over repeats."
DIRECT = ("Solve time (setup excluded; see the setup figure), except direct solvers (family 'direct'), drawn at "
          "setup + solve time since their work is the setup.")
ENDS = "X = last drawn checkpoint of a diverged / failed run."
EXACT = {"analytic": "the analytic (exact discrete) solution", "direct": "a direct-solver reference solution"}


def _notes(first: str, look: Look, problem: str, repeats: str) -> list[str]:
    return [f"{first} {repeats if look.repeats else ''} {ENDS}".replace("  ", " "), *look.notes.get(problem, [])]


def msr_time(curves: pd.DataFrame, problem: str, look: Look) -> plt.Figure | None:
    data = curves[curves["time_plot"] > 0]
    if data.empty:
        return None
    notes = _notes(f"{DIRECT} Checkpoints at time 0 (the initial field) are not shown on the log axis; MSR is "
                   f"floored at {FLOOR:g}.", look, problem, REPEATS_TIME)
    title = f"{problem}: mean squared residual vs solve time\n{look.machine}"
    return _lines(data, "time_plot", "msr_plot", look, title, "solve time [s]", "MSR (mean squared residual)", notes)


def msr_iterations(curves: pd.DataFrame, problem: str, look: Look) -> plt.Figure | None:
    if curves.empty:
        return None
    notes = _notes(f"Iteration axis: linear from 0 to 1, logarithmic above. MSR is floored at {FLOOR:g}.",
                   look, problem, REPEATS_ITER)
    title = f"{problem}: mean squared residual vs iterations\n{look.machine}"
    return _lines(curves, "iteration", "msr_plot", look, title, "iteration", "MSR (mean squared residual)", notes,
                  xscale="symlog")


def mse_time(curves: pd.DataFrame, problem: str, look: Look) -> plt.Figure | None:
    data = curves[(curves["time_plot"] > 0) & curves["mse_plot"].notna() & curves["exact_kind"].isin(EXACT)]
    if data.empty:
        return None
    kinds = sorted(data["exact_kind"].unique())
    against = " / ".join(EXACT[k] for k in kinds)
    notes = _notes(f"MSE = mean squared error to {against}. {DIRECT} Time-0 checkpoints are not shown; MSE is "
                   f"floored at {FLOOR:g}.", look, problem, REPEATS_TIME)
    skipped = sorted(set(curves["label"]) - set(data["label"]))
    if skipped:
        notes.insert(1, f"No MSE recorded (no ground truth) for: {', '.join(skipped)}")
    title = f"{problem}: error to {'ground truth' if len(kinds) > 1 else against} vs solve time\n{look.machine}"
    return _lines(data, "time_plot", "mse_plot", look, title, "solve time [s]", f"MSE to {'/'.join(kinds)} solution",
                  notes)


# --------------------------------------------------------------------------- scaling
def scaling(times: pd.DataFrame, exponents: dict[str, tuple[float, float]], problem: str, target: float,
            look: Look, unreached: list[str]) -> plt.Figure | None:
    """Time to target vs unknowns, solve-only and setup + solve side by side; exponents in the legend."""
    if times.empty:
        return None
    labels = look.labels(times)
    fams = style.family_order(times["family"].unique())
    g = sns.relplot(data=times, kind="line", x="n_unknowns", y="seconds", hue="label", hue_order=labels,
                    palette=look.palette, style="family", style_order=fams, dashes=style.dashes(fams),
                    markers=style.markers(fams), col="kind", col_order=["solve", "setup + solve"],
                    height=_height(len(labels)) + 0.4, aspect=ASPECT, linewidth=1.5, markersize=6,
                    facet_kws={"sharey": True, "legend_out": False}, err_style="bars", **look.aggregate())
    g.set(xscale="log", yscale="log")
    g.set_axis_labels("unknowns N (interior grid nodes)", f"time to MSR <= {tag(target)} [s]")
    g.set_titles("{col_name} time")
    for ax in g.axes.flat:
        ax.grid(True, which="major", alpha=0.3)

    def fmt(p: float) -> str:
        return "-" if not np.isfinite(p) else f"{p:.2f}"

    suffix = {lab: f"   {fmt(exponents.get(lab, (np.nan, np.nan))[0])} | {fmt(exponents.get(lab, (np.nan,) * 2)[1])}"
              for lab in labels}
    _legend(g, header={"label": "solver   p: solve | setup+solve", "family": "family (line style)"}, suffix=suffix)
    _title(g, f"{problem}: time to reach MSR <= {tag(target)} vs problem size\n{look.machine}")
    notes = [(f"p = fitted exponent of t ~ N^p (least squares on log-log over the {FIT_SIZES} largest sizes that "
             "reached the target, listed with any overhead warning in the scaling table; '-' with fewer than 2 "
             "sizes). The direct solver (family 'direct', dst or splu) is the limit line. "
             "Time to target interpolated log-linearly between checkpoints."),
             f"Never reached MSR <= {tag(target)} at any size: {', '.join(unreached) if unreached else 'none'}.",
             *look.notes.get(problem, [])]
    _caption(g.figure, notes)
    return g.figure


# --------------------------------------------------------------------------- setup vs solve
def setup_solve(jobs: pd.DataFrame, problem: str, target: float, look: Look) -> plt.Figure | None:
    """Setup time next to solve time to target (or the whole run's solve time when unreached), per solver."""
    tg = tag(target)
    ran = jobs[jobs["ran"]]
    if ran.empty:
        return None
    reached = np.isfinite(ran[f"t@{tg}"])
    parts = {
        "setup": ran.assign(seconds=ran["setup_s"]),
        f"solve to MSR <= {tg}": ran[reached].assign(seconds=ran[f"t@{tg}"]),
        "solve, whole run (target not reached)": ran[~reached].assign(seconds=ran["solve_s"]),
    }
    long = pd.concat([p.assign(part=name) for name, p in parts.items()], ignore_index=True)
    zero = long[~(long["seconds"] > 0)]
    long = long[long["seconds"] > 0]
    if long.empty:
        return None
    labels = look.labels(ran)
    sizes = sorted(ran["n"].unique())
    colours = dict(zip(parts, style.PART_COLOURS.values(), strict=True))
    height = max(2.8, 0.28 * len(labels) + 1.0)
    g = sns.catplot(data=long, kind="bar", y="label", x="seconds", hue="part", hue_order=list(parts),
                    order=labels, palette=colours, col="n", col_order=sizes, col_wrap=_wrap(len(sizes)),
                    orient="h", height=height, aspect=4.5 / height, sharex=True, legend_out=False,
                    **({"estimator": "median", "errorbar": ("pi", 100)} if look.repeats else {"errorbar": None}))
    g.set(xscale="log")  # after drawing: catplot's log_scale drops the bars (seaborn 0.13)
    g.set_axis_labels("time [s] (log)", "")
    g.set_titles("n = {col_name}")
    for ax in g.axes.flat:
        ax.grid(True, axis="x", which="major", alpha=0.3)
        for text in ax.get_yticklabels():
            text.set_color(look.palette.get(text.get_text(), "black"))
            text.set_fontweight("bold")
    _legend(g)
    _title(g, f"{problem}: setup vs solve time per solver\n{look.machine}")
    notes = [("Setup = everything before the first iteration (assembly, factorisation, AMG hierarchy, model load); "
             "direct solvers do their work in setup. Solve = solve clock to the target (interpolated), or the "
             "whole run when the target was not reached. Solver names are coloured as in the other figures.")]
    if not zero.empty:
        notes.append("Zero times (not drawable on a log axis): "
                     + ", ".join(sorted({f"{r.label} n={r.n} {r.part}" for r in zero.itertuples()})))
    notes += look.notes.get(problem, [])
    _caption(g.figure, notes)
    return g.figure


# --------------------------------------------------------------------------- training bill
def training_bill(bill: pd.DataFrame, target: float, palette: dict) -> plt.Figure:
    """Solves after which each neural solver's training is paid back, per size (log axis; 'never' marked)."""
    data = bill[bill["training_s"].notna()]
    labels = list(dict.fromkeys(data["label"]))
    cases = list(dict.fromkeys(zip(data["problem"], data["n"], strict=True)))
    fig, ax = plt.subplots(figsize=(max(4.5, 1.1 * len(cases) * len(labels) + 2), 3.6))
    width = 0.8 / max(1, len(labels))
    finite = data.loc[np.isfinite(data["payback"]), "payback"]
    top = float(finite.max()) * 10 if len(finite) else 1e3
    for i, label in enumerate(labels):
        for j, case in enumerate(cases):
            row = data[(data["label"] == label) & (data["problem"] == case[0]) & (data["n"] == case[1])]
            if row.empty:
                continue
            x, value = j + (i - (len(labels) - 1) / 2) * width, float(row["payback"].iloc[0])
            if np.isfinite(value):
                ax.bar(x, max(value, 1.0), width, color=palette.get(label, "k"), label=label if j == 0 else None)
                ax.text(x, max(value, 1.0), f"{value:,.0f}", ha="center", va="bottom", fontsize=8)
            else:
                ax.bar(x, top, width, color="white", edgecolor=palette.get(label, "k"), hatch="//",
                       label=label if j == 0 else None)
                ax.text(x, top ** 0.5, "never" if np.isinf(value) else "n/a", ha="center", va="center",
                        fontsize=9, rotation=90, fontweight="bold",
                        bbox={"facecolor": "white", "edgecolor": "none", "pad": 2})
    ax.set_yscale("log")
    ax.set_ylim(1.0, top * 3)
    ax.set_xticks(range(len(cases)))
    ax.set_xticklabels([f"{p}\nn = {n}" if len({c[0] for c in cases}) > 1 else f"n = {n}" for p, n in cases])
    ax.set_ylabel("solves to pay back the training")
    ax.grid(True, axis="y", which="major", alpha=0.3)
    ax.legend(frameon=False, fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    hw = ", ".join(sorted({h for h in data["hardware"] if h})) or "not recorded"
    ax.set_title(f"Training bill: solves until the training time is paid back\n(training hardware: {hw})",
                 fontsize=11)
    fig.subplots_adjust(bottom=0.2)
    _caption(fig, [f"Training time / (best other solver's setup+solve time to MSR <= {tag(target)} - the neural "
                   "solver's), per size. Hatched 'never': the neural solver is not faster per solve (or does "
                   "not reach the target). Timings on this report's machine."])
    return fig
