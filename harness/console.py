"""Console tables of a results DataFrame (used by the sweep summary and the check)."""

from __future__ import annotations

import pandas as pd
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from harness.formats import count, number
from harness.results import final_rows
from harness.status import BROKE, FAILED, Status, status_words


def print_summary(df: pd.DataFrame, title: str = "sweep", console: Console | None = None,
                  target_set: bool = False) -> None:
    """One row per solve; ``target_set``: the sweep had a stop target (budget.target_msr), so a solver that
    stopped by itself stopped above it."""
    console = console or Console(width=None if Console().is_terminal else 160)
    last = final_rows(df).sort_values(["problem", "n", "family", "label"])
    table = Table(title=title, show_lines=False)
    for col in ("problem", "n", "solver", "status", "iters", "solve s", "setup s", "MSR", "MSE", "note"):
        table.add_column(col, justify="right" if col not in ("problem", "solver", "status", "note") else "left")

    for r in last.itertuples():
        style = "red" if r.status in BROKE else "yellow" if r.status == Status.UNAVAILABLE else None
        note = r.message if r.status in (*FAILED, Status.STALLED) else ""
        table.add_row(r.problem, str(r.n), r.label, status_words(r.status, target_set),
                      count(r.iteration),
                      number(r.time_s, ".3f"), number(r.setup_s, ".3f"), number(r.msr, ".1e"), number(r.mse, ".1e"),
                      escape((note or "")[:70]), style=style)
    console.print(table)
