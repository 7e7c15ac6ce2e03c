"""Assemble a report folder: load a sweep, compute the tables, render figures, write summary.md + index.html."""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

from harness import results
from harness.status import FAILED

from . import costs, groups, html, machine, markdown, metrics, style, tables
from .document import Document, Figure, Section, Table
from .metrics import FLOOR, tag

RULE = ("Time to target: the first checkpoint whose MSR is at or below the target is located and the crossing "
        "is interpolated between it and the previous checkpoint, taking log10(MSR) as linear in solve time (and "
        "in iteration count); if the very first checkpoint already meets the target, or the solver is direct "
        "(one step, nothing to interpolate), that checkpoint's own time is used. "
        "Solve time excludes setup; 'setup+solve' adds the job's setup time (direct solvers do their work in "
        f"setup). MSR is floored at {FLOOR:g} before taking logarithms.")
METRICS = ("MSR = mean squared residual of the discrete equations over the non-Dirichlet nodes; MSE = mean squared "
           "error to the ground truth (analytic solution, or a direct-solver reference where the problem has no "
           "analytic one). Both are computed by the harness for every solver alike.")


@dataclass
class Outcome:
    folder: Path                                   # the report folder
    warnings: list[str] = field(default_factory=list)
    jobs: int = 0
    jobs_ran: int = 0


def default_folder(source: Path, df: pd.DataFrame, mode: str, root: Path) -> Path:
    """reports/<sweep>_<timestamp>[_<mode>]: the sweep's own timestamp folder name when it has one."""
    sweeps = sorted(set(df["sweep"]) - {""}) or [source.name]
    name = "+".join(sweeps[:3]) + ("+more" if len(sweeps) > 3 else "")
    stamp = source.name if source.parent.name in sweeps and source.name != name else (
        datetime.now().strftime("%Y-%m-%d_%H-%M-%S"))
    suffix = "" if mode == "all" else f"_{mode}"
    return root / re.sub(r"[^A-Za-z0-9_.+=-]", "_", f"{name}_{stamp}{suffix}")


def claim(folder: Path) -> Path:
    """Create ``folder``, or ``folder-2``, ``folder-3``, ... if it exists: two reports of one sweep (even started
    in the same second) never share a folder, and an earlier report is never overwritten."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    for k in range(1, 10_000):
        candidate = folder if k == 1 else folder.with_name(f"{folder.name}-{k}")
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            continue
    raise results.ResultsError(f"{folder}: 9,999 reports of this sweep already; remove some or give --out")


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


TITLES = {"headline": "neural solvers vs the best of each classical family",
          "families": "every solver, one row per family", "msr_time": "MSR vs solve time",
          "msr_iterations": "MSR vs iterations",
          "mse_time": "MSE to ground truth vs solve time", "scaling": "time to target vs unknowns",
          "setup_solve": "setup vs solve time"}


def _with_absent(table: pd.DataFrame, absent: pd.DataFrame, **defaults) -> pd.DataFrame:
    """``table`` plus one row per absent grouping member (``defaults`` fill the other columns)."""
    if absent.empty:
        return table
    extra = absent.assign(**defaults)
    return extra if table.empty else pd.concat([table, extra.reindex(columns=table.columns)], ignore_index=True)


def _tables(problems: list[str], cells: pd.DataFrame | None, rank: pd.DataFrame, fails: pd.DataFrame, *,
            target: float, reference: str, ref: str | None) -> list[Table]:
    """Per problem: the ranking, then one table per grid size; last the failures."""
    targets = metrics.targets_for(target)
    out = []
    for problem in problems:
        r = rank[rank["problem"] == problem] if not rank.empty else rank
        if not r.empty:
            out.append(Table(
                f"{problem}: ranking by median over sizes of setup+solve time to MSR <= {tag(target)}",
                tables.ranking_table(r, target, ref),
                "A size where the target was not reached counts as infinitely slow; solvers that never reach it "
                "are ranked last (then by sizes reached and best MSR). Unavailable solvers get no rank."))
        if cells is None:
            continue
        for n in sorted(cells.loc[cells["problem"] == problem, "n"].unique()):
            cp = cells[(cells["problem"] == problem) & (cells["n"] == n)]
            out.append(Table(
                f"{problem}, {metrics.size_name(cp, n)}",
                tables.size_table(cp, targets, target, ref),
                f"Times in seconds, iterations interpolated; median [min-max] over repeats. Speedup = {ref or 'cg'}'s "
                f"setup+solve time to {tag(target)} / this solver's (> 1 is faster)."
                + ("" if ref else f" No {reference} in these results: no speedups.")))
    out.append(Table("Failed, diverged or unavailable solvers", tables.failure_table(fails),
                     "Diverged or failed runs are drawn in the figures up to their last finite checkpoint."))
    return out


def _figures(grouping: groups.Grouping, problems: list[str], sub: pd.DataFrame, jobs: pd.DataFrame,
             cells: pd.DataFrame, fails: pd.DataFrame, *, metadata: dict, palette: dict, target: float,
             out: Path, outcome: Outcome) -> list[Figure]:
    """Render the grouping's figures per problem; a figure that fails is reported, not fatal."""
    from . import figures  # matplotlib only when figures are drawn

    look = figures.Look(palette=palette, machine=machine.machine(metadata, sub["run_id"].dropna().astype(str)),
                        repeats=bool((cells["repeats"] > 1).any()), notes=_notes(fails))
    curves = metrics.curve_data(sub)
    picks = metrics.family_best(cells, target)
    drawn = []
    for problem in problems:
        data = [t[t["problem"] == problem] for t in (curves, jobs, cells)]
        for kind in grouping.figures:
            stem = out / "figures" / grouping.name / f"{kind}_{problem}"
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", UserWarning)
                    fig = _draw(figures, kind, *data, problem=problem, target=target, look=look, picks=picks)
                if fig is None:
                    continue
                png, svg = figures.save(fig, stem)
            except Exception as exc:  # noqa: BLE001  (one bad figure must not lose the rest of the report)
                outcome.warnings.append(f"figure {stem.name} failed: {type(exc).__name__}: {exc}")
                continue
            drawn.append(Figure(f"{problem}: {TITLES[kind]}", png.relative_to(out), svg.relative_to(out)))
    return drawn


def _draw(figures, kind: str, curves: pd.DataFrame, jobs: pd.DataFrame, cells: pd.DataFrame, *, problem: str,
          target: float, look, picks: pd.DataFrame):
    """One figure of one problem (None when there is nothing to draw)."""
    if kind in ("headline", "families"):
        from . import panels

        return getattr(panels, kind)(curves, cells, picks, problem, target, look)
    if kind in ("msr_time", "msr_iterations", "mse_time"):
        return getattr(figures, kind)(curves, problem, look)
    if kind == "setup_solve":
        return figures.setup_solve(jobs, problem, target, look)
    if kind != "scaling":
        raise ValueError(f"unknown figure {kind!r}")
    solve = metrics.fit_exponents(cells, target, "solve").set_index("label")["exponent"]
    total = metrics.fit_exponents(cells, target, "total").set_index("label")["exponent"]
    exps = {lab: (solve.get(lab, np.nan), total.get(lab, np.nan)) for lab in cells["label"]}
    ran = cells[cells["ran"]]
    unreached = sorted(set(ran["label"]) - set(ran.loc[np.isfinite(ran[f"t@{tag(target)}"]), "label"]))
    return figures.scaling(metrics.target_times(jobs, target), exps, problem, target, look, unreached)


def section(grouping: groups.Grouping, df: pd.DataFrame, jobs_all: pd.DataFrame, metadata: dict, *,
            out: Path, target: float, reference: str, palette: dict, outcome: Outcome,
            draw: bool = True, infos: dict | None = None) -> Section:
    """One grouping's tables and figures."""
    sub, missing = groups.select(df, grouping)
    problems = sorted((df if sub.empty else sub)["problem"].unique())
    jobs = jobs_all[jobs_all["job"].isin(set(sub["job"]))]
    cells = None
    if not jobs.empty:
        cells = metrics.add_speedup(metrics.cell_table(jobs, metrics.targets_for(target)), target, reference)
    ref = metrics.reference_label(cells, reference) if cells is not None else None
    absent = groups.absent_rows(missing, problems)
    fails = _with_absent(metrics.failures(jobs, FAILED), absent, sizes="all", ran=False)
    rank = _with_absent(metrics.ranking(cells, target) if cells is not None else pd.DataFrame(), absent,
                        family="", rank=np.nan, sizes=0, ran=0, reached=0, median_total=np.nan,
                        median_solve=np.nan, median_speedup=np.nan, median_best_msr=np.nan)

    sec = Section(grouping.title + (f" (paper: {grouping.paper})" if grouping.paper else ""))
    if grouping.paper:
        sec.intro.append(f"Sweep preset: python -m harness.run +sweep={grouping.name}; report: "
                         f"python -m harness.report --mode {grouping.name}. Members: {', '.join(grouping.solvers)}.")
    sec.tables = _tables(problems, cells, rank, fails, target=target, reference=reference, ref=ref)
    if cells is None:
        return sec
    ranks = [t for t in sec.tables if t.title.startswith(tuple(f"{p}: ranking" for p in problems))]
    rest = [t for t in sec.tables if t not in ranks]
    sec.tables = ranks + _extra_tables(sub, jobs, cells, infos or {}, target) + rest
    if draw:
        sec.figures = _figures(grouping, problems, sub, jobs, cells, fails, metadata=metadata, palette=palette,
                               target=target, out=out, outcome=outcome)
        sec.figures += _bill_figure(grouping, sub, cells, infos or {}, target, out, palette, outcome)
        sec.interactive = _interactive(grouping, problems, sub, palette, outcome)
    if grouping.statements:
        sec.statements = {f"{p}: {TITLES[k]}": grouping.statement(k) for k in TITLES for p in problems
                          if grouping.statement(k)}
    return sec


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


def _bill_figure(grouping, sub, cells, infos, target, out, palette, outcome) -> list[Figure]:
    bill = costs.training_bill(cells, costs.training_of(sub, infos), target)
    if bill.empty or bill["training_s"].isna().all():
        return []
    from . import figures

    stem = out / "figures" / grouping.name / "training_bill"
    try:
        fig = figures.training_bill(bill, target, palette)
        png, svg = figures.save(fig, stem)
    except Exception as exc:  # noqa: BLE001
        outcome.warnings.append(f"figure {stem.name} failed: {type(exc).__name__}: {exc}")
        return []
    return [Figure("training bill: solves to pay back the training", png.relative_to(out), svg.relative_to(out))]


def _interactive(grouping, problems, sub, palette, outcome) -> list[tuple[str, str]]:
    """Plotly versions of MSR vs time and vs iterations; none (with a warning) if plotly is missing."""
    try:
        from . import interactive
    except ImportError as exc:
        outcome.warnings.append(f"no interactive figures: {exc} (pip install plotly)")
        return []
    curves = metrics.curve_data(sub)
    made = []
    for problem in problems:
        for axis, what in (("time", "solve time"), ("iteration", "iterations")):
            title = f"{problem}: MSR vs {what}"
            try:
                fig = interactive.figure(curves, problem, palette, axis, title)
            except ImportError as exc:
                outcome.warnings.append(f"no interactive figures: {exc} (pip install plotly)")
                return made
            if fig is not None:
                div = re.sub(r"[^A-Za-z0-9_-]", "_", f"plot-{grouping.name}-{problem}-{axis}")
                made.append((title, interactive.html_div(fig, div)))
    return made


def build(source: str | Path, *, out: str | Path | None = None, target: float = 1e-10, mode: str = "all",
          reference: str = "cg", reports_root: str | Path = "reports", draw: bool = True) -> Outcome:
    """Write the report for the results under ``source``; raises ``results.ResultsError`` if nothing is usable."""
    source = Path(source)
    grouping_list = groups.groupings(mode)
    raw = results.load(source)
    metadata = results.load_metadata(source)
    df = metrics.prepare(raw)
    folder = Path(out) if out else claim(default_folder(source, df, mode, Path(reports_root)))
    folder.mkdir(parents=True, exist_ok=True)
    outcome = Outcome(folder)
    outcome.warnings += [f"skipped {p}: {why}" for p, why in raw.attrs.get("skipped", [])]
    if df.attrs.get("superseded"):
        gone = df.attrs["superseded"]
        more = f"; and {len(gone) - 5} more" if len(gone) > 5 else ""
        outcome.warnings.append(f"{len(gone)} job(s) superseded by a newer run of the same job (same sweep, "
                                f"identity and repeat; the newest is used): {'; '.join(gone[:5])}{more}")
    if groups.ALL in groups.groupings(mode):
        hidden = df.loc[~groups.one_sweep_per_cell(df), "job"].nunique()
        if hidden:
            outcome.warnings.append(f"{hidden} job(s) not shown under 'All solvers': another, newer sweep ran "
                                    "the same problem, size and solver, and each cell is read from one sweep")
    jobs_all = metrics.job_table(df, metrics.targets_for(target))
    # jobs_all has a row per repeat ("<run_id>#<repeat>"); a job ran if any of its repeats did
    per_job = jobs_all.groupby(jobs_all["job"].str.rsplit("#", n=1).str[0])["ran"].any()
    outcome.jobs, outcome.jobs_ran = len(per_job), int(per_job.sum())
    kinds = df.drop_duplicates("label")
    palette = style.palette(kinds["label"], kinds["family"], kinds["solver"])
    infos = costs.solver_info(source)
    sections = [section(g, df, jobs_all, metadata, out=folder, target=target, reference=reference,
                        palette=palette, outcome=outcome, draw=draw, infos=infos) for g in grouping_list]
    sweeps = ", ".join(sorted(set(df["sweep"]) - {""})) or "unknown"
    intro = [(f"Results: {source} (sweep {sweeps}); {outcome.jobs} jobs, {outcome.jobs_ran} ran; "
             f"{len(raw.attrs.get('skipped', []))} file(s) skipped. Target for ranking, speedup and scaling: "
             f"MSR <= {tag(target)}; speedup reference: {reference}. Mode: {mode}."),
             METRICS, RULE]
    if outcome.warnings:
        intro.append("Warnings: " + " | ".join(outcome.warnings))
    env = Table("Environment", tables.environment_table(machine.summary(metadata)),
                "From the traces' metadata; a field that differs between jobs lists every value.")
    doc = Document(f"Solver comparison: {sweeps}", intro, sections, env)
    (folder / "summary.md").write_text(markdown.render(doc), encoding="utf-8")
    bundle = None
    if any(s.interactive for s in sections):
        from . import interactive

        bundle = interactive.bundle()
    (folder / "index.html").write_text(html.render(doc, folder, bundle), encoding="utf-8")
    return outcome
