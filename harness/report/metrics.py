"""Numbers behind the report: time to target, per-job and per-cell tables, ranking.
Over 300 lines: every number the report shows, from one prepared frame; splitting would scatter the rules.

Pure pandas/NumPy, no plotting. A *job* is one solve (one run_id and repeat); a
*cell* is one solver configuration (``label``) on one problem at one grid size,
aggregated over repeats (median, min, max).

Time-to-target rule: the first checkpoint whose MSR is <= the target; between
that checkpoint and the previous one, log10(MSR) is taken as linear in solve
time (and in iteration), and the crossing point is interpolated; if the first
checkpoint already meets the target, its own time and iteration are used. MSR
is floored at ``FLOOR`` first (an exact zero has no logarithm). Setup time is
never part of ``t``; ``total = setup_s + t``.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd

from harness import identity
from harness.curve import FLOOR, crossing
from harness.results import CELL

TARGETS = (1e-6, 1e-10, 1e-20)     # fixed table columns; the --target is added to these


def tag(target: float) -> str:
    """1e-10 -> '1e-10', 1e-06 -> '1e-6' (used in column names and captions)."""
    return re.sub(r"e([+-])0*(\d)", r"e\1\2", f"{target:.3g}")


def targets_for(target: float) -> list[float]:
    return sorted(set(TARGETS) | {float(target)}, reverse=True)


# --------------------------------------------------------------------------- preparation
def prepare(df: pd.DataFrame) -> pd.DataFrame:
    """The report's view of a loaded frame (``harness.results.load`` has normalised it already).

    De-duplication by job identity (``harness.identity``: problem and its parameters, grid, solver and
    its parameters, budget, seed, threads, ...): when several runs of one sweep are loaded together
    (``results/<sweep>/<stamp>/...``), a newer copy of the *same* job (same identity and repeat, same
    sweep) supersedes the older one: the one written last wins, and ``attrs['superseded']`` lists
    "old file (by new file)". Jobs that differ in anything are all kept; copies in *different* sweeps
    are separate measurements (their budgets may differ, and each paper grouping reads its own
    preset's jobs).

    Labels: jobs of one sweep with the same label whose identities differ at the same problem and size
    (a sweep over ``seed``, ``problem.variant``, a ``budget.*`` key, ``problem.h``/``w``) get what differs
    appended (``cg [seed=1]``), so each is its own curve and table row instead of a false repeat; a
    configuration run with several thread counts becomes one curve per count. ``base_label`` is the label
    without the thread count.
    """
    df = df.copy()
    jobs = df.drop_duplicates("job")[["job", "path", "written", "sweep", "identity", "repeat"]]
    order = jobs.assign(_when=pd.to_datetime(jobs["written"], errors="coerce", utc=True, format="ISO8601"))
    order = order.sort_values(["_when", "path"], na_position="first")
    keep = order.drop_duplicates(["sweep", "identity", "repeat"], keep="last")
    newest = keep.set_index(["sweep", "identity", "repeat"])["path"]
    superseded = [f"{r.path} (by {newest[(r.sweep, r.identity, r.repeat)]})"
                  for r in order[~order["job"].isin(set(keep["job"]))].itertuples()]
    df = df[df["job"].isin(set(keep["job"]))].copy()
    df["label"] = _distinguished_labels(df)
    df["base_label"] = df["label"]
    # A configuration run with several thread counts (e.g. +sweep=laplace_threads) is one curve per count.
    several = df.groupby("label")["threads"].nunique()
    split = df["label"].isin(several[several > 1].index) & df["threads"].notna()
    df.loc[split, "label"] = (df.loc[split, "label"] + " [threads=" + df.loc[split, "threads"].astype(int).astype(str)
                              + "]")
    df = df.sort_values(["problem", "n", "label", "repeat", "job", "iteration"], na_position="first")
    df = df.reset_index(drop=True)
    df.attrs["superseded"] = superseded
    return df


def _distinguished_labels(df: pd.DataFrame) -> pd.Series:
    """Each row's label, plus what sets its job apart where jobs of one sweep share a label, a problem and a
    size but not an identity (the thread count aside: split separately)."""
    jobs = df.drop_duplicates(["sweep", "identity"])[["sweep", "problem", "n", "label", "identity", "spec"]]
    specs = {i: json.loads(s) if s else {} for i, s in zip(jobs["identity"], jobs["spec"], strict=True)}
    suffix: dict[tuple[str, str], str] = {}
    for (sweep, _), group in jobs.groupby(["sweep", "label"], sort=False):
        keys = sorted({k for _, cell in group.groupby(["problem", "n"])
                       for k in identity.differing([specs[i] for i in cell["identity"]],
                                                   ignore=("threads", "problem.name", "solver.label"))})
        if keys:
            for i in group["identity"]:
                suffix[(sweep, i)] = f" [{identity.differences(specs[i], keys)}]"
    if not suffix:
        return df["label"]
    extra = [suffix.get((s, i), "") for s, i in zip(df["sweep"], df["identity"], strict=True)]
    return df["label"] + pd.Series(extra, index=df.index)


def size_name(rows: pd.DataFrame, n: int) -> str:
    """How grid size ``n`` of ``rows`` reads in a caption: 'n = 64 (3,844 unknowns)', or, for a grid set by
    ``problem.h`` and ``problem.w``, its true shape ('16 x 24 (240 unknowns)'); several shapes under one n
    are all named."""
    at = rows[rows["n"] == n]
    h, w = (at[c] if c in at.columns else pd.Series(dtype=float) for c in ("h", "w"))
    shapes = sorted({(int(a), int(b)) for a, b in zip(h, w, strict=True) if pd.notna(a) and pd.notna(b)})
    u = at["n_unknowns"].dropna() if "n_unknowns" in at.columns else pd.Series(dtype=float)
    unknowns = f" ({int(u.iloc[0]):,} unknowns)" if len(u) and np.isfinite(u.iloc[0]) else ""
    if not shapes or shapes == [(n, n)]:
        return f"n = {n}{unknowns}"
    if len(shapes) == 1:
        return f"{shapes[0][0]} x {shapes[0][1]}{unknowns}"
    return f"n = {n}: grids " + ", ".join(f"{a} x {b}" for a, b in shapes)


# --------------------------------------------------------------------------- time to target
PER_JOB = ("run_id", "problem", "n", "h", "w", "label", "base_label", "solver", "family", "backend", "device", "repeat",
           "status", "message", "exact_kind", "strategy", "sweep", "params", "threads")


def job_table(df: pd.DataFrame, targets) -> pd.DataFrame:
    """One row per job: status, setup, how far it ran, and t/it/total to each target.

    Target columns: ``t@TAG`` (solve seconds), ``it@TAG`` (iterations, interpolated),
    ``total@TAG`` (setup + solve). inf = ran but never reached; NaN = never ran.
    Jobs in order of first appearance; each job's checkpoints read as array slices (a job's rows in
    iteration order, the rows of a job that never ran first).
    """
    codes, names = pd.factorize(df["job"])
    iteration = df["iteration"].to_numpy(dtype=float)
    order = np.lexsort((np.where(np.isnan(iteration), -np.inf, iteration), codes))
    d = df.iloc[order]
    codes = codes[order]
    ran_rows = d["iteration"].notna().to_numpy()
    starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]])
    ends = np.r_[starts[1:], len(d)]
    first = d.iloc[starts]
    out = pd.DataFrame({"job": names[codes[starts]], **{c: first[c].to_numpy() for c in PER_JOB}})
    out["n_unknowns"] = first["n_unknowns"].to_numpy(dtype=float)
    out["setup_s"] = d["setup_s"].groupby(codes).first().reindex(codes[starts]).to_numpy(dtype=float)
    cols = {c: d[c].to_numpy(dtype=float) for c in ("iteration", "time_s", "msr", "mse")}
    ran_from = starts + np.add.reduceat(~ran_rows, starts)           # never-run rows sort first in a job
    ran = ran_from < ends
    last = np.where(ran, ends - 1, 0)
    out["ran"] = ran
    out["iterations"] = np.where(ran, cols["iteration"][last], np.nan)
    out["solve_s"] = np.where(ran, cols["time_s"][last], np.nan)
    out["msr0"] = np.where(ran, cols["msr"][np.minimum(ran_from, len(d) - 1)], np.nan)
    finite = np.where(ran_rows & np.isfinite(cols["msr"]), cols["msr"], np.inf)
    best = np.minimum.reduceat(finite, starts)
    out["best_msr"] = np.where(np.isfinite(best), best, np.nan)
    out["final_msr"] = np.where(ran, cols["msr"][last], np.nan)
    out["final_mse"] = np.where(ran, cols["mse"][last], np.nan)
    setup = np.nan_to_num(out["setup_s"].to_numpy(), nan=0.0)
    direct = out["family"].to_numpy() == "direct"
    for target in targets:
        t = np.full(len(out), np.nan)
        it = np.full(len(out), np.nan)
        for j in np.flatnonzero(ran):
            a, b = ran_from[j], ends[j]
            # A direct solver makes one step: nothing lies between its two points to interpolate.
            t[j], it[j] = crossing(cols["time_s"][a:b], cols["iteration"][a:b], cols["msr"][a:b], target,
                                   interpolate=not direct[j])
        out[f"t@{tag(target)}"] = t
        out[f"it@{tag(target)}"] = it
        out[f"total@{tag(target)}"] = t + setup
    return out


# --------------------------------------------------------------------------- cells (repeats)
def _status_summary(statuses: pd.Series) -> str:
    counts = statuses.value_counts()
    if len(counts) == 1:
        return str(counts.index[0])
    return ", ".join(f"{s} x{c}" for s, c in counts.items())


_NUMBER = re.compile(r"[-+]?\d[\d.]*(?:e[-+]?\d+)?")


def grouped_messages(frame: pd.DataFrame, keys: list[str], unit: str = "runs", counted: bool = True) -> pd.Series:
    """Per group of ``frame`` by ``keys`` (the index): the commonest non-empty ``message``, with how many of the
    group's runs (or sizes: ``unit``) gave it when there were several (``counted``).

    Messages that differ only in their numbers ("MSR 3e-32 <= target at iteration 1" / "... 5e-31 ... 2")
    count as one; the first of them is shown (ties: the message seen first).
    """
    groups = frame.groupby(keys, sort=True)
    total = groups.size()
    text = frame["message"].astype(str)
    valid = (text != "") & (text != "nan")
    shapes = {m: _NUMBER.sub("#", m) for m in text[valid].unique()}
    v = frame.loc[valid, keys].assign(_text=text[valid], _shape=text[valid].map(shapes),
                                      _pos=np.arange(int(valid.sum())))
    out = pd.Series("", index=total.index, dtype=object)
    if v.empty:
        return out
    per = v.groupby([*keys, "_shape"], sort=False).agg(k=("_pos", "size"), pos=("_pos", "min"),
                                                       distinct=("_text", "nunique")).reset_index()
    per["shapes"] = per.groupby(keys)["k"].transform("size")
    top = per.sort_values(["k", "pos"], ascending=[False, True]).drop_duplicates(keys).set_index(keys)
    top = top.reindex(total.index).dropna(subset=["k"])
    text_at = v["_text"].to_numpy()
    lines = []
    for cell, r in top.iterrows():
        line = str(text_at[int(r["pos"])])
        n = int(total.loc[cell])
        if counted and n > 1:
            varies = "; numbers vary" if r["distinct"] > 1 else ""
            others = int(r["shapes"]) - 1
            line += f" ({int(r['k'])} of {n} {unit}{varies}" + (f"; {others} other message(s))" if others else ")")
        lines.append(line)
    out.loc[top.index] = lines
    return out


def value_columns(targets) -> list[str]:
    cols = ["setup_s", "iterations", "solve_s", "best_msr", "final_msr", "final_mse"]
    for target in targets:
        cols += [f"t@{tag(target)}", f"it@{tag(target)}", f"total@{tag(target)}"]
    return cols


def cell_table(jobs: pd.DataFrame, targets) -> pd.DataFrame:
    """One row per (problem, n, label): median, min and max over repeats of every value.

    Columns ``X`` (median), ``X_min``, ``X_max``; ``repeats``; ``status`` (the
    statuses of the repeats, e.g. "budget" or "budget x2, diverged x1"); ``message``.
    A target reached in some repeats only has a finite min and an infinite max;
    its median is infinite when at most half of the repeats reached it.
    """
    cols = value_columns(targets)
    grouped = jobs.groupby(CELL, sort=True)
    med = grouped[cols].median()
    lo = grouped[cols].min().add_suffix("_min")
    hi = grouped[cols].max().add_suffix("_max")
    info = grouped.agg(solver=("solver", "first"), family=("family", "first"),
                       backend=("backend", "first"), device=("device", "first"),
                       exact_kind=("exact_kind", "first"), n_unknowns=("n_unknowns", "first"),
                       h=("h", "first"), w=("w", "first"),
                       repeats=("job", "size"), ran=("ran", "any"))
    for col in ("stop_target", "max_seconds"):   # the jobs' budgets (``build.budgets``), where known
        if col in jobs:
            info[col] = grouped[col].max()
    info["status"] = grouped["status"].agg(_status_summary)
    info["message"] = grouped_messages(jobs, CELL)
    info["message_top"] = grouped_messages(jobs, CELL, counted=False)
    return pd.concat([info, med, lo, hi], axis=1).reset_index()


def reference_label(cells: pd.DataFrame, reference: str = "cg") -> str | None:
    """The label used as speed-up reference: ``reference`` itself, else the shortest label of that solver."""
    labels = set(cells["label"])
    if reference in labels:
        return reference
    same = sorted(cells.loc[cells["solver"] == reference, "label"].unique(), key=lambda s: (len(s), s))
    return same[0] if same else None


def add_speedup(cells: pd.DataFrame, target: float, reference: str = "cg") -> pd.DataFrame:
    """``speedup``: reference's median total time to target / this cell's (same problem and n).

    > 1 means faster than the reference. NaN where either never reached the target
    (or the reference is absent).
    """
    cells = cells.copy()
    col = f"total@{tag(target)}"
    ref = reference_label(cells, reference)
    cells["speedup"] = np.nan
    if ref is None:
        return cells
    ref_time = cells[cells["label"] == ref].set_index(["problem", "n"])[col]
    base = pd.MultiIndex.from_frame(cells[["problem", "n"]]).map(ref_time.to_dict().get)
    base = pd.to_numeric(pd.Series(base, index=cells.index), errors="coerce")
    mine = cells[col].where(np.isfinite(cells[col]) & (cells[col] > 0))
    cells["speedup"] = (base.where(np.isfinite(base)) / mine).astype(float)
    return cells


def ranking(cells: pd.DataFrame, target: float) -> pd.DataFrame:
    """Per problem: solvers ranked by the median over grid sizes of total (setup + solve) time to target.

    A size where the target was not reached counts as infinitely slow, so
    solvers that miss it are ranked after those that reach it (ties broken by
    the number of sizes reached, then by median best MSR). Solvers that never
    ran (unavailable, failed in setup) get no rank.
    """
    col, solve = f"total@{tag(target)}", f"t@{tag(target)}"
    top = cells.assign(message=cells["message_top"]) if "message_top" in cells else cells
    messages = grouped_messages(top, ["problem", "label"], "sizes") if len(cells) else pd.Series(dtype=object)
    rows = []
    for (problem, label), g in cells.groupby(["problem", "label"], sort=True):
        ran = g[g["ran"]]
        times = ran[col].fillna(np.inf)
        rows.append({
            "problem": problem, "label": label, "family": g["family"].iloc[0],
            "sizes": len(g), "ran": len(ran), "reached": int(np.isfinite(times).sum()),
            "median_total": float(np.median(times)) if len(ran) else np.nan,
            "median_solve": float(np.median(ran[solve].fillna(np.inf))) if len(ran) else np.nan,
            "median_speedup": float(ran["speedup"].median()) if "speedup" in ran and len(ran) else np.nan,
            "median_best_msr": float(ran["best_msr"].median()) if len(ran) else np.nan,
            "status": ", ".join(dict.fromkeys(g["status"])),
            "stop_target": g["stop_target"].max() if "stop_target" in g else np.nan,
            "message": messages.loc[(problem, label)],
        })
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    table["_never"] = table["ran"] == 0
    table = table.sort_values(["problem", "_never", "median_total", "reached", "median_best_msr", "label"],
                              ascending=[True, True, True, False, True, True])
    table["rank"] = table.groupby("problem").cumcount() + 1
    table["rank"] = table["rank"].astype(float).where(~table["_never"])
    return table.drop(columns="_never").reset_index(drop=True)


FIT_SIZES = 3           # scaling exponents are fitted over this many of the largest sizes that reached the target
OVERHEAD = 2.0          # a smaller size whose time exceeds the fit's prediction this many times: overhead dominates


def fit_exponents(cells: pd.DataFrame, target: float, kind: str = "total") -> pd.DataFrame:
    """Least-squares slope p of log10(time to target) vs log10(unknowns), per (problem, label).

    Fitted over the ``FIT_SIZES`` largest sizes that reached the target with a positive time (the
    asymptotic regime; fixed costs bend the small sizes flat); p is NaN with fewer than two. ``fit_sizes``
    names them; ``overhead`` lists the smaller sizes whose measured time is more than ``OVERHEAD`` times
    what the fit predicts (fixed overhead dominates there, so a fit through them would understate p).
    """
    col = f"{'total' if kind == 'total' else 't'}@{tag(target)}"
    rows = []
    for (problem, label), g in cells.groupby(["problem", "label"], sort=True):
        ok = g[np.isfinite(g[col]) & (g[col] > 0) & (g["n_unknowns"] > 0)].sort_values("n_unknowns")
        used = ok.tail(FIT_SIZES)
        p, names, over = np.nan, "", ""
        if used["n_unknowns"].nunique() >= 2:
            x, y = np.log10(used["n_unknowns"]), np.log10(used[col])
            p, c = (float(v) for v in np.polyfit(x, y, 1))
            names = ", ".join(str(int(n)) for n in used["n"])
            small = ok.iloc[: len(ok) - len(used)]
            ratio = small[col] / 10 ** (c + p * np.log10(small["n_unknowns"]))
            over = ", ".join(f"n={int(n)}: {r:.1f}x the fit" for n, r in zip(small["n"], ratio, strict=True)
                             if r > OVERHEAD)
        rows.append({"problem": problem, "label": label, "exponent": p, "sizes_used": len(used) if names else 0,
                     "fit_sizes": names, "overhead": over})
    return pd.DataFrame(rows, columns=["problem", "label", "exponent", "sizes_used", "fit_sizes", "overhead"])


def failures(jobs: pd.DataFrame, failed_statuses) -> pd.DataFrame:
    """Jobs that failed, diverged, timed out or were unavailable, grouped with their reason."""
    bad = jobs[jobs["status"].isin(failed_statuses)]
    if bad.empty:
        return pd.DataFrame(columns=["problem", "label", "status", "sizes", "message", "ran"])
    grouped = bad.groupby(["problem", "label", "status", "message"], sort=True)
    out = grouped.agg(sizes=("n", lambda s: ", ".join(str(v) for v in sorted(set(s)))),
                      ran=("ran", "any")).reset_index()
    return out


# --------------------------------------------------------------------------- figure data
def curve_data(df: pd.DataFrame) -> pd.DataFrame:
    """Checkpoints ready for log plots.

    Keeps rows of jobs that ran, with a finite MSR (a diverged job is drawn up
    to its last finite checkpoint); ``msr_plot``/``mse_plot`` are floored at
    ``FLOOR``; ``time_plot`` is the median over repeats of the solve time at
    that iteration (repeats share their checkpoint iterations, so their MSR can
    be aggregated at a common x). Direct solvers do their work in setup, so
    their ``time_plot`` is setup + solve time (they appear as a near-vertical
    drop at their total time).
    """
    c = df[df["iteration"].notna() & np.isfinite(df["msr"])].copy()
    c["msr_plot"] = c["msr"].clip(lower=FLOOR)
    c["mse_plot"] = c["mse"].where(np.isfinite(c["mse"])).clip(lower=FLOOR)
    shown = c["time_s"] + np.where(c["family"] == "direct", c["setup_s"].fillna(0.0), 0.0)
    c["time_plot"] = shown.groupby([c[k] for k in [*CELL, "iteration"]]).transform("median")
    total = c["time_s"] + c["setup_s"].fillna(0.0)
    c["total_plot"] = total.groupby([c[k] for k in [*CELL, "iteration"]]).transform("median")
    return c


LEARNED = "neural"      # the family of the solvers under study
LIMIT = "direct"        # the family drawn as the limit line


def family_best(cells: pd.DataFrame, target: float) -> pd.DataFrame:
    """Per (problem, n): every neural solver, and the best solver of each other family.

    Best = the fastest setup + solve time to ``target`` at that size; a family none of whose
    solvers reached the target is represented by the one with the lowest best MSR
    (``reached`` False). Columns: problem, n, family, label, role, reached, total.
    """
    col = f"total@{tag(target)}"
    ran = cells[cells["ran"]]
    key = ran.assign(_t=ran[col].where(np.isfinite(ran[col]), np.inf), _m=ran["best_msr"].fillna(np.inf),
                     _neural=ran["family"] == LEARNED)
    key = key.sort_values(["problem", "n", "family", "_t", "_m", "label"])
    best = key[~key["_neural"]].drop_duplicates(["problem", "n", "family"])
    picks = pd.concat([key[key["_neural"]], best]).sort_values(["problem", "n", "family", "label"])
    role = np.where(picks["_neural"], "neural", np.where(picks["family"] == LIMIT, "limit", "best"))
    return pd.DataFrame({"problem": picks["problem"], "n": picks["n"], "family": picks["family"],
                         "label": picks["label"], "role": role, "reached": np.isfinite(picks[col].astype(float)),
                         "total": picks[col].astype(float)}).reset_index(drop=True)


def target_times(jobs: pd.DataFrame, target: float) -> pd.DataFrame:
    """Long table of per-job time to target (solve, setup + solve) for the scaling figure."""
    tg = tag(target)
    ok = jobs[jobs["ran"]]
    long = ok.melt(id_vars=["problem", "n", "n_unknowns", "label", "family", "repeat"],
                   value_vars=[f"t@{tg}", f"total@{tg}"], var_name="kind", value_name="seconds")
    long["kind"] = long["kind"].map({f"t@{tg}": "solve", f"total@{tg}": "setup + solve"})
    return long[np.isfinite(long["seconds"]) & (long["seconds"] > 0)]
