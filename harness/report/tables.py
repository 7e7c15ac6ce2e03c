"""Display tables: numbers from ``metrics`` formatted as strings (median [min-max] over repeats)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from harness.formats import MISSING, count, number
from harness.status import status_words

from .metrics import tag

NOT_RUN, NOT_REACHED = MISSING, "not reached"


def fmt_time(x: float) -> str:
    return NOT_REACHED if not pd.isna(x) and np.isinf(x) else number(x, ".3g")


def fmt_iter(x: float) -> str:
    return NOT_REACHED if not pd.isna(x) and np.isinf(x) else count(x)


def fmt_sci(x: float) -> str:
    return number(x, ".2e")


def fmt_ratio(x: float) -> str:
    return NOT_RUN if pd.isna(x) or not np.isfinite(x) else f"{x:.3g}x"


def spread(row: pd.Series, col: str, fmt) -> str:
    """'median [min-max]' when repeats differ, else the single value."""
    med = fmt(row[col])
    lo, hi = row.get(f"{col}_min", np.nan), row.get(f"{col}_max", np.nan)
    if row.get("repeats", 1) > 1 and not (pd.isna(lo) or pd.isna(hi)) and lo != hi:
        short = {NOT_REACHED: "inf"}
        return f"{med} [{short.get(fmt(lo), fmt(lo))}-{short.get(fmt(hi), fmt(hi))}]"
    return med


def _target_set(value) -> bool:
    return value is not None and not pd.isna(value) and value > 0


OVERRUN = 0.01   # a solve more than this fraction past max_seconds says so (the last iteration outran the clock)


def overrun(row: pd.Series) -> str:
    """' (3.4 s past max_seconds=10)' when the longest repeat's solve passed the job's max_seconds, else ''."""
    limit, longest = row.get("max_seconds", np.nan), row.get("solve_s_max", row.get("solve_s", np.nan))
    if pd.isna(limit) or pd.isna(longest) or longest <= limit * (1 + OVERRUN):
        return ""
    return f" ({longest - limit:.2g} s past max_seconds={limit:g})"


def _order(cells: pd.DataFrame, target: float) -> pd.DataFrame:
    key = cells[f"total@{tag(target)}"].fillna(np.inf)
    return cells.assign(_k=key, _m=cells["best_msr"].fillna(np.inf)).sort_values(["_k", "_m", "label"])


def size_table(cells: pd.DataFrame, targets, target: float, reference: str | None) -> pd.DataFrame:
    """One grid size of one problem: a row per solver, fastest (setup + solve to ``target``) first."""
    rows = []
    for _, r in _order(cells, target).iterrows():
        row = {"solver": r["label"], "family": r["family"],
               "status": status_words(r["status"], _target_set(r.get("stop_target"))),
               "runs": int(r["repeats"]),
               "setup [s]": spread(r, "setup_s", fmt_time)}
        for t in targets:
            row[f"t to {tag(t)} [s]"] = spread(r, f"t@{tag(t)}", fmt_time)
            row[f"it to {tag(t)}"] = spread(r, f"it@{tag(t)}", fmt_iter)
        row[f"setup+solve to {tag(target)} [s]"] = spread(r, f"total@{tag(target)}", fmt_time)
        row[f"speedup vs {reference or 'cg'}"] = fmt_ratio(r.get("speedup", np.nan))
        row["best MSR"] = spread(r, "best_msr", fmt_sci)
        row["final MSE"] = spread(r, "final_mse", fmt_sci) if r["exact_kind"] != "none" else "no ground truth"
        row["iterations run"] = spread(r, "iterations", fmt_iter)
        row["solve time run [s]"] = spread(r, "solve_s", fmt_time) + overrun(r)
        row["reason / message"] = r["message"]
        rows.append(row)
    return pd.DataFrame(rows)


def ranking_table(ranking: pd.DataFrame, target: float, reference: str | None) -> pd.DataFrame:
    tg = tag(target)
    out = pd.DataFrame({
        "rank": ranking["rank"].map(lambda x: "-" if pd.isna(x) else str(int(x))),
        "solver": ranking["label"],
        "family": ranking["family"],
        f"sizes reaching {tg}": [f"{r} / {s}" if s else "-"
                                 for r, s in zip(ranking["reached"], ranking["sizes"], strict=True)],
        f"median setup+solve to {tg} [s]": ranking["median_total"].map(fmt_time),
        f"median solve to {tg} [s]": ranking["median_solve"].map(fmt_time),
        f"median speedup vs {reference or 'cg'}": ranking["median_speedup"].map(fmt_ratio),
        "median best MSR": ranking["median_best_msr"].map(fmt_sci),
        "status": [status_words(st, _target_set(t)) for st, t in
                   zip(ranking["status"], ranking.get("stop_target", pd.Series(np.nan, index=ranking.index)),
                       strict=True)],
        "reason / message": ranking["message"],
    })
    return out


def failure_table(failures: pd.DataFrame) -> pd.DataFrame:
    if failures.empty:
        return pd.DataFrame(columns=["solver", "status", "grid sizes", "drawn", "reason / message"])
    drawn = failures["ran"].fillna(False).map(lambda r: "yes, up to the failure" if r else "no (never ran)")
    return pd.DataFrame({"solver": failures["label"], "status": failures["status"].map(status_words),
                         "grid sizes": failures["sizes"].fillna("all"), "drawn": drawn,
                         "reason / message": failures["message"]})


def scaling_table(solve: pd.DataFrame, total: pd.DataFrame) -> pd.DataFrame:
    """One row per solver: exponents (solve, setup+solve), the sizes fitted, and the overhead warning."""
    m = solve.merge(total, on=["problem", "label"], suffixes=("_solve", "_total"), how="outer")

    def p(x: float) -> str:
        return "-" if pd.isna(x) else f"{x:.2f}"

    return pd.DataFrame({
        "solver": m["label"],
        "p (solve)": m["exponent_solve"].map(p),
        "p (setup+solve)": m["exponent_total"].map(p),
        "fitted over n =": m["fit_sizes_total"].where(m["fit_sizes_total"] != "", m["fit_sizes_solve"])
                                                .replace("", "- (fewer than 2 sizes reached)"),
        "overhead dominates (setup+solve)": m["overhead_total"].replace("", "-"),
    })


def bill_table(bill: pd.DataFrame, target: float) -> pd.DataFrame:
    from .costs import payback_words, steps_words

    tg = tag(target)
    return pd.DataFrame({
        "neural solver": bill["label"], "n": bill["n"],
        "training [s]": bill["training_s"].map(lambda x: "not recorded" if pd.isna(x) else f"{x:,.0f}"),
        "training steps": [steps_words(s, a) for s, a in zip(bill["steps"], bill["authors_steps"], strict=True)],
        "training hardware": bill["hardware"].replace("", "-"),
        f"neural setup+solve to {tg} [s]": bill["t_neural"].map(fmt_time),
        "best other solver": bill["best"].replace("", "-"),
        f"best other's setup+solve to {tg} [s]": bill["t_best"].map(fmt_time),
        "saved per solve [s]": bill["saving"].map(lambda x: NOT_RUN if pd.isna(x) else f"{x:.3g}"),
        "solves to pay back the training": [payback_words(r) for r in bill.itertuples()],
    })


def threads_table(rows: pd.DataFrame, target: float) -> pd.DataFrame:
    tg = tag(target)
    return pd.DataFrame({
        "solver": rows["base"], "n": rows["n"],
        "threads": [f"{a} vs {b}" for a, b in zip(rows["threads_lo"], rows["threads_hi"], strict=True)],
        f"setup+solve to {tg}, fewest threads [s]": rows["t_lo"].map(fmt_time),
        f"setup+solve to {tg}, most threads [s]": rows["t_hi"].map(fmt_time),
        "speed-up from the extra cores": rows["speedup"].map(fmt_ratio),
    })


def environment_table(pairs: list[tuple[str, str]]) -> pd.DataFrame:
    return pd.DataFrame(pairs, columns=["", "value"])


def _factor_words(ratio: float, lo: float, hi: float) -> str:
    """'17x slower [15-19]', '2.1x faster [1.8-2.4]': the ratio of the medians, then its spread over repeats."""
    from .verdict import factor

    if pd.isna(ratio):
        return NOT_RUN
    if ratio > 1:
        word, mid, a, b = "slower", ratio, lo, hi
    else:
        word, mid, a, b = "faster", 1 / ratio, 1 / hi if hi else np.inf, 1 / lo if lo else np.inf
    spread_ = "" if factor(a) == factor(b) else f" [{factor(a)}-{factor(b)}]"
    return f"{factor(mid)}x {word}{spread_}"


def verdict_table(rows: pd.DataFrame, target: float) -> pd.DataFrame:
    """One row per (size, neural solver): its time and iterations to the target against the fastest classical."""
    tg = tag(target)

    def mine(r) -> str:
        if not r.ran:
            return f"did not run ({status_words(r.status)})"
        if not np.isfinite(r.t):
            return f"not reached (best MSR {fmt_sci(r.best_msr)} in {fmt_time(r.solve_s)} s)"
        return spread(pd.Series({"x": r.t, "x_min": r.t_min, "x_max": r.t_max, "repeats": 2}), "x", fmt_time)

    def its(r) -> str:
        if not (r.ran and np.isfinite(r.t)):
            return NOT_RUN
        return spread(pd.Series({"x": r.it, "x_min": r.it_min, "x_max": r.it_max, "repeats": 2}), "x", fmt_iter)

    return pd.DataFrame({
        "n": rows["n"].astype(int),
        "neural solver": rows["label"],
        f"setup+solve to {tg} [s]": [mine(r) for r in rows.itertuples()],
        f"iterations to {tg}": [its(r) for r in rows.itertuples()],
        "fastest iterative classical": rows["rival"].replace("", "none reached " + tg),
        "its setup+solve [s]": rows["rival_t"].map(fmt_time),
        "neural vs iterative": [_factor_words(*v) for v in zip(rows["ratio"], rows["ratio_lo"], rows["ratio_hi"],
                                                                 strict=True)],
        "fastest direct": rows["direct"].replace("", "none reached " + tg),
        "direct setup+solve [s]": rows["direct_t"].map(fmt_time),
        "neural vs direct": [_factor_words(*v) for v in zip(rows["direct_ratio"], rows["direct_lo"],
                                                              rows["direct_hi"], strict=True)],
    })
