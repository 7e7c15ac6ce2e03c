"""python -m harness.report on hand-made traces with known checkpoints.

Synthetic sweep (problem laplace_bilinear, n = 32 and 64, hand-checkable numbers):
- cg: MSR 1, 1e-4, 1e-8, 1e-12, 1e-16 at iterations 0..4, times 0..4 s (n=32) or 0..8 s (n=64);
  setup 0.5 s / 1.0 s.
- adam(lr=0.1): n=32 three repeats, MSR 1, 1e-3, 1e-7, 1e-11 at times (0, 1, 2, 3) * s with
  s = 1, 2, 4, setup 0.1 s; n=64 diverges (MSR 1, 10, 1e4, inf).
- dst: MSR 1 -> 1e-30 between time 0 and 0.003 s (n=32) / 0.006 s (n=64); setup 0.2 / 0.8 s.
- amgx_cg: unavailable at both sizes ("pyamgx is not installed").
"""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from harness import results
from harness.report import groups, metrics
from harness.report.__main__ import main

INF = math.inf
PROBLEM = "laplace_bilinear"
UNKNOWNS = {32: 28 * 28, 64: 60 * 60}
FAMILY = {"cg": "krylov", "adam": "first_order", "dst": "direct", "amgx_cg": "multigrid", "metamizer": "neural",
          "pyamg_sa": "multigrid", "minres": "krylov"}


def write_job(root, *, n, solver, label, iters, times, msr, status, message="", setup=0.0, repeat=0,
              sweep="synthetic", stamp="2026-01-01_00-00-00", cpu="Test CPU 9000", threads=1, info=None,
              date="2026-01-01T00:00:00", config=None):
    rows = len(iters)
    run_id = f"{sweep}-{stamp}-{label}-{n}-{repeat}-t{threads}"
    df = pd.DataFrame({
        "sweep": sweep, "run_id": run_id, "problem": PROBLEM, "n": n, "h": n, "w": n,
        "n_unknowns": UNKNOWNS[n], "solver": solver, "label": label, "family": FAMILY[solver],
        "backend": "scipy", "device": "cpu", "params": "{}", "strategy": "callback", "exact_kind": "analytic",
        "seed": 0, "threads": threads, "repeat": repeat,
        "iteration": pd.array(iters, dtype="Int64"),
        "time_s": pd.array(times, dtype="Float64"),
        "setup_s": setup if setup is not None else np.nan,
        "msr": pd.array(msr, dtype="Float64"),
        "mse": pd.array([None if m is None else m / 10 for m in msr], dtype="Float64"),
        "rel_res": np.nan, "matvecs": pd.array([None] * rows, dtype="Int64"),
        "status": status, "message": message,
    })
    meta = {"run_id": run_id, "commit": "deadbeef", "date": date, "cpu": cpu, "gpu": None,
            "threads": threads, "hostname": "testhost", "versions": {"numpy": np.__version__}, "config": config or {},
            "timing_check": [None], **({"solver_info": info} if info is not None else {})}
    path = root / sweep / stamp / f"{PROBLEM}_n{n}" / solver / f"{label}-{repeat}-t{threads}" / results.TRACE_NAME
    results.write_trace(df, path, meta)
    return path


def make_sweep(root, sweep="synthetic", stamp="2026-01-01_00-00-00"):
    kw = {"sweep": sweep, "stamp": stamp}
    cg_msr = [1.0, 1e-4, 1e-8, 1e-12, 1e-16]
    write_job(root, n=32, solver="cg", label="cg", iters=[0, 1, 2, 3, 4], times=[0, 1, 2, 3, 4], msr=cg_msr,
              status="budget", message="max_iters reached", setup=0.5, **kw)
    write_job(root, n=64, solver="cg", label="cg", iters=[0, 1, 2, 3, 4], times=[0, 2, 4, 6, 8], msr=cg_msr,
              status="budget", message="max_iters reached", setup=1.0, **kw)
    for repeat, s in enumerate((1.0, 2.0, 4.0)):
        write_job(root, n=32, solver="adam", label="adam(lr=0.1)", iters=[0, 1, 2, 3], times=[0, s, 2 * s, 3 * s],
                  msr=[1.0, 1e-3, 1e-7, 1e-11], status="budget", setup=0.1, repeat=repeat, **kw)
    write_job(root, n=64, solver="adam", label="adam(lr=0.1)", iters=[0, 1, 2, 3], times=[0, 1, 2, 3],
              msr=[1.0, 10.0, 1e4, INF], status="diverged", message="MSR exceeded 1e6 x initial", setup=0.1, **kw)
    write_job(root, n=32, solver="dst", label="dst", iters=[0, 1], times=[0, 0.003], msr=[1.0, 1e-30],
              status="ok", setup=0.2, **kw)
    write_job(root, n=64, solver="dst", label="dst", iters=[0, 1], times=[0, 0.006], msr=[1.0, 1e-30],
              status="ok", setup=0.8, **kw)
    for n in (32, 64):
        write_job(root, n=n, solver="amgx_cg", label="amgx_cg", iters=[None], times=[None], msr=[None],
                  status="unavailable", message="pyamgx is not installed", setup=None, **kw)
    return root / sweep / stamp


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    return make_sweep(tmp_path_factory.mktemp("results"))


@pytest.fixture(scope="module")
def report(sweep, tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "rep"
    assert main([str(sweep), "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def cells(sweep):
    df = metrics.prepare(results.load(sweep))
    jobs = metrics.job_table(df, metrics.targets_for(1e-10))
    return metrics.add_speedup(metrics.cell_table(jobs, metrics.targets_for(1e-10)), 1e-10).set_index(["n", "label"])


# --------------------------------------------------------------------------- the rule
def test_crossing_interpolates_log_msr_linearly_in_time_and_iteration():
    # log10 MSR goes -8 -> -12 between t=2 and t=3: -10 is halfway
    assert metrics.crossing([0, 1, 2, 3], [0, 1, 2, 3], [1, 1e-4, 1e-8, 1e-12], 1e-10) == (2.5, 2.5)
    # the first checkpoint already meets it: its own time and iteration
    assert metrics.crossing([0.5, 1.0], [0, 1], [1e-12, 1e-14], 1e-10) == (0.5, 0.0)
    # never reached / never ran
    assert metrics.crossing([0, 1], [0, 1], [1, 1e-3], 1e-10) == (INF, INF)
    assert all(math.isnan(v) for v in metrics.crossing([], [], [], 1e-10))
    # an exact zero is floored at 1e-32: -10 lies 10/32 of the way from 0 to -32
    t, it = metrics.crossing([0, 1], [0, 1], [1.0, 0.0], 1e-10)
    assert t == pytest.approx(10 / 32) and it == pytest.approx(10 / 32)
    # only the first crossing counts, even if the curve goes back up
    assert metrics.crossing([0, 1, 2, 3], [0, 1, 2, 3], [1, 1e-10, 1, 1e-20], 1e-10) == (1.0, 1.0)


# --------------------------------------------------------------------------- table values
def test_time_and_iterations_to_target(cells):
    cg32, cg64 = cells.loc[(32, "cg")], cells.loc[(64, "cg")]
    assert cg32["t@1e-6"] == pytest.approx(1.5) and cg32["it@1e-6"] == pytest.approx(1.5)
    assert cg32["t@1e-10"] == pytest.approx(2.5) and cg32["it@1e-10"] == pytest.approx(2.5)
    assert cg32["total@1e-10"] == pytest.approx(3.0)
    assert cg32["t@1e-20"] == INF
    assert cg64["t@1e-10"] == pytest.approx(5.0) and cg64["total@1e-10"] == pytest.approx(6.0)
    dst32 = cells.loc[(32, "dst")]
    # A direct solver is one step: its time to any target it meets is its checkpoint's own time.
    assert dst32["t@1e-10"] == pytest.approx(0.003) and dst32["it@1e-10"] == pytest.approx(1)
    assert dst32["total@1e-10"] == pytest.approx(0.203)
    assert cg32["best_msr"] == pytest.approx(1e-16) and cg32["final_mse"] == pytest.approx(1e-17)


def test_repeats_give_median_min_max(cells):
    adam = cells.loc[(32, "adam(lr=0.1)")]
    assert adam["repeats"] == 3
    assert (adam["t@1e-10"], adam["t@1e-10_min"], adam["t@1e-10_max"]) == pytest.approx((5.5, 2.75, 11.0))
    assert adam["it@1e-10"] == pytest.approx(2.75)
    assert adam["t@1e-6"] == pytest.approx(3.5)         # 0.75 of the way from s to 2 s, median s = 2
    assert adam["total@1e-10"] == pytest.approx(5.6)


def test_speedup_vs_cg(cells):
    assert cells.loc[(32, "cg"), "speedup"] == pytest.approx(1.0)
    assert cells.loc[(32, "dst"), "speedup"] == pytest.approx(3.0 / 0.203)
    assert cells.loc[(64, "dst"), "speedup"] == pytest.approx(6.0 / 0.806)
    assert cells.loc[(32, "adam(lr=0.1)"), "speedup"] == pytest.approx(3.0 / 5.6)
    assert math.isnan(cells.loc[(64, "adam(lr=0.1)"), "speedup"])       # diverged: never reached
    assert math.isnan(cells.loc[(32, "amgx_cg"), "speedup"])            # never ran


def test_ranking(cells):
    rank = metrics.ranking(cells.reset_index(), 1e-10)
    assert list(rank["label"]) == ["dst", "cg", "adam(lr=0.1)", "amgx_cg"]
    assert rank["rank"].iloc[:3].tolist() == [1, 2, 3] and math.isnan(rank["rank"].iloc[3])
    assert rank["median_total"].iloc[:2].tolist() == pytest.approx([(0.203 + 0.806) / 2, 4.5])
    assert rank["median_total"].iloc[2] == INF              # reached at one size of two: ranked last
    assert rank["reached"].tolist() == [2, 2, 1, 0]


def test_fitted_exponent(cells):
    exps = metrics.fit_exponents(cells.reset_index(), 1e-10, "solve").set_index("label")["exponent"]
    assert exps["cg"] == pytest.approx(math.log10(5.0 / 2.5) / math.log10(UNKNOWNS[64] / UNKNOWNS[32]))
    assert math.isnan(exps["adam(lr=0.1)"])                 # one size reached: no fit


# --------------------------------------------------------------------------- the report folder
def test_report_files(report):
    for kind in ("msr_time", "msr_iterations", "mse_time", "scaling", "setup_solve"):
        f = report / "figures" / "all" / f"{kind}_{PROBLEM}.png"
        assert f.is_file() and f.stat().st_size > 1000, f
    assert not list(report.rglob("*.svg"))                              # SVG only on request (--svg)
    html = (report / "index.html").read_text()
    # the 7 figures of this sweep (headline, families, and the five per-size / scaling ones; no training
    # bill without a neural solver): MSR vs time and vs iterations are on the page as interactive figures,
    # their PNGs linked; the other five embedded
    assert html.count("<figure><img") == 5
    for kind in ("msr_time", "msr_iterations"):
        assert f"static version for papers: <a href='figures/all/{kind}_{PROBLEM}.png'>PNG</a>" in html
    assert "Test CPU 9000" in html


def test_svg_only_on_request(sweep, tmp_path):
    assert main([str(sweep), "--out", str(tmp_path), "--mode", "paper_lr_adam", "--svg"]) == 0
    svgs = sorted(p.name for p in tmp_path.rglob("*.svg"))
    assert svgs == sorted(p.with_suffix(".svg").name for p in tmp_path.rglob("*.png")) and len(svgs) == 3
    assert all(p.read_text().lstrip().startswith("<?xml") for p in tmp_path.rglob("*.svg"))
    assert "(<a href='figures/paper_lr_adam/setup_solve_laplace_bilinear.svg'>SVG</a>)" in (
        tmp_path / "index.html").read_text()


def test_summary_lists_values_and_failures(report):
    md = (report / "summary.md").read_text()
    assert "| adam(lr=0.1) | first_order | used its whole budget | 3 |" in md   # repeats counted, status in words
    assert "5.5 [2.75-11]" in md                                        # median [min-max] of t to 1e-10
    assert "| 1 | dst |" in md and "| 2 | cg |" in md and "| 3 | adam(lr=0.1) |" in md
    assert "| - | amgx_cg |" in md                                      # listed, not ranked
    assert "pyamgx is not installed" in md
    assert "| adam(lr=0.1) | diverged | 64 | yes, up to the failure | MSR exceeded 1e6 x initial |" in md
    assert "| amgx_cg | unavailable here | 32, 64 | no (never ran) | pyamgx is not installed |" in md
    assert "log10(MSR) as linear in solve time" in md                  # the rule is stated
    assert "| CPU | Test CPU 9000 |" in md


def test_default_folder_is_newest_sweep(tmp_path, capsys):
    make_sweep(tmp_path / "results", sweep="older", stamp="2026-01-01_00-00-00")
    newest = make_sweep(tmp_path / "results", sweep="newer", stamp="2026-01-02_00-00-00")
    rc = main(["--results-root", str(tmp_path / "results"), "--reports-root", str(tmp_path / "reports"),
               "--no-figures"])
    assert rc == 0
    assert (tmp_path / "reports" / f"newer_{newest.name}" / "summary.md").is_file()


def test_paper_mode_lists_absent_members(sweep, tmp_path):
    assert main([str(sweep), "--out", str(tmp_path), "--mode", "paper_quasi_newton", "--no-figures"]) == 0
    md = (tmp_path / "summary.md").read_text()
    assert "Newton-CG, nonlinear CG and L-BFGS-B" in md
    for absent in ("newton_cg", "nonlinear_cg", "lbfgsb", "metamizer"):
        assert f"| {absent} | unavailable here | all | no (never ran) | no results" in md
    assert "adam(lr=0.1)" not in md                                     # not a member of this grouping


def test_grouping_selection(sweep):
    df = metrics.prepare(results.load(sweep))
    sub, missing = groups.select(df, groups.MODES["paper_lr_adam"][0])
    assert set(sub["solver"]) == {"adam", "cg", "dst"}
    assert missing == ["metamizer", "metamizer_paper"]
    sub, missing = groups.select(df, groups.MODES["paper_amg_ilu"][0])
    assert "amgx_*" not in missing and "amgx_cg" in set(sub["solver"])   # glob member matched


# --------------------------------------------------------------------------- robustness
def _one_line_error(capsys, needle):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("harness.report: error:") and needle in err[0], err
    assert "Traceback" not in err[0]


def test_empty_folder(tmp_path, capsys):
    assert main([str(tmp_path)]) == 1
    _one_line_error(capsys, "no traces")


def test_missing_folder(tmp_path, capsys):
    assert main([str(tmp_path / "nope")]) == 1
    _one_line_error(capsys, "does not exist")


def test_missing_columns(tmp_path, capsys):
    table = pa.table({"iteration": [0, 1], "msr": [1.0, 0.1]})       # no solver, problem, n, status
    (tmp_path / "x").mkdir()
    pq.write_table(table, tmp_path / "x" / results.TRACE_NAME)
    assert main([str(tmp_path)]) == 1
    _one_line_error(capsys, "missing columns")


def test_foreign_file_beside_good_ones_is_skipped_and_reported(tmp_path, capsys):
    make_sweep(tmp_path)
    bad = tmp_path / "synthetic" / "junk"
    bad.mkdir()
    (bad / results.TRACE_NAME).write_bytes(b"not parquet")
    assert main([str(tmp_path), "--out", str(tmp_path / "rep"), "--no-figures"]) == 0
    err = capsys.readouterr().err
    assert "warning: skipped" in err and "junk" in err
    assert (tmp_path / "rep" / "summary.md").is_file()


def test_only_failed_jobs(tmp_path, capsys):
    for n in (32, 64):
        write_job(tmp_path, n=n, solver="amgx_cg", label="amgx_cg", iters=[None], times=[None], msr=[None],
                  status="unavailable", message="pyamgx is not installed", setup=None)
    assert main([str(tmp_path), "--out", str(tmp_path / "rep")]) == 1
    _one_line_error(capsys, "no job")
    assert "pyamgx is not installed" in (tmp_path / "rep" / "summary.md").read_text()


# ------------------------------------------------------------------------------ several sweeps in one folder
def test_a_cell_run_by_several_sweeps_is_read_from_one(tmp_path):
    """A newer run of the same sweep supersedes a job; another sweep's copy never does: each paper
    grouping reads its own preset's jobs, and 'All solvers' reads each cell from the newest sweep."""
    def cg(sweep, stamp, date, last):
        write_job(tmp_path, n=32, solver="cg", label="cg", iters=[0, 1, 2], times=[0, 1, 2], msr=[1.0, 1e-6, last],
                  status="budget", sweep=sweep, stamp=stamp, date=date)

    cg("paper_main", "2026-01-01_00-00-00", "2026-01-01T00:00:00+00:00", 1e-12)   # superseded below
    cg("paper_main", "2026-01-02_00-00-00", "2026-01-02T00:00:00+00:00", 1e-14)   # paper_main's own
    cg("paper_quasi_newton", "2026-01-03_00-00-00", "2026-01-03T00:00:00+00:00", 1e-16)  # newest sweep
    df = metrics.prepare(results.load(tmp_path))
    old, new = (f"paper_main/{stamp}/laplace_bilinear_n32/cg/cg-0-t1/trace.parquet"
                for stamp in ("2026-01-01_00-00-00", "2026-01-02_00-00-00"))
    assert df.attrs["superseded"] == [f"{old} (by {new})"]
    assert set(df.sweep) == {"paper_main", "paper_quasi_newton"}

    main_group = next(g for g in groups.PAPER if g.name == "paper_main")
    own, _ = groups.select(df, main_group)
    assert set(own.sweep) == {"paper_main"} and own.msr.min() == 1e-14
    every, _ = groups.select(df, groups.ALL)
    assert set(every.sweep) == {"paper_quasi_newton"} and every.msr.min() == 1e-16

    out = tmp_path / "rep"
    assert main([str(tmp_path), "--out", str(out), "--no-figures"]) == 0
    md = (out / "summary.md").read_text()
    assert f"1 job(s) superseded by a newer run of the same job (same sweep, identity and repeat; the newest is " \
           f"used): {old} (by {new})" in md
    assert "1 job(s) not shown under 'All solvers'" in md


def test_solvers_that_failed_alike_share_one_caption_line():
    from harness.report.sections import _notes

    gpu = "no results: GPU solver"
    failures = pd.DataFrame({"problem": PROBLEM, "label": ["cupy_cg", "cupy_minres", "adam"],
                             "status": ["unavailable", "unavailable", "diverged"], "sizes": ["all", "all", "64"],
                             "ran": [False, False, True], "message": [gpu, gpu, "MSR exceeded 1e6 x initial"]})
    assert _notes(failures)[PROBLEM] == [
        f"Failed / unavailable: cupy_cg, cupy_minres: unavailable (n = all), not drawn: {gpu}",
        "adam: diverged (n = 64), drawn up to the failure: MSR exceeded 1e6 x initial"]


# ------------------------------------------------------------------------------ what the report reads and writes
@pytest.mark.parametrize("target", ["inf", "nan", "0", "-1e-10"])
def test_target_must_be_a_positive_finite_msr(sweep, tmp_path, capsys, target):
    assert main([str(sweep), f"--target={target}", "--out", str(tmp_path / "rep")]) == 2
    _one_line_error(capsys, "use a positive finite MSR")
    assert not (tmp_path / "rep").exists()


def test_out_is_never_overwritten(sweep, tmp_path, capsys):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "index.html").write_text("my own page")
    assert main([str(sweep), "--out", str(mine), "--no-figures"]) == 2
    _one_line_error(capsys, "is not empty: a report never overwrites files")
    assert (mine / "index.html").read_text() == "my own page" and len(list(mine.iterdir())) == 1
    afile = tmp_path / "afile"
    afile.write_text("x")
    assert main([str(sweep), "--out", str(afile)]) == 2
    _one_line_error(capsys, "is a file")


def test_default_folders_never_collide(sweep, tmp_path, capsys):
    for _ in range(3):  # the same sweep three times within a second: three folders
        assert main([str(sweep), "--reports-root", str(tmp_path), "--no-figures"]) == 0
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["synthetic_2026-01-01_00-00-00", "synthetic_2026-01-01_00-00-00-2",
                     "synthetic_2026-01-01_00-00-00-3"]


@pytest.mark.parametrize("fault, why", [
    ({"time_s": [0.0, float("nan"), 2.0]}, "time_s is missing, NaN or negative at 1 checkpoint(s) (first: nan)"),
    ({"msr": [1.0, -1.0, 1e-3]}, "msr is negative at 1 checkpoint(s) (first: -1); an MSR is >= 0"),
    ({"msr": None}, "older or foreign schema, missing columns ['msr']"),
    ({"time_s": None}, "older or foreign schema, missing columns ['time_s']"),
])
def test_a_trace_that_breaks_the_rules_is_skipped_with_a_warning_naming_it(tmp_path, capsys, fault, why):
    make_sweep(tmp_path)
    bad = tmp_path / "synthetic" / "bad" / results.TRACE_NAME
    good = write_job(tmp_path, n=32, solver="cg", label="cg", iters=[0, 1, 2], times=[0, 1, 2], msr=[1.0, 1e-3, 1e-6],
                     status="budget", stamp="bad-source")
    df = pq.read_table(good).to_pandas()
    for column, values in fault.items():
        df = df.drop(columns=[column]) if values is None else df.assign(**{column: values})
    bad.parent.mkdir(parents=True)
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), bad)
    good.unlink()
    loaded = results.load(tmp_path)
    assert [(p, w) for p, w in loaded.attrs["skipped"]] == [(str(bad), why)]
    assert main([str(tmp_path), "--out", str(tmp_path / "rep"), "--no-figures"]) == 0
    err = capsys.readouterr().err
    assert f"warning: skipped {bad}: {why}" in err
