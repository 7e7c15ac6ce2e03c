"""One grouping of the report (all solvers, or one comparison of the paper): what it shows (``part``), the
static figures it asks for (``tasks``: ``render.Task``s, drawn all together while the rest is computed), and
its tables and interactive figures (``section``)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from harness.status import FAILED

from . import costs, groups, metrics, render, tables
from .document import Section, Table
from .metrics import tag

TITLES = {"headline": "neural solvers vs the best of each classical family",
          "families": "every solver, one row per family", "msr_time": "MSR vs solve time",
          "msr_iterations": "MSR vs iterations",
          "mse_time": "MSE to ground truth vs solve time", "scaling": "time to target vs unknowns",
          "setup_solve": "setup vs solve time"}
INTERACTIVE = ("msr_time", "msr_iterations")   # shown on the page as plotly figures (the PNG is linked)


@dataclass
class Context:
    """What every section of one report shares."""
    out: object                    # the report folder (Path)
    target: float
    reference: str
    palette: dict
    metadata: dict
    infos: dict
    draw: bool = True
    warnings: list[str] = field(default_factory=list)
    cells: dict = field(default_factory=dict)   # the cell tables already computed, by the set of jobs they hold


def _notes(failures: pd.DataFrame) -> dict[str, list[str]]:
    """problem -> one line per kind of failure (solvers that failed alike share a line), for the captions."""
    out: dict[str, dict[str, list[str]]] = {}
    for r in failures.itertuples():
        drawn = "drawn up to the failure" if r.ran else "not drawn"
        sizes = f" (n = {r.sizes})" if r.sizes else ""
        msg = r.message if len(r.message) < 140 else r.message[:137] + "..."
        out.setdefault(r.problem, {}).setdefault(f"{r.status}{sizes}, {drawn}: {msg}", []).append(r.label)
    lines = {p: [f"{', '.join(labels)}: {what}" for what, labels in kinds.items()] for p, kinds in out.items()}
    return {p: [f"Failed / unavailable: {ls[0]}", *ls[1:]] for p, ls in lines.items()}


def _with_absent(table: pd.DataFrame, absent: pd.DataFrame, **defaults) -> pd.DataFrame:
    """``table`` plus one row per absent grouping member (``defaults`` fill the other columns)."""
    if absent.empty:
        return table
    extra = absent.assign(**defaults)
    return extra if table.empty else pd.concat([table, extra.reindex(columns=table.columns)], ignore_index=True)


def cells_of(jobs: pd.DataFrame, ctx: Context) -> pd.DataFrame | None:
    """The cell table of ``jobs`` (with speedups), computed once per set of jobs (the verdict and the
    'All solvers' section read the same one)."""
    if jobs.empty:
        return None
    key = frozenset(jobs["job"])
    if key not in ctx.cells:
        cells = metrics.cell_table(jobs, metrics.targets_for(ctx.target))
        ctx.cells[key] = metrics.add_speedup(cells, ctx.target, ctx.reference)
    return ctx.cells[key]


def _tables(problems: list[str], cells: pd.DataFrame | None, rank: pd.DataFrame, fails: pd.DataFrame, *,
            target: float, reference: str, ref: str | None) -> tuple[list[Table], list[Table], Table]:
    """(rankings, per-size tables, failures)."""
    targets = metrics.targets_for(target)
    ranks, sizes = [], []
    for problem in problems:
        r = rank[rank["problem"] == problem] if not rank.empty else rank
        if not r.empty:
            ranks.append(Table(
                f"{problem}: ranking by median over sizes of setup+solve time to MSR <= {tag(target)}",
                tables.ranking_table(r, target, ref),
                "A size where the target was not reached counts as infinitely slow; solvers that never reach it "
                "are ranked last (then by sizes reached and best MSR). Unavailable solvers get no rank."))
        if cells is None:
            continue
        for n in sorted(cells.loc[cells["problem"] == problem, "n"].unique()):
            cp = cells[(cells["problem"] == problem) & (cells["n"] == n)]
            sizes.append(Table(
                f"{problem}, {metrics.size_name(cp, n)}",
                tables.size_table(cp, targets, target, ref),
                f"Times in seconds, iterations interpolated; median [min-max] over repeats. Speedup = {ref or 'cg'}'s "
                f"setup+solve time to {tag(target)} / this solver's (> 1 is faster). A solve time past the job's "
                "max_seconds says by how much: one iteration can outrun the clock, which is checked between "
                "iterations." + ("" if ref else f" No {reference} in these results: no speedups.")))
    fail = Table("Failed, diverged or unavailable solvers", tables.failure_table(fails),
                 "Diverged or failed runs are drawn in the figures up to their last finite checkpoint.")
    return ranks, sizes, fail


def _extra_tables(sub: pd.DataFrame, jobs: pd.DataFrame, cells: pd.DataFrame, infos: dict,
                  target: float) -> list[Table]:
    """Scaling fits, the training bill and the thread speed-ups (each only when it has rows)."""
    out = [Table(f"Scaling: t ~ N^p, time to MSR <= {tag(target)}", tables.scaling_table(
        metrics.fit_exponents(cells, target, "solve"), metrics.fit_exponents(cells, target, "total")),
        f"p is fitted by least squares on log-log over the {metrics.FIT_SIZES} largest sizes that reached the "
        "target (listed); smaller sizes are left out because fixed costs (setup, Python overhead, thread start) "
        "flatten them. Warning: a smaller size whose time is more than "
        f"{metrics.OVERHEAD:g}x the fit's prediction, i.e. overhead dominates it.")]
    bill = costs.training_bill(cells, costs.training_of(sub, infos), target)
    if not bill.empty:
        out.append(Table("Training bill of the neural solvers", tables.bill_table(bill, target),
                         "Solves to pay back the training = training time / (best other solver's setup+solve time "
                         f"to MSR <= {tag(target)} - the neural solver's), at each size; 'never' when the neural "
                         "solver is not faster per solve. Training time as recorded by the solver in its trace "
                         "(training hardware may differ from the solve machine); 'training cost not recorded' "
                         "when the trace has none. Counting training cost: McGreivy & Hakim, Nature Machine "
                         "Intelligence 2024."))
    threads = costs.thread_speedups(jobs, target)
    if not threads.empty:
        out.append(Table("What extra cores buy each solver", tables.threads_table(threads, target),
                         f"The same solver, problem and size run with different thread counts; speed-up = "
                         f"setup+solve time to MSR <= {tag(target)} with the fewest threads / with the most "
                         "(> 1: the extra cores help). Median over repeats."))
    return out


def _tasks(grouping: groups.Grouping, problems: list[str], sub: pd.DataFrame, jobs: pd.DataFrame,
           cells: pd.DataFrame, fails: pd.DataFrame, ctx: Context) -> list[render.Task]:
    """One task per static figure of the grouping (drawn later, in parallel: ``render.draw_all``)."""
    from . import figures, machine, panels  # matplotlib only when figures are drawn

    look = figures.Look(palette=ctx.palette, machine=machine.machine(ctx.metadata, sub["run_id"].dropna().astype(str)),
                        repeats=bool((cells["repeats"] > 1).any()), notes=_notes(fails))
    curves = metrics.curve_data(sub)
    picks = metrics.family_best(cells, ctx.target)
    target = ctx.target
    out = []
    for problem in problems:
        cur, job, cel = (t[t["problem"] == problem] for t in (curves, jobs, cells))

        def draw(kind=None, cur=cur, job=job, cel=cel, problem=problem):
            if kind in ("headline", "families"):
                return getattr(panels, kind)(cur, cel, picks, problem, target, look)
            if kind in ("msr_time", "msr_iterations", "mse_time"):
                return getattr(figures, kind)(cur, problem, look)
            if kind == "setup_solve":
                return figures.setup_solve(job, problem, target, look)
            return _scaling(figures, job, cel, problem, target, look)

        for kind in grouping.figures:
            out.append(render.Task(f"{problem}: {TITLES[kind]}", ctx.out / "figures" / grouping.name /
                                   f"{kind}_{problem}", lambda kind=kind, draw=draw: draw(kind), kind))
    bill = costs.training_bill(cells, costs.training_of(sub, ctx.infos), target)
    if not bill.empty and bill["training_s"].notna().any():
        out.append(render.Task("training bill: solves to pay back the training",
                               ctx.out / "figures" / grouping.name / "training_bill",
                               lambda: figures.training_bill(bill, target, ctx.palette)))
    return out


def _scaling(figures, jobs: pd.DataFrame, cells: pd.DataFrame, problem: str, target: float, look):
    solve = metrics.fit_exponents(cells, target, "solve").set_index("label")["exponent"]
    total = metrics.fit_exponents(cells, target, "total").set_index("label")["exponent"]
    exps = {lab: (solve.get(lab, np.nan), total.get(lab, np.nan)) for lab in cells["label"]}
    ran = cells[cells["ran"]]
    unreached = sorted(set(ran["label"]) - set(ran.loc[np.isfinite(ran[f"t@{tag(target)}"]), "label"]))
    return figures.scaling(metrics.target_times(jobs, target), exps, problem, target, look, unreached)


def _interactive(grouping: groups.Grouping, problems: list[str], sub: pd.DataFrame, ctx: Context) -> list:
    """(title, element id, plotly.js figure) for MSR vs time and vs iterations, per problem."""
    from . import interactive

    curves = metrics.curve_data(sub)
    made = []
    for problem in problems:
        for axis, what in (("time", "solve time"), ("iteration", "iterations")):
            title = f"{problem}: MSR vs {what}"
            fig = interactive.figure(curves, problem, ctx.palette, axis, title)
            if fig is not None:
                made.append((title, re.sub(r"[^A-Za-z0-9_-]", "_", f"plot-{grouping.name}-{problem}-{axis}"), fig))
    return made


@dataclass
class Part:
    """What one grouping shows: its rows, jobs and cells (None when no job of it is in the results)."""
    grouping: groups.Grouping
    sub: pd.DataFrame
    missing: list[str]
    problems: list[str]
    jobs: pd.DataFrame
    cells: pd.DataFrame | None
    fails: pd.DataFrame


def part(grouping: groups.Grouping, df: pd.DataFrame, jobs_all: pd.DataFrame, ctx: Context) -> Part:
    sub, missing = groups.select(df, grouping)
    problems = sorted((df if sub.empty else sub)["problem"].unique())
    jobs = jobs_all[jobs_all["job"].isin(set(sub["job"]))]
    absent = groups.absent_rows(missing, problems)
    fails = _with_absent(metrics.failures(jobs, FAILED), absent, sizes="all", ran=False)
    return Part(grouping, sub, missing, problems, jobs, cells_of(jobs, ctx), fails)


def tasks(p: Part, ctx: Context) -> list[render.Task]:
    """The tasks that draw the grouping's static figures (none without cells, or with ``ctx.draw`` off)."""
    if p.cells is None or not ctx.draw:
        return []
    return _tasks(p.grouping, p.problems, p.sub, p.jobs, p.cells, p.fails, ctx)


def section(p: Part, ctx: Context) -> Section:
    """One grouping's tables and interactive figures (its static figures are added once drawn)."""
    grouping, cells, problems = p.grouping, p.cells, p.problems
    ref = metrics.reference_label(cells, ctx.reference) if cells is not None else None
    absent = groups.absent_rows(p.missing, problems)
    rank = _with_absent(metrics.ranking(cells, ctx.target) if cells is not None else pd.DataFrame(), absent,
                        family="", rank=np.nan, sizes=0, ran=0, reached=0, median_total=np.nan,
                        median_solve=np.nan, median_speedup=np.nan, median_best_msr=np.nan)
    sec = Section(grouping.title + (f" (paper: {grouping.paper})" if grouping.paper else ""))
    if grouping.paper:
        sec.intro.append(f"Sweep preset: python -m harness.run +sweep={grouping.name}; report: "
                         f"python -m harness.report --mode {grouping.name}. Members: {', '.join(grouping.solvers)}.")
    ranks, sizes, fail = _tables(problems, cells, rank, p.fails, target=ctx.target, reference=ctx.reference,
                                 ref=ref)
    extra = _extra_tables(p.sub, p.jobs, cells, ctx.infos, ctx.target) if cells is not None else []
    sec.tables = ranks + extra + sizes + [fail]
    if cells is None:
        return sec
    if grouping.statements:
        sec.statements = {f"{q}: {TITLES[k]}": grouping.statement(k) for k in TITLES for q in problems
                          if grouping.statement(k)}
    if ctx.draw:
        try:
            sec.interactive = _interactive(grouping, problems, p.sub, ctx)
        except ImportError as exc:
            ctx.warnings.append(f"no interactive figures: {exc} (pip install plotly)")
    return sec
