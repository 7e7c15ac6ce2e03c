"""A job's identity (harness.identity): one definition for resume, the report's de-duplication and the check.

Sweeps over keys that are not solver parameters (problem.variant, seed, budget.*, problem.h/w) must keep
every job in the report, each under a label that says what sets it apart; only a genuine re-run of the
same job in the same sweep is superseded, and the warning names both files.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from harness import identity, results
from harness.job import run_job
from harness.report import metrics
from harness.report.__main__ import main as report_main
from harness.resume import job_key

CONF = str(Path(__file__).resolve().parents[1] / "conf")
COMMON = ("progress=false", "isolate=false", "budget.max_iters=5", "problem.n=16")


def composed(*overrides: str):
    with initialize_config_dir(version_base="1.3", config_dir=CONF, job_name="test"):
        return compose("config", overrides=[*COMMON, *overrides])


def as_dict(*overrides: str) -> dict:
    return OmegaConf.to_container(composed(*overrides), resolve=True)


def sweep_job(folder: Path, num: int, *overrides: str) -> Path:
    """One job of a sweep as Hydra's sweeper runs it: its own subfolder, its overrides as the command gave them."""
    cfg = composed("sweep_name=mine", *overrides)
    return run_job(cfg, folder / str(num), list(overrides))


# ------------------------------------------------------------------------------ the identity itself
def test_identity_is_every_setting_that_changes_the_experiment():
    base = identity.spec(as_dict("solver=adam"))
    for changed in ("seed=1", "budget.max_seconds=3", "budget.target_msr=1e-8", "threads=2", "repeats=2",
                    "warmup=false", "solver.lr=0.5", "problem=laplace_harmonic", "problem.n=20"):
        assert identity.spec(as_dict("solver=adam", changed)) != base, changed
    for same in ("progress=true", "verify_timing=true", "job_timeout_s=9", "sweep_name=x", "memory_check=false",
                 "solver.lr=0.01"):  # 0.01 is adam's default: the same experiment, whatever the label says
        assert identity.spec(as_dict("solver=adam", same)) == base, same


def test_the_grid_is_what_the_problem_builds_not_how_it_was_set():
    a = identity.spec(as_dict("problem.n=64", "problem.h=16", "problem.w=24"))
    b = identity.spec(as_dict("problem.n=16", "problem.h=16", "problem.w=24"))
    assert a == b and (a["problem.h"], a["problem.w"]) == (16.0, 24.0)
    assert identity.spec(as_dict("problem.n=16", "problem.h=16", "problem.w=16")) == identity.spec(as_dict())
    assert identity.differences(a, ["problem.h", "problem.w", "seed"]) == "seed=0, grid=16x24"


def test_resume_uses_the_same_identity(tmp_path):
    path = run_job(composed("seed=3"), tmp_path / "a", ["seed=3"])
    meta = results.read_metadata(path)
    assert meta["job_key"] == job_key(as_dict("seed=3")) == identity.key(identity.spec(meta["config"]))
    assert results.load(tmp_path)["identity"].unique().tolist() == [meta["job_key"]]


# ------------------------------------------------------------------------------ the report keeps every job
@pytest.mark.parametrize("swept, values", [
    ("problem.variant", ["x2-y2", "x3-3xy2"]),
    ("seed", ["0", "1", "2"]),
    ("budget.max_iters", ["3", "5"]),
    ("budget.target_msr", ["1e-2", "null"]),
])
def test_a_sweep_over_any_key_reports_every_job(tmp_path, swept, values):
    sweep = tmp_path / "mine" / "2026-01-01_00-00-00"
    problem = ["problem=laplace_harmonic"] if swept.startswith("problem.") else []
    for num, value in enumerate(values):
        sweep_job(sweep, num, *problem, "solver=cg", f"{swept}={value}")
    df = metrics.prepare(results.load(sweep))
    assert df.attrs["superseded"] == []
    assert df["run_id"].nunique() == len(values)
    labels = sorted(df["label"].unique())
    assert len(labels) == len(values) and all(lab.startswith(f"cg [{swept}=") for lab in labels), labels
    out = tmp_path / "report"
    assert report_main([str(sweep), "--out", str(out), "--no-figures"]) == 0
    summary = (out / "summary.md").read_text()
    assert f"{len(values)} jobs, {len(values)} ran" in summary
    assert "superseded" not in summary
    for lab in labels:
        assert lab in summary


def test_only_a_genuine_rerun_is_superseded_and_the_files_are_named(tmp_path):
    old = tmp_path / "mine" / "2026-01-01_00-00-00"
    new = tmp_path / "mine" / "2026-01-02_00-00-00"
    sweep_job(old, 0, "solver=cg", "seed=0")
    sweep_job(old, 1, "solver=cg", "seed=1")
    sweep_job(new, 0, "solver=cg", "seed=0")  # the same job again: supersedes old/0
    df = metrics.prepare(results.load(tmp_path))
    assert df.attrs["superseded"] == [f"mine/{old.name}/0/trace.parquet (by mine/{new.name}/0/trace.parquet)"]
    assert df["run_id"].nunique() == 2 and sorted(df["label"].unique()) == ["cg [seed=0]", "cg [seed=1]"]


def test_a_grid_set_by_h_and_w_is_named_by_its_shape(tmp_path):
    sweep = tmp_path / "mine" / "s"
    sweep_job(sweep, 0, "solver=cg", "problem.n=64", "problem.h=16", "problem.w=24")
    sweep_job(sweep, 1, "solver=cg", "problem.n=64")
    df = metrics.prepare(results.load(sweep))
    first = df[df["w"] == 24].iloc[0]
    assert (first["n"], first["h"], first["w"]) == (16, 16, 24)  # never the n that did not shape it
    assert metrics.size_name(df, 16) == "16 x 24 (240 unknowns)"
    assert metrics.size_name(df, 64) == "n = 64 (3,600 unknowns)"
    out = tmp_path / "report"
    assert report_main([str(sweep), "--out", str(out), "--no-figures"]) == 0
    summary = (out / "summary.md").read_text()
    assert "laplace_bilinear, 16 x 24 (240 unknowns)" in summary and "n = 64 (240 unknowns)" not in summary
