"""Console tables of a results DataFrame (used by the sweep summary and the check)."""

from __future__ import annotations

import math

import pandas as pd
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from harness.status import BROKE, FAILED, Status, status_words


def final_rows(df: pd.DataFrame) -> pd.DataFrame:
    """The last checkpoint of each job and repeat (or its only row)."""
    df = df.sort_values(["run_id", "repeat", "iteration"], na_position="first")
    return df.groupby(["run_id", "repeat"], as_index=False).tail(1)


def print_summary(df: pd.DataFrame, title: str = "sweep", console: Console | None = None) -> None:
    console = console or Console(width=None if Console().is_terminal else 160)
    last = final_rows(df).sort_values(["problem", "n", "family", "label"])
    table = Table(title=title, show_lines=False)
    for col in ("problem", "n", "solver", "status", "iters", "solve s", "setup s", "MSR", "MSE", "note"):
        table.add_column(col, justify="right" if col not in ("problem", "solver", "status", "note") else "left")

    def fmt(v, spec):
        return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, spec)

    for r in last.itertuples():
        style = "red" if r.status in BROKE else "yellow" if r.status == Status.UNAVAILABLE else None
        note = r.message if r.status in (*FAILED, Status.STALLED) else ""
        table.add_row(r.problem, str(r.n), r.label, status_words(r.status),
                      fmt(None if pd.isna(r.iteration) else int(r.iteration), "d"),
                      fmt(r.time_s, ".3f"), fmt(r.setup_s, ".3f"), fmt(r.msr, ".1e"), fmt(r.mse, ".1e"),
                      escape((note or "")[:70]), style=style)
    console.print(table)
