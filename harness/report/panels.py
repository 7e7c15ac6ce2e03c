"""The headline figures: the neural solvers against the best solver of each classical family, and each family
in full (one panel row per family). The panels hold different solvers per size.

Time axis: setup + solve time (the time from the start of the job), the same time that picks a family's best,
so the initial field (iteration 0, at the setup time) is drawable on the log axis.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from . import canvas, style
from .curves import pooled
from .figures import line_style, mark_end, size_title
from .metrics import FLOOR, LEARNED, LIMIT, tag

PANEL = (3.8, 3.0)
GREY = "#b0b0b0"
LIMIT_DASH = (0, (6, 2, 1, 2))


def _lines(curves: pd.DataFrame) -> dict[tuple[str, int], pd.DataFrame]:
    """(label, n) -> its drawn line against setup + solve time (repeats pooled, thinned)."""
    drawn = pooled(curves[curves["total_plot"] > 0], "total_plot", "msr_plot")
    return {key: c for key, c in drawn.groupby(["label", "n"], sort=False)}


def _plot(ax, c: pd.DataFrame | None, colour, **kw) -> None:
    if c is None or c.empty:
        return
    ax.plot(c["x"], c["y"], color=colour, **kw)
    mark_end(ax, c, colour)


def _limits(axes: np.ndarray) -> None:
    """Shared y range: down to the MSR floor, up to the highest curve (at most 1e6 x the highest start)."""
    tops, starts = [], []
    for ax in axes.flat:
        for line in ax.get_lines():
            y = np.asarray(line.get_ydata(), dtype=float)
            y = y[np.isfinite(y) & (y > 0)]
            if y.size > 1:
                tops.append(y.max())
                starts.append(y[0])
    if tops:
        top = min(max(tops), 1e6 * max(starts)) * 5
        axes.flat[0].set_ylim(FLOOR / 3, top)


def _limit(ax, cells: pd.DataFrame, label: str, n: int, target: float, colour, text: bool) -> None:
    """The direct solver as a vertical line at its setup + solve time."""
    row = cells[(cells["label"] == label) & (cells["n"] == n)]
    if row.empty:
        return
    t = float(row[f"total@{tag(target)}"].iloc[0])
    if not (np.isfinite(t) and t > 0):
        t = float(row["setup_s"].iloc[0] + row["solve_s"].iloc[0])
    if np.isfinite(t) and t > 0:
        ax.axvline(t, color=colour, linestyle=LIMIT_DASH, linewidth=1.6,
                   label=f"{label} (direct solver: the limit)" if text else None)


def _finish(ax, target: float) -> None:
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.axhline(target, color="0.45", linestyle=":", linewidth=1.0)
    canvas.log_axes(ax)
    ax.grid(True, which="major", alpha=0.3)


def _ordered(names: list[str], picks: pd.DataFrame) -> list[str]:
    """Legend order: neural solvers first, then the families in their fixed order, the limit last."""
    rank = {f: i for i, f in enumerate(style.family_order(picks["family"].unique()))}
    rank[LIMIT] = len(rank) + 1
    family = dict(zip(picks["label"], picks["family"], strict=False))
    return sorted(names, key=lambda name: (rank.get(family.get(name.split(" (")[0], ""), 99), name))


def _headline_names(picks: pd.DataFrame, target: float) -> dict[str, str]:
    """Legend name per label. One legend serves every panel, so a solver that misses the target at some
    of its sizes only says at which ("not reaching 1e-10 at n = 32, 512"), not that it never does."""
    names = {}
    for label, g in picks.groupby("label", sort=False):
        p = g.iloc[0]
        if p.role == "limit":
            names[label] = f"{label} (direct solver: the limit)"
            continue
        missed = sorted(int(n) for n in g.loc[~g["reached"].astype(bool), "n"].unique())
        tail = ""
        if missed:
            where = "" if len(missed) == g["n"].nunique() else f" at n = {', '.join(map(str, missed))}"
            tail = f", not reaching {tag(target)}{where}"
        fam = style.FAMILY_WORDS.get(p.family, p.family)
        names[label] = f"{label} ({fam}{tail})" if p.role == "neural" else f"{label} (best {fam}{tail})"
    return names


def headline(curves: pd.DataFrame, cells: pd.DataFrame, picks: pd.DataFrame, problem: str, target: float, look):
    """One panel per size: neural solvers (thick), each classical family's best, the direct limit line."""
    picks = picks[picks["problem"] == problem]
    if picks.empty:
        return None
    sizes = sorted(picks["n"].unique())
    cols = min(3, len(sizes))
    rows = -(-len(sizes) // cols)
    names = _headline_names(picks, target)
    notes = [f"Best of a family = its solver with the fastest setup + solve time to MSR <= {tag(target)} at that "
             "size (chosen per size, so it can differ between panels); a family none of whose solvers reached the "
             "target shows its lowest-MSR solver. The direct solver is the vertical limit line at its setup + solve "
             f"time. Dotted grey: the target {tag(target)}. x = setup + solve time, so a curve starts at its setup "
             "time. Every solver of each family: the family figure.", *look.notes.get(problem, [])]
    fig, axes, where = canvas.grid(rows, cols, panel=PANEL, legend=list(names.values()), notes=notes)
    lines = _lines(curves[curves["problem"] == problem])
    seen: set[str] = set()
    for ax, n in zip(axes.flat, sizes, strict=False):
        for p in picks[picks["n"] == n].itertuples():
            colour = look.colour(p.label)
            if p.role == "limit":
                _limit(ax, cells, p.label, n, target, colour, p.label not in seen)
            else:
                neural = p.role == "neural"
                _plot(ax, lines.get((p.label, n)), colour, linewidth=2.8 if neural else 1.5, zorder=4 if neural else 3,
                      label=names[p.label] if p.label not in seen else None, **line_style(p.family))
            seen.add(p.label)
        _finish(ax, target)
        ax.set_title(size_title(cells, n), fontsize=10)
        ax.set_xlabel("setup + solve time [s]")
    canvas.hide_unused(axes, len(sizes))
    _limits(axes)
    for ax in axes[:, 0]:
        ax.set_ylabel("MSR (mean squared residual)")
    handles = {}
    for ax in axes.flat:
        for h, name in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(name, h)
    order = _ordered(list(handles), picks)
    fig.legend([handles[k] for k in order], order, **where)
    canvas.title(fig, f"{problem}: neural solvers vs the best of each classical family\n{look.machine}")
    return fig


def families(curves: pd.DataFrame, cells: pd.DataFrame, picks: pd.DataFrame, problem: str, target: float, look):
    """One panel row per family, one column per size; neural solvers and the direct limit in grey for reference."""
    cur = curves[curves["problem"] == problem]
    cel = cells[(cells["problem"] == problem) & cells["ran"]]
    if cur.empty or cel.empty:
        return None
    fams = style.family_order(cel["family"].unique())
    sizes = sorted(cel["n"].unique())
    if not fams:
        return None
    members = {f: look.labels(cel[cel["family"] == f]) for f in fams}
    reference = "neural (grey, for reference)"
    widest = max((m + [reference] for m in members.values()), key=lambda m: max(map(len, m)))
    notes = ["Each row is one family; the neural solvers (grey, thick) and the fastest direct solver (grey "
             "vertical line: the limit) are repeated in every row for reference; the direct row shows each direct "
             "solver as a vertical line at its setup + solve time. Colours are the same in every figure. "
             f"x = setup + solve time; dotted grey: MSR {tag(target)}.", *look.notes.get(problem, [])]
    fig, axes, _ = canvas.grid(len(fams), len(sizes), panel=PANEL, legend=widest, notes=notes, sharex="col",
                               legend_rows=int(PANEL[1] / canvas.LINE_IN / 1.3))
    lines = _lines(cur)
    limit = picks[(picks["problem"] == problem) & (picks["role"] == "limit")]
    neural = cel[cel["family"] == LEARNED]
    for i, family in enumerate(fams):
        for j, n in enumerate(sizes):
            ax = axes[i, j]
            if family != LEARNED:
                for k, lab in enumerate(neural.loc[neural["n"] == n, "label"]):
                    _plot(ax, lines.get((lab, n)), GREY, linewidth=2.2, zorder=1,
                          label=reference if j == 0 and k == 0 else None)
            if family == LIMIT:     # the direct solvers themselves: one vertical line each
                for lab in members[family]:
                    _limit(ax, cells, lab, n, target, look.colour(lab), False)
                    ax.plot([], [], color=look.colour(lab), linestyle=LIMIT_DASH, label=lab)
            else:
                for lim in limit[limit["n"] == n].itertuples():
                    _limit(ax, cells, lim.label, n, target, GREY, False)
                for lab in members[family]:
                    _plot(ax, lines.get((lab, n)), look.colour(lab), linewidth=1.6, zorder=3, label=lab,
                          **line_style(family))
            _finish(ax, target)
            if i == 0:
                ax.set_title(size_title(cel, n), fontsize=10)
            if j == 0:
                ax.set_ylabel(f"{style.FAMILY_WORDS.get(family, family)}\nMSR")
            if i == len(fams) - 1:
                ax.set_xlabel("setup + solve time [s]")
        entries = {}
        for ax in axes[i]:
            for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
                entries.setdefault(lab, h)
        axes[i, -1].legend(list(entries.values()), list(entries), loc="upper left", bbox_to_anchor=(1.03, 1.0),
                           frameon=False, fontsize=8, borderaxespad=0.0,
                           ncol=-(-len(entries) // int(PANEL[1] / canvas.LINE_IN / 1.3)))
    _limits(axes)
    canvas.title(fig, f"{problem}: every solver, one row per family\n{look.machine}")
    return fig
