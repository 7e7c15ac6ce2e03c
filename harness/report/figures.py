"""Report figures (plain matplotlib on ``canvas`` frames): convergence per size, scaling, setup vs solve,
the training bill.
Over 300 lines: one function per view of the same prepared tables; they share the look, legend and notes.

Every function takes prepared tables from ``metrics`` and a ``Look`` (palette, machine name, failure notes) so
a solver has the same colour and line style in every figure of a report. Curves are drawn from
``curves.pooled`` (repeats pooled, thinned); no number in a table comes from here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from . import canvas, style
from .curves import pooled
from .metrics import FIT_SIZES, FLOOR, size_name, tag


@dataclass
class Look:
    palette: dict                  # label -> colour, in legend order (style.palette)
    machine: str
    repeats: bool = False
    notes: dict[str, list[str]] = field(default_factory=dict)  # problem -> failure lines

    def labels(self, data: pd.DataFrame) -> list[str]:
        """The labels present in ``data``, in legend order (family, then name)."""
        present = set(data["label"])
        return [lab for lab in self.palette if lab in present] + sorted(present - set(self.palette))

    def colour(self, label: str):
        return self.palette.get(label, "black")


def line_style(family: str) -> dict:
    dash = style.FAMILY_DASHES.get(family, "")
    return {"linestyle": "-"} if dash == "" else {"linestyle": (0, dash)}


def size_title(sizes: pd.DataFrame, n: int) -> str:
    """'n = 64 (3,600 unknowns)', or a grid set by h and w by its true shape (``metrics.size_name``)."""
    return size_name(sizes, n)


def _wrap(count: int) -> tuple[int, int]:
    cols = min(3, count)
    return -(-count // cols), cols


def _legend(fig, axes, where: dict, order: list[str], names: dict[str, str] | None = None) -> None:
    """One figure legend: an entry per label (the first handle drawn for it), in ``order``."""
    handles = {}
    for ax in axes.flat:
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(lab, h)
    keys = [k for k in order if k in handles] + [k for k in handles if k not in order]
    if keys:
        fig.legend([handles[k] for k in keys], [(names or {}).get(k, k) for k in keys], **where)


def mark_end(ax, c: pd.DataFrame, colour) -> None:
    """An 'X' at the last drawn checkpoint of a run whose repeats all diverged or failed."""
    if len(c) and bool(c["failed"].iloc[0]):
        ax.plot(c["x"].iloc[-1], c["y"].iloc[-1], marker="X", markersize=9, color=colour,
                markeredgecolor="black", linestyle="none", zorder=5)


# --------------------------------------------------------------------------- convergence per size
BAND = 1.1     # repeats whose y values all lie within 10 % of each other draw no band (a log axis would not show it)


def _lines(data: pd.DataFrame, sizes: pd.DataFrame, look: Look, title: str, xlabel: str, ylabel: str,
           notes: list[str], xscale: str = "log"):
    """One panel per size, one line per solver (median over repeats, band = min-max)."""
    ns = sorted(data["n"].unique())
    rows, cols = _wrap(len(ns))
    labels = look.labels(data)
    fig, axes, where = canvas.grid(rows, cols, legend=labels, notes=notes)
    for ax, n in zip(axes.flat, ns, strict=False):
        at = data[data["n"] == n]
        for label, c in at.groupby("label", sort=False):
            colour = look.colour(label)
            ax.plot(c["x"], c["y"], color=colour, linewidth=1.5, label=label, **line_style(c["family"].iloc[0]))
            if look.repeats and (c["hi"] > BAND * c["lo"]).any():   # a band thinner than that is not visible
                ax.fill_between(c["x"], c["lo"], c["hi"], color=colour, alpha=0.15, linewidth=0)
            mark_end(ax, c, colour)
        if xscale == "symlog":
            ax.set_xscale("symlog", linthresh=1, linscale=0.6)
            ax.set_xlim(left=0)
        else:
            ax.set_xscale(xscale)
        ax.set_yscale("log")
        canvas.log_axes(ax)
        ax.grid(True, which="major", alpha=0.3)
        ax.set_title(size_title(sizes, n), fontsize=10)
        ax.set_xlabel(xlabel)
    for ax in axes[:, 0]:
        ax.set_ylabel(ylabel)
    canvas.hide_unused(axes, len(ns))
    _legend(fig, axes, {**where, "title": "solver (line style: family)", "title_fontsize": 8}, labels)
    canvas.title(fig, title)
    return fig


REPEATS_TIME = ("Repeats: each checkpoint is drawn at its median solve time over repeats, the band is the min-max "
                "of the y value over repeats; the spread of times is in the tables and the scaling figure.")
REPEATS_ITER = "Repeats: median over repeats, band = min-max over repeats."
DIRECT = ("Solve time (setup excluded; see the setup figure), except direct solvers (family 'direct'), drawn at "
          "setup + solve time since their work is the setup.")
ENDS = "X = last drawn checkpoint of a diverged / failed run."
THINNED = "Curves are drawn through the checkpoints where they turn (the tables use every checkpoint)."
EXACT = {"analytic": "the analytic (exact discrete) solution", "direct": "a direct-solver reference solution"}


def _notes(first: str, look: Look, problem: str, repeats: str) -> list[str]:
    return [f"{first} {repeats if look.repeats else ''} {ENDS} {THINNED}".replace("  ", " "),
            *look.notes.get(problem, [])]


def msr_time(curves: pd.DataFrame, problem: str, look: Look):
    data = curves[curves["time_plot"] > 0]
    if data.empty:
        return None
    notes = _notes(f"{DIRECT} Checkpoints at time 0 (the initial field) are not shown on the log axis; MSR is "
                   f"floored at {FLOOR:g}.", look, problem, REPEATS_TIME)
    title = f"{problem}: mean squared residual vs solve time\n{look.machine}"
    return _lines(pooled(data, "time_plot", "msr_plot"), data, look, title, "solve time [s]",
                  "MSR (mean squared residual)", notes)


def msr_iterations(curves: pd.DataFrame, problem: str, look: Look):
    if curves.empty:
        return None
    notes = _notes(f"Iteration axis: linear from 0 to 1, logarithmic above. MSR is floored at {FLOOR:g}.",
                   look, problem, REPEATS_ITER)
    title = f"{problem}: mean squared residual vs iterations\n{look.machine}"
    return _lines(pooled(curves, "iteration", "msr_plot"), curves, look, title, "iteration",
                  "MSR (mean squared residual)", notes, xscale="symlog")


def mse_time(curves: pd.DataFrame, problem: str, look: Look):
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
    return _lines(pooled(data, "time_plot", "mse_plot"), data, look, title, "solve time [s]",
                  f"MSE to {'/'.join(kinds)} solution", notes)


# --------------------------------------------------------------------------- scaling
def _spread(g: pd.DataFrame, x: str) -> pd.DataFrame:
    """Median, min and max of ``seconds`` per ``x`` (over repeats)."""
    return g.groupby(x)["seconds"].agg(["median", "min", "max"]).reset_index()


def scaling(times: pd.DataFrame, exponents: dict[str, tuple[float, float]], problem: str, target: float,
            look: Look, unreached: list[str]):
    """Time to target vs unknowns, solve-only and setup + solve side by side; exponents in the legend."""
    if times.empty:
        return None
    labels = look.labels(times)

    def fmt(p: float) -> str:
        return "-" if not np.isfinite(p) else f"{p:.2f}"

    names = {lab: f"{lab}   {fmt(exponents.get(lab, (np.nan,) * 2)[0])} | {fmt(exponents.get(lab, (np.nan,) * 2)[1])}"
             for lab in labels}
    notes = [(f"p = fitted exponent of t ~ N^p (least squares on log-log over the {FIT_SIZES} largest sizes that "
             "reached the target, listed with any overhead warning in the scaling table; '-' with fewer than 2 "
             "sizes). The direct solver (family 'direct', dst or splu) is the limit line. Time to target "
             "interpolated log-linearly between checkpoints." + (" Bars: min-max over repeats." if look.repeats
                                                                   else "")),
             f"Never reached MSR <= {tag(target)} at any size: {', '.join(unreached) if unreached else 'none'}.",
             *look.notes.get(problem, [])]
    fig, axes, where = canvas.grid(1, 2, panel=(4.6, 3.6), legend=list(names.values()), notes=notes)
    for ax, kind in zip(axes.flat, ("solve", "setup + solve"), strict=True):
        part = times[times["kind"] == kind]
        for label in labels:
            g = part[part["label"] == label]
            if g.empty:
                continue
            s = _spread(g, "n_unknowns")
            family = str(g["family"].iloc[0])
            ax.errorbar(s["n_unknowns"], s["median"], yerr=[s["median"] - s["min"], s["max"] - s["median"]],
                        color=look.colour(label), marker=style.FAMILY_MARKERS.get(family, "o"), markersize=5,
                        linewidth=1.5, capsize=2, label=label, **line_style(family))
        ax.set_xscale("log")
        ax.set_yscale("log")
        canvas.log_axes(ax)
        ax.grid(True, which="major", alpha=0.3)
        ax.set_title(f"{kind} time", fontsize=10)
        ax.set_xlabel("unknowns N (interior grid nodes)")
    axes[0, 0].set_ylabel(f"time to MSR <= {tag(target)} [s]")
    _legend(fig, axes, {**where, "title": "solver   p: solve | setup+solve", "title_fontsize": 8}, labels, names)
    canvas.title(fig, f"{problem}: time to reach MSR <= {tag(target)} vs problem size\n{look.machine}")
    return fig


# --------------------------------------------------------------------------- setup vs solve
def setup_solve(jobs: pd.DataFrame, problem: str, target: float, look: Look):
    """Setup time next to solve time to target (or the whole run's solve time when unreached), per solver."""
    tg = tag(target)
    ran = jobs[jobs["ran"]]
    if ran.empty:
        return None
    reached = np.isfinite(ran[f"t@{tg}"])
    parts = {"setup": ran.assign(seconds=ran["setup_s"]),
             f"solve to MSR <= {tg}": ran[reached].assign(seconds=ran[f"t@{tg}"]),
             "solve, whole run (target not reached)": ran[~reached].assign(seconds=ran["solve_s"])}
    long = pd.concat([p.assign(part=name) for name, p in parts.items()], ignore_index=True)
    zero = long[~(long["seconds"] > 0)]
    long = long[long["seconds"] > 0]
    if long.empty:
        return None
    labels = look.labels(ran)
    ns = sorted(ran["n"].unique())
    rows, cols = _wrap(len(ns))
    colours = dict(zip(parts, style.PART_COLOURS.values(), strict=True))
    notes = [("Setup = everything before the first iteration (assembly, factorisation, AMG hierarchy, model load); "
             "direct solvers do their work in setup. Solve = solve clock to the target (interpolated), or the "
             "whole run when the target was not reached. Bars: median over repeats"
              + (", lines: min-max." if look.repeats else ".") + " Solver names are coloured as in the other "
             "figures.")]
    if not zero.empty:
        notes.append("Zero times (not drawable on a log axis): "
                     + ", ".join(sorted({f"{r.label} n={r.n} {r.part}" for r in zero.itertuples()})))
    notes += look.notes.get(problem, [])
    height = max(2.6, 0.3 * len(labels) + 0.6)
    left = 0.62 * (10 / 72) * max(len(lab) for lab in labels) + 0.4   # bold 10-point tick labels
    fig, axes, where = canvas.grid(rows, cols, panel=(4.2, height), legend=list(parts), notes=notes, sharey=True,
                                   sharex=True, left=left)
    y = {lab: i for i, lab in enumerate(labels)}
    width = 0.8 / len(parts)
    for ax, n in zip(axes.flat, ns, strict=False):
        at = long[long["n"] == n]
        for k, (part, colour) in enumerate(colours.items()):
            s = at[at["part"] == part].groupby("label")["seconds"].agg(["median", "min", "max"])
            if s.empty:
                continue
            pos = np.array([y[lab] for lab in s.index]) + (k - 1) * width
            err = [s["median"] - s["min"], s["max"] - s["median"]] if look.repeats else None
            ax.barh(pos, s["median"], height=width, color=colour, label=part, xerr=err,
                    error_kw={"linewidth": 0.8})
        ax.set_xscale("log")
        canvas.log_axes(ax, y=False)
        ax.grid(True, axis="x", which="major", alpha=0.3)
        ax.set_title(f"n = {n}", fontsize=10)
        ax.set_xlabel("time [s] (log)")
        ax.xaxis.set_tick_params(labelbottom=True)   # every panel keeps its scale (a row may have no panel below)
    first = axes[0, 0]
    first.set_yticks(range(len(labels)), labels)
    first.set_ylim(len(labels) - 0.5, -0.5)
    for ax in axes[:, 0]:
        for text in ax.get_yticklabels():
            text.set_color(look.colour(text.get_text()))
            text.set_fontweight("bold")
    canvas.hide_unused(axes, len(ns))
    _legend(fig, axes, where, list(parts))
    canvas.title(fig, f"{problem}: setup vs solve time per solver\n{look.machine}")
    return fig


# --------------------------------------------------------------------------- training bill
def training_bill(bill: pd.DataFrame, target: float, palette: dict):
    """Solves after which each neural solver's training is paid back, per size (log axis; 'never' marked)."""
    data = bill[bill["training_s"].notna()]
    labels = list(dict.fromkeys(data["label"]))
    cases = list(dict.fromkeys(zip(data["problem"], data["n"], strict=True)))
    notes = [f"Training time / (best other solver's setup+solve time to MSR <= {tag(target)} - the neural "
             "solver's), per size. Hatched 'never': the neural solver is not faster per solve (or does not reach "
             "the target). Timings on this report's machine."]
    from .costs import steps_words

    names = {}  # each model with its training steps (and a paper-recipe model's share of the authors')
    for label in labels:
        row = data[data["label"] == label].iloc[0]
        names[label] = f"{label}, training steps: {steps_words(row['steps'], row.get('authors_steps'))}"
    fig, axes, where = canvas.grid(1, 1, panel=(max(3.5, 1.1 * len(cases) * len(labels) + 1), 3.2),
                                   legend=list(names.values()), notes=notes)
    ax = axes[0, 0]
    width = 0.8 / max(1, len(labels))
    finite = data.loc[np.isfinite(data["payback"]), "payback"]
    top = float(finite.max()) * 10 if len(finite) else 1e3
    for i, label in enumerate(labels):
        for j, case in enumerate(cases):
            row = data[(data["label"] == label) & (data["problem"] == case[0]) & (data["n"] == case[1])]
            if row.empty:
                continue
            x, value = j + (i - (len(labels) - 1) / 2) * width, float(row["payback"].iloc[0])
            colour = palette.get(label, "black")
            if np.isfinite(value):
                ax.bar(x, max(value, 1.0), width, color=colour, label=label)
                ax.text(x, max(value, 1.0), f"{value:,.0f}", ha="center", va="bottom", fontsize=8)
            else:
                ax.bar(x, top, width, color="white", edgecolor=colour, hatch="//", label=label)
                ax.text(x, top ** 0.5, "never" if np.isinf(value) else "n/a", ha="center", va="center",
                        fontsize=9, rotation=90, fontweight="bold",
                        bbox={"facecolor": "white", "edgecolor": "none", "pad": 2})
    ax.set_yscale("log")
    canvas.log_axes(ax, x=False)
    ax.set_ylim(1.0, top * 3)
    ax.set_xticks(range(len(cases)))
    ax.set_xticklabels([f"{p}\nn = {n}" if len({c[0] for c in cases}) > 1 else f"n = {n}" for p, n in cases])
    ax.set_ylabel("solves to pay back the training")
    ax.grid(True, axis="y", which="major", alpha=0.3)
    _legend(fig, axes, where, labels, names)
    hw = ", ".join(sorted({h for h in data["hardware"] if h})) or "not recorded"
    canvas.title(fig, f"Training bill: solves until the training time is paid back\n(training hardware: {hw})")
    return fig
