"""The headline figures: the neural solvers against the best solver of each classical family, and each family
in full (one panel row per family). Plain matplotlib: the panels hold different solvers per size.

Time axis: setup + solve time (the time from the start of the job), the same time that picks a family's best,
so the initial field (iteration 0, at the setup time) is drawable on the log axis.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from harness.status import BROKE

from . import style
from .metrics import FLOOR, LEARNED, LIMIT, size_name, tag

PANEL_W, PANEL_H = 3.8, 3.3
GREY = "#b0b0b0"


def _line_style(family: str) -> dict:
    dash = style.FAMILY_DASHES.get(family, "")
    return {"linestyle": "-"} if dash == "" else {"linestyle": (0, dash)}




def _mean_curve(curves: pd.DataFrame, label: str, n: int) -> pd.DataFrame:
    """One solver at one size: median MSR per iteration at its median setup+solve time (repeats pooled).

    ``attrs['failed']``: every repeat diverged / failed (the end is marked with an X)."""
    c = curves[(curves["label"] == label) & (curves["n"] == n)]
    failed = bool(len(c)) and c["status"].isin(BROKE).all()
    c = c.groupby("iteration", as_index=False).agg(x=("total_plot", "median"), y=("msr_plot", "median"))
    c = c[c["x"] > 0].sort_values("iteration")
    c.attrs["failed"] = failed
    return c


def _plot(ax, c: pd.DataFrame, colour, **kw) -> None:
    ax.plot(c["x"], c["y"], color=colour, **kw)
    if c.attrs.get("failed") and len(c):
        ax.plot(c["x"].iloc[-1], c["y"].iloc[-1], marker="X", markersize=8, color=colour,
                markeredgecolor="black", linestyle="none", zorder=6)


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
        ax.axvline(t, color=colour, linestyle=(0, (6, 2, 1, 2)), linewidth=1.6,
                   label=f"{label} (direct solver: the limit)" if text else None)


def _axes(rows: int, cols: int, *, sharex: str | bool) -> tuple[plt.Figure, np.ndarray]:
    fig, axes = plt.subplots(rows, cols, figsize=(PANEL_W * cols + 3.2, PANEL_H * rows + 0.9), squeeze=False,
                             sharey=True, sharex=sharex)
    return fig, axes


def _layout(fig: plt.Figure) -> None:
    """tight_layout below the two-line title."""
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.15 / fig.get_figheight()))


def _finish(ax, target: float) -> None:
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.axhline(target, color="0.45", linestyle=":", linewidth=1.0)
    ax.grid(True, which="major", alpha=0.3)


def _size_title(cells: pd.DataFrame, n: int) -> str:
    return size_name(cells, n)


def _ordered_legend(axes: np.ndarray, picks: pd.DataFrame) -> tuple[list, list[str]]:
    """Legend entries: neural solvers first, then the families in their fixed order, the limit last."""
    rank = {f: i for i, f in enumerate(style.family_order(picks["family"].unique()))}
    rank[LIMIT] = len(rank) + 1
    family = dict(zip(picks["label"], picks["family"], strict=False))
    entries = {}
    for ax in axes.flat:
        for h, name in zip(*ax.get_legend_handles_labels(), strict=True):
            entries.setdefault(name, h)
    order = sorted(entries, key=lambda name: (rank.get(family.get(name.split(" (")[0], ""), 99), name))
    return [entries[k] for k in order], order


def headline(curves: pd.DataFrame, cells: pd.DataFrame, picks: pd.DataFrame, problem: str, target: float,
             look) -> plt.Figure | None:
    """One panel per size: neural solvers (thick), each classical family's best, the direct limit line."""
    picks = picks[picks["problem"] == problem]
    if picks.empty:
        return None
    sizes = sorted(picks["n"].unique())
    cols = min(3, len(sizes))
    rows = -(-len(sizes) // cols)
    fig, axes = _axes(rows, cols, sharex=False)
    seen: set[str] = set()
    for ax, n in zip(axes.flat, sizes, strict=False):
        for p in picks[picks["n"] == n].itertuples():
            colour = look.palette.get(p.label, "k")
            if p.role == "limit":
                _limit(ax, cells, p.label, n, target, colour, p.label not in seen)
            else:
                c = _mean_curve(curves, p.label, n)
                if c.empty:
                    continue
                tail = "" if p.reached else f", not reaching {tag(target)}"
                fam = style.FAMILY_WORDS.get(p.family, p.family)
                name = f"{p.label} ({fam}{tail})" if p.role == "neural" else f"{p.label} (best {fam}{tail})"
                _plot(ax, c, colour, linewidth=2.8 if p.role == "neural" else 1.5,
                      zorder=4 if p.role == "neural" else 3, label=name if p.label not in seen else None,
                      **_line_style(p.family))
            seen.add(p.label)
        _finish(ax, target)
        ax.set_title(_size_title(cells, n), fontsize=10)
    for ax in list(axes.flat)[len(sizes):]:
        ax.set_visible(False)
    _limits(axes)
    for ax in axes[:, 0]:
        ax.set_ylabel("MSR (mean squared residual)")
    for ax in axes[-1, :]:
        ax.set_xlabel("setup + solve time [s]")
    fig.suptitle(f"{problem}: neural solvers vs the best of each classical family\n{look.machine}", fontsize=12)
    handles, names = _ordered_legend(axes, picks)
    _layout(fig)
    top = max(ax.get_position().y1 for ax in axes.flat)
    fig.legend(handles, names, loc="upper left", bbox_to_anchor=(1.0, top), frameon=False, fontsize=8)
    notes = [f"Best of a family = its solver with the fastest setup + solve time to MSR <= {tag(target)} at that "
             "size (chosen per size, so it can differ between panels); a family none of whose solvers reached the "
             "target shows its lowest-MSR solver. The direct solver is the vertical limit line at its setup + solve "
             f"time. Dotted grey: the target {tag(target)}. x = setup + solve time, so a curve starts at its setup "
             "time. Every solver of each family: the family figure.", *look.notes.get(problem, [])]
    from .figures import _caption  # the shared caption box

    _caption(fig, notes)
    return fig


def families(curves: pd.DataFrame, cells: pd.DataFrame, picks: pd.DataFrame, problem: str, target: float,
             look) -> plt.Figure | None:
    """One panel row per family, one column per size; neural solvers and the direct limit in grey for reference."""
    cur = curves[curves["problem"] == problem]
    cel = cells[(cells["problem"] == problem) & cells["ran"]]
    if cur.empty or cel.empty:
        return None
    fams = style.family_order(cel["family"].unique())
    sizes = sorted(cel["n"].unique())
    if not fams:
        return None
    fig, axes = _axes(len(fams), len(sizes), sharex="col")
    limit = picks[(picks["problem"] == problem) & (picks["role"] == "limit")]
    for i, family in enumerate(fams):
        members = look.labels(cel[cel["family"] == family])
        for j, n in enumerate(sizes):
            ax = axes[i, j]
            if family != LEARNED:
                for k, lab in enumerate(cel.loc[(cel["family"] == LEARNED) & (cel["n"] == n), "label"]):
                    c = _mean_curve(cur, lab, n)
                    _plot(ax, c, GREY, linewidth=2.2, zorder=1,
                          label="neural (grey, for reference)" if j == 0 and k == 0 else None)
            if family == LIMIT:     # the direct solvers themselves: one vertical line each
                for lab in members:
                    _limit(ax, cells, lab, n, target, look.palette.get(lab, "k"), False)
                    ax.plot([], [], color=look.palette.get(lab, "k"), linestyle=(0, (6, 2, 1, 2)), label=lab)
                _finish(ax, target)
                ax.set_ylim(FLOOR / 3, 1.0)
                if j == 0:
                    ax.set_ylabel(f"{style.FAMILY_WORDS.get(family, family)}\nMSR")
                if i == len(fams) - 1:
                    ax.set_xlabel("setup + solve time [s]")
                continue
            for lim in limit[limit["n"] == n].itertuples():
                _limit(ax, cells, lim.label, n, target, GREY, False)
            for lab in members:
                c = _mean_curve(cur, lab, n)
                if c.empty:
                    continue
                _plot(ax, c, look.palette.get(lab, "k"), linewidth=1.6, zorder=3, label=lab,
                      **_line_style(family))
            _finish(ax, target)
            if i == 0:
                ax.set_title(_size_title(cel, n), fontsize=10)
            if j == 0:
                ax.set_ylabel(f"{style.FAMILY_WORDS.get(family, family)}\nMSR")
            if i == len(fams) - 1:
                ax.set_xlabel("setup + solve time [s]")
        handles, labels = [], []
        for j in range(len(sizes)):
            h, lab = axes[i, j].get_legend_handles_labels()
            for hh, ll in zip(h, lab, strict=True):
                if ll not in labels:
                    handles.append(hh)
                    labels.append(ll)
        axes[i, -1].legend(handles, labels, loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False,
                           fontsize=8)
    _limits(axes)
    fig.suptitle(f"{problem}: every solver, one row per family\n{look.machine}", fontsize=12)
    _layout(fig)
    notes = ["Each row is one family; the neural solvers (grey, thick) and the fastest direct solver (grey "
             "vertical line: the limit) are repeated in every row for reference; the direct row shows each direct "
             "solver as a vertical line at its setup + solve time. Colours are the same in every figure. "
             f"x = setup + solve time; dotted grey: MSR {tag(target)}.", *look.notes.get(problem, [])]
    from .figures import _caption

    _caption(fig, notes)
    return fig
