"""Assemble a report folder: load a sweep, compute the verdict and the sections, draw the figures (in
parallel), write summary.md + index.html."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

from harness import results

from . import costs, groups, html, machine, markdown, metrics, render, sections, style, tables, verdict
from .document import Document, Figure, Table, Verdict
from .metrics import FLOOR, tag
from .sections import INTERACTIVE, Context, cells_of

RULE = ("Time to target: the first checkpoint whose MSR is at or below the target is located and the crossing "
        "is interpolated between it and the previous checkpoint, taking log10(MSR) as linear in solve time (and "
        "in iteration count); if the very first checkpoint already meets the target, or the solver is direct "
        "(one step, nothing to interpolate), that checkpoint's own time is used. "
        "Solve time excludes setup; 'setup+solve' adds the job's setup time (direct solvers do their work in "
        f"setup). MSR is floored at {FLOOR:g} before taking logarithms.")
METRICS = ("MSR = mean squared residual of the discrete equations over the non-Dirichlet nodes; MSE = mean squared "
           "error to the ground truth (analytic solution, or a direct-solver reference where the problem has no "
           "analytic one). Both are computed by the harness for every solver alike.")
VERDICT = ("The verdict: per size, each neural solver's setup + solve time to the target (median over repeats, "
           "[min-max]) against the fastest iterative classical solver (every family but the neural and the direct "
           "ones) and the fastest direct solver (the limit, for the problems it can solve). 'Nx slower [a-b]': the "
           "ratio of the medians, and its spread over repeats, pairing the slowest run of one solver with the "
           "fastest of the other. 'not reached': the neural solver's median run missed the target; its best MSR "
           "and run time are given instead.")

VERDICT_NOTE = ("Median over repeats [min-max]; a ratio's brackets pair the slowest run of one solver with the fastest "
                "of the other. Definitions: 'How to read this report', below.")


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


def budgets(metadata: dict[str, dict]) -> pd.DataFrame:
    """run_id -> the job's stop target (NaN: none set) and max_seconds, from its recorded config."""
    rows = []
    for run_id, meta in metadata.items():
        budget = (meta.get("config") or {}).get("budget") or {}
        target = pd.to_numeric(pd.Series([budget.get("target_msr")]), errors="coerce").iloc[0]
        seconds = pd.to_numeric(pd.Series([budget.get("max_seconds")]), errors="coerce").iloc[0]
        rows.append({"run_id": str(run_id), "stop_target": target if target > 0 else np.nan, "max_seconds": seconds})
    return pd.DataFrame(rows, columns=["run_id", "stop_target", "max_seconds"])


def _verdict(df: pd.DataFrame, jobs_all: pd.DataFrame, ctx: Context) -> list[Verdict]:
    """Per problem: the sentence and the table, from every solver shown under 'All solvers'."""
    sub, _ = groups.select(df, groups.ALL)
    target = ctx.target
    cells = cells_of(jobs_all[jobs_all["job"].isin(set(sub["job"]))], ctx)
    if cells is None:
        return []
    rows = verdict.compare(cells, target)
    out = []
    for problem in sorted(cells["problem"].unique()):
        mine = rows[rows["problem"] == problem]
        out.append(Verdict(verdict.sentence(mine, problem, target),
                           Table(f"Verdict: {problem}", tables.verdict_table(mine, target), VERDICT_NOTE)))
    return out


def _file(drawing: render.Drawing, tasks, secs, out: Path, warnings: list[str]) -> None:
    """Wait for the figures being drawn and file them under their sections."""
    drawn = iter(drawing.collect())
    for sec, ts in zip(secs, tasks, strict=True):
        for _ in ts:
            d = next(drawn)
            if d.error:
                warnings.append(f"figure {d.task.stem.name} failed: {d.error}")
            elif d.paths:
                svg_path = d.paths[1].relative_to(out) if len(d.paths) > 1 else None
                sec.figures.append(Figure(d.task.title, d.paths[0].relative_to(out), svg_path,
                                          linked=bool(sec.interactive) and d.task.kind in INTERACTIVE))


def build(source: str | Path, *, out: str | Path | None = None, target: float = 1e-10, mode: str = "all",
          reference: str = "cg", reports_root: str | Path = "reports", draw: bool = True,
          svg: bool = False) -> Outcome:
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
    if groups.ALL in grouping_list:
        hidden = df.loc[~groups.one_sweep_per_cell(df), "job"].nunique()
        if hidden:
            outcome.warnings.append(f"{hidden} job(s) not shown under 'All solvers': another, newer sweep ran "
                                    "the same problem, size and solver, and each cell is read from one sweep")
    jobs_all = metrics.job_table(df, metrics.targets_for(target))
    jobs_all = jobs_all.merge(budgets(metadata), on="run_id", how="left")
    # jobs_all has a row per repeat ("<run_id>#<repeat>"); a job ran if any of its repeats did
    per_job = jobs_all.groupby(jobs_all["job"].str.rsplit("#", n=1).str[0])["ran"].any()
    outcome.jobs, outcome.jobs_ran = len(per_job), int(per_job.sum())
    kinds = df.drop_duplicates("label")
    ctx = Context(folder, target, reference, style.palette(kinds["label"], kinds["family"], kinds["solver"]),
                  metadata, costs.solver_info(source), draw)
    parts = [sections.part(g, df, jobs_all, ctx) for g in grouping_list]
    tasks = [sections.tasks(p, ctx) for p in parts]
    drawing = render.start([t for ts in tasks for t in ts], svg=svg)   # drawn while the rest is computed
    secs = [sections.section(p, ctx) for p in parts]
    bundle = None
    if any(s.interactive for s in secs):
        try:
            from . import interactive

            bundle = interactive.bundle()
        except ImportError as exc:
            ctx.warnings.append(f"no interactive figures: {exc} (pip install plotly)")
            for s in secs:
                s.interactive = []
    verdicts = _verdict(df, jobs_all, ctx)
    _file(drawing, tasks, secs, folder, ctx.warnings)
    outcome.warnings += ctx.warnings
    sweeps = ", ".join(sorted(set(df["sweep"]) - {""})) or "unknown"
    intro = [f"Results: {source} (sweep {sweeps}); {outcome.jobs} jobs, {outcome.jobs_ran} ran; "
             f"{len(raw.attrs.get('skipped', []))} file(s) skipped. Target for the verdict, ranking, speedup and "
             f"scaling: MSR <= {tag(target)}; speedup reference: {reference}. Mode: {mode}."]
    if outcome.warnings:
        intro.append("Warnings: " + " | ".join(outcome.warnings))
    env = Table("Environment", tables.environment_table(machine.summary(metadata)),
                "From the traces' metadata; a field that differs between jobs lists every value.")
    doc = Document(f"Solver comparison: {sweeps}", intro, secs, env, verdict=verdicts, about=[VERDICT, METRICS, RULE])
    (folder / "summary.md").write_text(markdown.render(doc), encoding="utf-8")
    (folder / "index.html").write_text(html.render(doc, folder, bundle), encoding="utf-8")
    return outcome
