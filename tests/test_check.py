"""The convergence-curve regression check (harness.check).

One run of the ci sweep per session (module fixture) is compared with the
committed baseline, so ``pytest`` fails on a convergence regression. The other
tests prove the check can fail: planted regressions in a perturbed baseline, a
deliberately weakened solver, a missing solver, a new failure status.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest

from harness import check as hc
from harness.results import COLUMNS, write_trace
from harness.status import ENDED, normalise

JOB = ("laplace_bilinear", 32, "cg")


@pytest.fixture(scope="module")
def tol() -> hc.Tolerances:
    return hc.Tolerances.from_config(hc.load_ci_config().check)


@pytest.fixture(scope="module")
def baseline() -> tuple[pd.DataFrame, dict]:
    return hc.load_baseline()


@pytest.fixture(scope="module")
def current() -> pd.DataFrame:
    return hc.run_ci_sweep()


def _select(df: pd.DataFrame, problem=None, n=None, solver=None) -> pd.Series:
    m = pd.Series(True, index=df.index)
    if problem is not None:
        m &= df["problem"] == problem
    if n is not None:
        m &= df["n"] == n
    if solver is not None:
        m &= df["solver"] == solver
    return m


def _baseline_only(current: pd.DataFrame, base: pd.DataFrame) -> pd.DataFrame:
    """The current run restricted to the jobs of the baseline (drops a metamizer not yet blessed)."""
    keys = set(map(tuple, base[hc.KEY].drop_duplicates().itertuples(index=False)))
    out = current[[k in keys for k in map(tuple, current[hc.KEY].itertuples(index=False))]].copy()
    out.attrs.update(current.attrs)
    return out


# --- the check itself ------------------------------------------------------------------------------------
def test_ci_sweep_matches_committed_baseline(baseline, current, tol):
    base, meta = baseline
    devs = hc.config_deviations(meta, hc.load_ci_config(), current) + hc.compare(base, current, tol)
    bad = hc.regressions(devs)
    assert not bad, "convergence regression against tests/baselines/ci (python -m harness.check for the " \
                    "figure; --update to re-bless an intended change):\n" + hc.format_deviations(bad)


def test_timing_against_the_baseline_is_reported_as_a_warning(baseline, current):
    """python -m harness.check --timing in CI: moves beyond 2x relative to cg are warnings, never failures
    (timing is noisy on shared machines; the iteration check above is the gate)."""
    base, _ = baseline
    for dev in hc.compare_timing(base, current):
        warnings.warn(f"timing: {dev.solver} on {dev.problem} n={dev.n}: time to 1e-10 relative to cg "
                      f"{dev.baseline} in the baseline, {dev.now} now ({dev.note})", UserWarning, stacklevel=1)


def test_baseline_records_where_it_came_from(baseline):
    base, meta = baseline
    assert meta["kind"] == "harness.check baseline"
    for key in ("commit", "date", "versions", "sweep_config"):
        assert meta.get(key), key
    assert {"numpy", "scipy", "torch", "pyamg"} <= set(meta["versions"])
    assert set(base["solver"]) >= {"cg", "minres", "gmres", "pyamg_sa", "adam", "lbfgsb"}
    assert set(base["problem"]) == {"laplace_bilinear", "poisson_manufactured"}
    assert set(base["n"]) == {32, 64}
    assert base.groupby(hc.KEY)["status"].last().map(normalise).isin(ENDED).all()  # "ok" in older baselines


def test_sweep_is_bit_reproducible_in_process(current):
    """Re-running jobs after the whole sweep (other RNG state, other jobs before) changes nothing:
    the per-job seeding makes pyamg_sa's random spectral-radius estimate reproducible too."""
    jobs = [hc.Job("laplace_bilinear", 32, s) for s in ("cg", "pyamg_sa", "adam", "lbfgsb")]
    np.random.seed(12345)  # a different global state than the sweep started with
    again = hc.run_ci_sweep(jobs=jobs)
    mine = current[current["solver"].isin([j.solver for j in jobs]) & _select(current, "laplace_bilinear", 32)]
    assert hc.bitwise_differences(mine, again) == {}


# --- it can fail -----------------------------------------------------------------------------------------
def test_planted_msr_regression_is_detected(baseline, current, tol):
    base, _ = baseline
    now = _baseline_only(current, base)
    worse = now.copy()
    m = _select(worse, *JOB) & worse["iteration"].between(20, 40)
    worse.loc[m, "msr"] *= 1e3
    devs = hc.regressions(hc.compare(base, worse, tol))
    msr = [d for d in devs if d.kind == "msr"]
    assert msr and all((d.problem, d.n, d.solver) == JOB for d in msr)
    assert {d.iteration for d in msr} == set(worse.loc[m, "iteration"])
    assert all(d.delta == pytest.approx(3.0, abs=1e-9) and d.note == "worse" for d in msr)


def test_perturbed_baseline_fails_symmetrically(baseline, current, tol):
    """MSR x 1e3 in the baseline means 'now' is 3 decades better: still a change (a metrics bug can
    look like progress) unless symmetric=false."""
    base, _ = baseline
    now = _baseline_only(current, base)
    perturbed = base.copy()
    m = _select(perturbed, "poisson_manufactured", 64, "adam") & perturbed["iteration"].isin([50, 100, 199])
    perturbed.loc[m, "msr"] *= 1e3
    devs = hc.regressions(hc.compare(perturbed, now, tol))
    assert {(d.kind, d.iteration, d.note) for d in devs} == {("msr", 50, "better"), ("msr", 100, "better"),
                                                             ("msr", 199, "better")}
    from dataclasses import replace

    assert hc.regressions(hc.compare(perturbed, now, replace(tol, symmetric=False))) == []


def test_cli_exits_1_on_a_perturbed_baseline_and_writes_the_report(baseline, current, tmp_path):
    base, meta = baseline
    now = _baseline_only(current, base)
    cur_file = write_trace(now[list(COLUMNS)], tmp_path / "current" / "trace.parquet", {})
    out = tmp_path / "report"
    assert hc.main(["--current", str(cur_file), "--out", str(out)]) == 0

    perturbed = base.copy()
    m = _select(perturbed, *JOB) & perturbed["iteration"].between(20, 40)
    perturbed.loc[m, "msr"] /= 1e3  # the baseline was 1000x better: now is a regression
    bdir = tmp_path / "perturbed"
    write_trace(perturbed[list(COLUMNS)], bdir / "trace.parquet", meta)
    assert hc.main(["--current", str(cur_file), "--baseline", str(bdir), "--out", str(out)]) == 1
    assert (out / "overlay.png").stat().st_size > 10_000
    table = pd.read_csv(out / "deviations.csv")
    hits = table[(table["kind"] == "msr") & table["regression"]]
    assert set(hits["solver"]) == {"cg"} and set(hits["iteration"]) == set(perturbed.loc[m, "iteration"])


def test_weakened_solver_is_detected(baseline, tol):
    """adam with lr=1e-4 instead of 1e-2: a real run, compared with the blessed adam curve."""
    base, _ = baseline
    job = hc.Job("laplace_bilinear", 32, "adam")
    weak = hc.run_ci_sweep(jobs=[job], overrides={"adam": ["solver.lr=1e-4"]})
    assert weak["label"].iloc[0].startswith("adam(lr=")
    ref = base[_select(base, job.problem, job.n, job.solver)]
    devs = hc.regressions(hc.compare(ref, weak, tol))
    assert sum(d.kind == "msr" and d.note == "worse" for d in devs) >= 10


def test_missing_solver_and_missing_job_are_reported(baseline, current, tol):
    base, _ = baseline
    now = _baseline_only(current, base)
    now = now[(now["solver"] != "lbfgsb") & ~_select(now, "poisson_manufactured", 64, "gmres")]
    now.attrs["skipped"] = {"lbfgsb": "left out with --skip"}
    devs = hc.regressions(hc.compare(base, now, tol))
    kinds = {(d.kind, d.solver, d.problem, d.n) for d in devs}
    assert kinds == {("missing solver", "lbfgsb", "", None),
                     ("missing job", "gmres", "poisson_manufactured", 64)}
    assert next(d for d in devs if d.kind == "missing solver").note == "left out with --skip"


def test_unavailable_metamizer_after_blessing_is_a_missing_solver(baseline, current, tol):
    base, _ = baseline
    if not (base["solver"] == "metamizer").any():  # a baseline blessed without the checkpoint
        base = pd.concat([base, base[base["solver"] == "cg"].assign(solver="metamizer", label="metamizer")])
    now = _baseline_only(current, base)
    now = now[now["solver"] != "metamizer"]  # as when its checkpoint is missing now
    now.attrs["skipped"] = {"metamizer": "checkpoint ... not found"}
    devs = hc.regressions(hc.compare(base, now, tol))
    assert [(d.kind, d.solver, d.note) for d in devs] == [("missing solver", "metamizer",
                                                          "checkpoint ... not found")]


@pytest.mark.parametrize("status", ["diverged", "error", "timeout", "unavailable"])
def test_new_failure_status_is_reported(baseline, current, tol, status):
    base, _ = baseline
    now = _baseline_only(current, base)
    m = _select(now, *JOB)
    if status in ("error", "unavailable"):  # never started: one row without a trace
        row = now[m].iloc[[0]].copy()
        row[["iteration", "msr", "mse", "rel_res", "matvecs", "time_s"]] = None
        row["status"], row["message"] = status, "planted"
        now = pd.concat([now[~m], row], ignore_index=True)
    else:  # stopped early with that status
        now = now[~m | (now["iteration"] <= 30)].copy()
        now.loc[_select(now, *JOB), "status"] = status
    devs = hc.regressions(hc.compare(base, now, tol))
    assert any(d.kind == "status" and d.now == status and (d.problem, d.n, d.solver) == JOB for d in devs)


def test_new_job_is_reported_but_passes(baseline, current, tol):
    base, _ = baseline
    now = _baseline_only(current, base)
    extra = now[now["solver"] == "cg"].assign(solver="new_solver")
    devs = hc.compare(base, pd.concat([now, extra]), tol)
    assert {d.kind for d in devs} == {"new job"} and not hc.regressions(devs)
    from dataclasses import replace

    assert hc.regressions(hc.compare(base, pd.concat([now, extra]), replace(tol, fail_on_new=True)))


# --- the rules, on synthetic curves -----------------------------------------------------------------------
def _curve(msr: list[float], its: list[int] | None = None, status="budget", solver="s") -> pd.DataFrame:
    its = its if its is not None else list(range(len(msr)))
    return pd.DataFrame({"problem": "p", "n": 8, "solver": solver, "repeat": 0, "iteration": its, "msr": msr,
                         "status": status, "message": ""})


def test_values_below_the_noise_floor_do_not_count():
    tol = hc.Tolerances()
    base = _curve([1e-2, 1e-20, 1e-28, 1e-31, 0.0])
    now = _curve([1e-2, 1e-20, 1e-31, 1e-27, 1e-29])
    assert hc.compare(base, now, tol) == []
    # one side above the floor: measured from the floor (1e-24 vs <=1e-26 is 2 decades, not 7)
    devs = hc.compare(base, _curve([1e-2, 1e-20, 1e-24, 1e-31, 0.0]), tol)
    assert [(d.iteration, round(d.delta, 6)) for d in devs] == [(2, 2.0)]


def test_iterations_to_target_interpolated_and_censored():
    tol = hc.Tolerances(decades=100)  # only the iteration rule
    its = [0, 100, 200, 300, 400, 500]
    base = _curve([1, 1e-4, 1e-8, 1e-12, 1e-13, 1e-14], its)  # 1e-10 at 250 (interpolated)
    assert hc.iterations_to(hc._curve(base), 1e-10, 1e-32) == pytest.approx(250)
    ok = _curve([1, 1e-4, 1e-8, 1e-11, 1e-13, 1e-14], its)  # 266.7: 6.7 % slower
    assert hc.compare(base, ok, tol) == []
    slow = _curve([1, 1e-4, 1e-6, 1e-11, 1e-13, 1e-14], its)  # 280: 12 % slower
    assert [d.kind for d in hc.regressions(hc.compare(base, slow, tol))] == ["iters_to_target"]
    never = _curve([1, 1e-4, 1e-8, 1e-9, 1e-9, 1e-9], its)  # reached in the baseline, not now
    devs = hc.regressions(hc.compare(base, never, tol))
    assert [(d.kind, d.baseline, d.now) for d in devs] == [("iters_to_target", pytest.approx(250), None)]
    # reached at 480 in the baseline, not by 500 now: at most 4 % slower -> reported, not failed
    late = _curve([1, 1e-4, 1e-6, 1e-8, 1e-9, 1e-10 / 1.1], its)
    late_not = _curve([1, 1e-4, 1e-6, 1e-8, 1e-9, 1.1e-10], its)
    devs = hc.compare(late, late_not, tol)
    assert [d.kind for d in devs] == ["iters_to_target"] and not hc.regressions(devs)
    # ... unless the solver stopped by itself (status ok): then it never gets there
    devs = hc.compare(late, _curve([1, 1e-4, 1e-6, 1e-8, 1e-9, 1.1e-10], its, status="ok"), tol)
    assert hc.regressions(devs)


def test_per_solver_tolerance(tol):
    assert tol.for_solver("lbfgsb").decades == 2.0 and tol.for_solver("cg").decades == tol.decades
    with pytest.raises(ValueError, match="unknown keys"):
        hc.Tolerances(per_solver={"cg": {"decdes": 1}}).for_solver("cg")
    base, now = _curve([1e-2, 1e-4, 1e-6]), _curve([1e-2, 1e-4, 1e-5])
    assert hc.regressions(hc.compare(base, now, hc.Tolerances()))
    assert not hc.regressions(hc.compare(base, now, hc.Tolerances(per_solver={"s": {"decades": 1.5}})))


def test_update_writes_a_loadable_baseline_with_provenance(current, tmp_path):
    path = hc.write_baseline(current, tmp_path)
    df, meta = hc.load_baseline(tmp_path)
    assert {"commit", "date", "versions", "cpu", "sweep_config", "skipped", "checkpoints"} <= set(meta)
    assert hc.compare(df, current) == []
    summary = (tmp_path / hc.BASELINE_JSON).read_text()
    assert '"jobs"' in summary and '"commit"' in summary
    assert path == tmp_path / hc.BASELINE_FILE


def test_changed_ci_budget_or_checkpoint_is_reported(baseline, current):
    _, meta = baseline
    cfg = hc.load_ci_config()
    cfg.budget.max_iters = 300
    devs = hc.config_deviations(meta, cfg, current)
    assert [(d.kind, d.regression) for d in devs if d.kind == "config"] == [("config", True)]
    now = current.iloc[:1].copy()
    now.attrs["checkpoints"] = {"metamizer": "b" * 64}
    devs = hc.config_deviations({**meta, "checkpoints": {"metamizer": "a" * 64}}, hc.load_ci_config(), now)
    assert [(d.kind, d.solver, d.regression) for d in devs] == [("checkpoint", "metamizer", False)]


# --- no check passes on nothing -------------------------------------------------------------------------
def _one_line(capsys, needle: str) -> None:
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert len(err) == 1 and err[0].startswith("harness.check: error: ") and needle in err[0], err


def test_an_empty_baseline_fails_before_anything_runs(baseline, tmp_path, capsys):
    base, meta = baseline
    empty = tmp_path / "empty"
    write_trace(base.iloc[:0][list(COLUMNS)], empty / "trace.parquet", meta)
    out = tmp_path / "out"
    assert hc.main(["--baseline", str(empty), "--out", str(out)]) == 2
    _one_line(capsys, "holds no job")
    assert not out.exists()  # refused before the sweep ran or anything was written


@pytest.mark.parametrize("case, needle", [
    ("foreign", "is not a harness.check baseline"),
    ("other sweep", "is the baseline of sweep 'laplace_scaling', not 'ci'"),
    ("garbage", "unreadable"),
    ("not there", "no baseline at"),
])
def test_a_foreign_or_unreadable_baseline_fails_in_one_line(baseline, tmp_path, capsys, case, needle):
    base, meta = baseline
    where = tmp_path / "b"
    if case == "foreign":
        write_trace(base[list(COLUMNS)], where / "trace.parquet", {"kind": "a job's trace"})
    elif case == "other sweep":
        write_trace(base[list(COLUMNS)], where / "trace.parquet", {**meta, "sweep": "laplace_scaling"})
    elif case == "garbage":
        where.mkdir()
        (where / "trace.parquet").write_bytes(b"not parquet")
    assert hc.main(["--baseline", str(where), "--current", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    _one_line(capsys, needle)
    assert not (tmp_path / "o").exists()


def test_update_never_overwrites_a_file_that_is_not_a_baseline(current, tmp_path, capsys):
    job = tmp_path / "job" / "trace.parquet"
    write_trace(current[list(COLUMNS)], job, {"kind": "a job's trace"})
    before = job.read_bytes()
    cur = write_trace(current[list(COLUMNS)], tmp_path / "cur" / "trace.parquet", {})
    assert hc.main(["--update", "--baseline", str(job), "--current", str(cur), "--out", str(tmp_path / "o")]) == 2
    _one_line(capsys, "--update never overwrites a file that is not a baseline")
    assert job.read_bytes() == before


def test_a_run_of_another_experiment_is_not_compared_and_fails(baseline, current, tmp_path, capsys):
    """The same problems, sizes and solvers under another budget: not compared, and a check that compared
    nothing fails instead of printing OK."""
    base, _ = baseline
    now = _baseline_only(current, base)
    specs = {s: json.dumps({**json.loads(s), "budget.max_iters": 400.0}, sort_keys=True) for s in now["spec"].unique()}
    other = now.assign(spec=now["spec"].map(specs))
    devs = hc.compare(base, other)
    assert devs and {d.kind for d in devs} == {"experiment"}
    assert "budget.max_iters: 500 vs 400" in devs[0].note and hc.compared_jobs(base, other) == 0
    cur = write_trace(other[list(COLUMNS)], tmp_path / "cur" / "trace.parquet",
                      {"identities": hc.identities(other)})
    capsys.readouterr()
    assert hc.main(["--current", str(cur), "--out", str(tmp_path / "o"), "--no-plot"]) == 2
    _one_line(capsys, "no job was compared: none of the")
    assert not (tmp_path / "o").exists()
    mixed = pd.concat([other[other["solver"] != "cg"], now[now["solver"] == "cg"]])  # cg compared, others not
    cur2 = write_trace(mixed[list(COLUMNS)], tmp_path / "cur2" / "trace.parquet", {"identities": hc.identities(mixed)})
    assert hc.main(["--current", str(cur2), "--out", str(tmp_path / "o2"), "--no-plot"]) == 1
    assert (pd.read_csv(tmp_path / "o2" / "deviations.csv")["kind"] == "experiment").sum() == len(hc.compare(
        base, other)) - sum(d.solver == "cg" for d in hc.compare(base, other))


def test_out_must_be_the_checks_own_folder(tmp_path, capsys):
    afile = tmp_path / "afile"
    afile.write_text("mine")
    assert hc.main(["--out", str(afile)]) == 2
    _one_line(capsys, "is a file")
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep")
    assert hc.main(["--out", str(mine)]) == 2
    _one_line(capsys, "holds files the check did not write (notes.txt)")
    assert afile.read_text() == "mine" and [p.name for p in mine.iterdir()] == ["notes.txt"]
