"""Interactive plotly figures for ``index.html``: MSR against time and against iterations, one panel per size.

Each solver is one legend group (one trace per size), so a click on its legend entry hides it in every panel;
hovering a point shows solver, size, iteration, time, MSR and MSE. The plotly.js bundle is embedded once in
the page (``bundle``), so the page works offline.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.colors import to_hex

from .metrics import size_name

MAX_POINTS = 400        # per trace: long first-order runs are thinned (log-spaced in iteration), ends kept
AXES = {"time": ("time_plot", "solve time [s] (direct solvers: setup + solve)"),
        "iteration": ("iteration", "iteration (iteration 0, the initial field, is off the log axis)")}


def bundle() -> str:
    """plotly.js itself, to inline in a <script> tag."""
    from plotly.offline import get_plotlyjs

    return get_plotlyjs()


def _thin(c: pd.DataFrame) -> pd.DataFrame:
    if len(c) <= MAX_POINTS:
        return c
    keep = np.unique(np.concatenate([[0, len(c) - 1], np.geomspace(1, len(c), MAX_POINTS).astype(int) - 1]))
    return c.iloc[keep]


def _per_iteration(curves: pd.DataFrame) -> pd.DataFrame:
    """Repeats pooled: median time, MSR and MSE per (label, n, iteration)."""
    g = curves.groupby(["label", "family", "n", "iteration"], as_index=False, sort=True)
    return g.agg(time_plot=("time_plot", "median"), msr=("msr", "median"), mse=("mse", "median"),
                 msr_plot=("msr_plot", "median"))


def figure(curves: pd.DataFrame, problem: str, palette: dict, axis: str, title: str):
    """One plotly figure of one problem; ``axis`` is 'time' or 'iteration'."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    x_col, x_title = AXES[axis]
    data = _per_iteration(curves[curves["problem"] == problem])
    data = data[data[x_col] > 0]
    if data.empty:
        return None
    sizes = sorted(data["n"].unique())
    cols = min(3, len(sizes))
    rows = -(-len(sizes) // cols)
    titles = [size_name(curves[curves["problem"] == problem], n) for n in sizes]
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=titles,
                        horizontal_spacing=0.06, vertical_spacing=0.12)
    present = set(data["label"])
    order = [lab for lab in palette if lab in present] + sorted(present - set(palette))
    hover = ("<b>%{customdata[0]}</b><br>size n = %{customdata[1]}<br>iteration %{customdata[2]}<br>"
             "time %{customdata[3]:.4g} s<br>MSR %{customdata[4]:.3e}<br>MSE %{customdata[5]:.3e}<extra></extra>")
    for label in order:
        colour = to_hex(palette[label]) if label in palette else "#000000"
        first = True
        for k, n in enumerate(sizes):
            c = _thin(data[(data["label"] == label) & (data["n"] == n)])
            if c.empty:
                continue
            custom = np.column_stack([np.full(len(c), label, dtype=object), np.full(len(c), n),
                                      c["iteration"].astype(int), c["time_plot"], c["msr"], c["mse"]])
            family = str(c["family"].iloc[0])
            fig.add_trace(go.Scatter(
                x=c[x_col], y=c["msr_plot"], mode="lines", name=label, legendgroup=label, showlegend=first,
                legendgrouptitle=None, line={"color": colour, "width": 3 if family == "neural" else 1.5,
                                             "dash": "solid" if family in ("neural", "direct") else "dot"
                                             if family == "first_order" else "dash" if family == "krylov"
                                             else "dashdot"},
                customdata=custom, hovertemplate=hover), row=k // cols + 1, col=k % cols + 1)
            first = False
    fig.update_xaxes(type="log", title_text=x_title, title_font={"size": 11})
    fig.update_yaxes(type="log", exponentformat="power", title_text="MSR", title_font={"size": 11})
    fig.update_layout(title=title, height=380 * rows + 80, template="plotly_white", hovermode="closest",
                      legend={"title": {"text": "solver (click: hide / show)"}, "font": {"size": 11}},
                      margin={"l": 60, "r": 20, "t": 90, "b": 50})
    return fig


def html_div(fig, div_id: str) -> str:
    """The figure as a <div> plus its script; the plotly.js bundle is not repeated (see ``bundle``)."""
    import plotly.io as pio

    return pio.to_html(fig, include_plotlyjs=False, full_html=False, div_id=div_id,
                       config={"displaylogo": False, "responsive": True})
