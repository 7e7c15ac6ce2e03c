"""Interactive figures for ``index.html``: MSR against time and against iterations, one panel per size.

Each solver is one legend group (one trace per size), so a click on its legend entry hides it in every panel;
hovering a point shows solver, size, iteration, time, MSR and MSE. A figure is plotly.js's own JSON
(``{"data", "layout"}``), written directly: numbers as base64 typed arrays (``{"dtype", "bdata"}``, plotly.js
>= 2.28), the hover text once per figure (the layout's trace template) rather than once per point, and the
curves thinned for drawing (``curves.pooled``). plotly.js itself is embedded once per page, gzip-compressed
(``bundle``), so the page works offline.
"""

from __future__ import annotations

import base64
import gzip
import json

import numpy as np
import pandas as pd
from matplotlib.colors import to_hex

from .curves import pooled
from .metrics import size_name

AXES = {"time": ("time_plot", "solve time [s] (direct solvers: setup + solve)"),
        "iteration": ("iteration", "iteration (iteration 0, the initial field, is off the log axis)")}
HOVER = ("<b>%{fullData.name}</b><br>size n = %{meta}<br>iteration %{customdata[0]}<br>"
         "time %{customdata[1]:.4g} s<br>MSR %{customdata[2]:.3e}<br>MSE %{customdata[3]:.3e}<extra></extra>")
DASH = {"neural": "solid", "direct": "solid", "first_order": "dot", "krylov": "dash"}
GAP_X, GAP_Y = 0.06, 0.12


def bundle() -> bytes:
    """plotly.js, gzip-compressed (the page inflates it in the browser)."""
    from plotly.offline import get_plotlyjs

    return gzip.compress(get_plotlyjs().encode("utf-8"), compresslevel=6, mtime=0)


def typed(values, dtype: str = "f4") -> dict:
    """A plotly.js typed array: little-endian values, base64-encoded (a 2-D array gives its shape)."""
    a = np.ascontiguousarray(np.asarray(values, dtype=f"<{dtype}"))
    out = {"dtype": dtype, "bdata": base64.b64encode(a.tobytes()).decode("ascii")}
    if a.ndim == 2:
        out["shape"] = f"{a.shape[0]},{a.shape[1]}"
    return out


def _per_iteration(curves: pd.DataFrame) -> pd.DataFrame:
    """The hover values per drawn point: median time, MSR and MSE per (label, n, iteration) over repeats."""
    g = curves.groupby(["label", "n", "iteration"], sort=False)
    return g.agg(time=("time_plot", "median"), msr=("msr", "median"), mse=("mse", "median")).reset_index()


def _domains(count: int, cols: int) -> list[tuple[list[float], list[float]]]:
    rows = -(-count // cols)
    w = (1 - (cols - 1) * GAP_X) / cols
    h = (1 - (rows - 1) * GAP_Y) / rows
    out = []
    for k in range(count):
        r, c = divmod(k, cols)
        top = 1 - r * (h + GAP_Y)
        out.append(([c * (w + GAP_X), c * (w + GAP_X) + w], [top - h, top]))
    return out


def figure(curves: pd.DataFrame, problem: str, palette: dict, axis: str, title: str) -> dict | None:
    """One figure of one problem as plotly.js JSON; ``axis`` is 'time' or 'iteration'."""
    x_col, x_title = AXES[axis]
    data = curves[(curves["problem"] == problem) & (curves[x_col] > 0)]
    if data.empty:
        return None
    lines = pooled(data, x_col, "msr_plot").merge(_per_iteration(data), on=["label", "n", "iteration"], how="left")
    sizes = sorted(lines["n"].unique())
    cols = min(3, len(sizes))
    rows = -(-len(sizes) // cols)
    layout = {"title": {"text": title}, "height": 380 * rows + 80, "template": {"data": {"scatter": [
                  {"hovertemplate": HOVER}]}, "layout": {}},
              "paper_bgcolor": "white", "plot_bgcolor": "white", "hovermode": "closest",
              "legend": {"title": {"text": "solver (click: hide / show)"}, "font": {"size": 11}},
              "margin": {"l": 60, "r": 20, "t": 90, "b": 50}, "annotations": []}
    for k, (xd, yd) in enumerate(_domains(len(sizes), cols)):
        s = "" if k == 0 else str(k + 1)
        grid = {"type": "log", "gridcolor": "#e5e5e5", "zeroline": False, "linecolor": "#bbb", "showline": True}
        layout[f"xaxis{s}"] = {**grid, "domain": xd, "anchor": f"y{s}", "title": {"text": x_title,
                                                                                   "font": {"size": 11}}}
        layout[f"yaxis{s}"] = {**grid, "domain": yd, "anchor": f"x{s}", "exponentformat": "power",
                               "title": {"text": "MSR", "font": {"size": 11}}}
        layout["annotations"].append({"text": size_name(data, sizes[k]), "showarrow": False, "xref": "paper",
                                      "yref": "paper", "x": sum(xd) / 2, "y": yd[1], "xanchor": "center",
                                      "yanchor": "bottom", "font": {"size": 13}})
    present = set(lines["label"])
    order = [lab for lab in palette if lab in present] + sorted(present - set(palette))
    rank = {lab: i for i, lab in enumerate(order)}
    axis_of = {n: "" if k == 0 else str(k + 1) for k, n in enumerate(sizes)}
    lines = lines.assign(_rank=lines["label"].map(rank)).sort_values(["_rank", "n", "iteration"], kind="stable")
    codes = lines.groupby(["_rank", "n"], sort=False).ngroup().to_numpy()
    starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]])   # one trace per (label, n), legend order
    ends = np.r_[starts[1:], len(lines)]
    x, y = lines["x"].to_numpy(), lines["y"].to_numpy()
    hover = lines[["iteration", "time", "msr", "mse"]].to_numpy(dtype=float)   # float32: 7 digits, shown 4
    label_at, n_at, family_at = (lines[c].to_numpy() for c in ("label", "n", "family"))
    colours = {lab: to_hex(palette[lab]) if lab in palette else "#000000" for lab in order}
    traces, shown = [], set()
    for a, b in zip(starts, ends, strict=True):
        label, n, family = label_at[a], int(n_at[a]), str(family_at[a])
        traces.append({
            "type": "scatter", "mode": "lines", "name": label, "legendgroup": label, "showlegend": label not in shown,
            "x": typed(x[a:b]), "y": typed(y[a:b]), "meta": n, "customdata": typed(hover[a:b]),
            "line": {"color": colours[label], "width": 3 if family == "neural" else 1.5,
                     "dash": DASH.get(family, "dashdot")},
            "xaxis": f"x{axis_of[n]}", "yaxis": f"y{axis_of[n]}"})
        shown.add(label)
    return {"data": traces, "layout": layout}


def to_json(fig: dict) -> str:
    """The figure as JSON that is safe inside a <script> element."""
    return json.dumps(fig, separators=(",", ":"), allow_nan=False).replace("</", "<\\/")
