"""Guards, resume keys, fault injection and bad input, in process (fast).

The command-line end of the same features is in tests/test_cli.py.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hydra import compose, initialize_config_dir

from harness import guard, resume
from harness.job import JobNotRun, run_job
from harness.monitor import Budget
from harness.results import ResultsError, load, read_metadata, write_trace
from harness.run import MIN_GRID, check_arguments, remove_job_folder, resume_arguments
from harness.runner import run_solver
from problems import MIN_GRID as PROBLEMS_MIN_GRID
from problems import make_problem
from tests import faulty_solvers as faulty

CONF = str(Path(__file__).resolve().parents[1] / "conf")
FAULTY = "tests.faulty_solvers"


def config(*overrides: str):
    with initialize_config_dir(version_base="1.3", config_dir=CONF, job_name="test"):
        return compose("config", overrides=["progress=false", "problem.n=16", *overrides])


def job(tmp_path, *overrides: str, name: str = "job", **kwargs) -> pd.DataFrame:
    out = tmp_path / name
    run_job(config(*overrides), out, list(overrides), **kwargs)
    return load(out)


# ------------------------------------------------------------------------------ the child process
def test_isolated_returns_value_and_streams_events():
    seen = []

    def work(emit):
        emit("note", "piped")
        for i in range(3):
            emit("row", {"iteration": i})  # quiet: shared memory, the parent is not woken
        time.sleep(0.3)
        return os.getpid()

    out = guard.run_isolated(work, timeout_s=30, on_event=lambda k, p: seen.append((k, p)), tick_s=0.05)
    assert out.kind == "done" and out.value != os.getpid()  # it ran in another process
    assert out.events == [("note", "piped")]
    assert out.tail == [("row", {"iteration": i}) for i in range(3)]
    assert seen[0] == ("note", "piped") and seen[-1] == ("row", {"iteration": 2})  # the newest row, polled
    assert out.maxrss_mib > 0


def test_shared_log_survives_a_killed_child_and_resets_per_repeat():
    def work(emit):
        emit("row", 1)
        emit("repeat", 1)  # restart: the log starts again
        emit("row", 2)
        emit("row", 3)
        os.kill(os.getpid(), signal.SIGKILL)

    out = guard.run_isolated(work, timeout_s=30, restart_on="repeat")
    assert out.kind == "died" and out.tail == [("row", 2), ("row", 3)]


def test_shared_log_full_is_not_an_error():
    log = guard.SharedLog(size=64)
    assert log.append("x" * 10) and not log.append("y" * 100)
    assert log.records() == ["x" * 10] and log.last()[1] == "x" * 10
    log.close()


def test_isolated_kills_a_python_sleep_at_the_deadline():
    t0 = time.monotonic()
    out = guard.run_isolated(lambda emit: (emit("row", 1), time.sleep(600)), timeout_s=0.5)
    assert out.kind == "timeout" and "job_timeout_s=0.5" in out.message
    assert out.tail == [("row", 1)]
    assert time.monotonic() - t0 < 10


def test_isolated_kills_a_long_call_in_c():
    """sum(range(10**13)) runs for hours in C; no signal handler could interrupt it."""
    t0 = time.monotonic()
    out = guard.run_isolated(lambda emit: sum(range(10**13)), timeout_s=0.5)
    assert out.kind == "timeout" and time.monotonic() - t0 < 10


def test_isolated_reports_exceptions_and_crashes():
    def boom(emit):
        raise ValueError("nope")

    out = guard.run_isolated(boom, timeout_s=30)
    assert out.kind == "raised" and out.message.startswith("ValueError: nope")
    out = guard.run_isolated(lambda emit: os.kill(os.getpid(), signal.SIGKILL), timeout_s=30)
    assert out.kind == "died" and "SIGKILL" in out.message and "out of memory" in out.message
    out = guard.run_isolated(lambda emit: os._exit(3), timeout_s=30)
    assert out.kind == "died" and "code 3" in out.message


# ------------------------------------------------------------------------------ streaming rows
@pytest.mark.parametrize("solver", ["cg", "lsmr"])  # callback and re-run strategies
def test_sink_streams_every_trace_row(solver):
    from hydra.utils import instantiate

    cfg = config(f"solver={solver}")
    events = []
    p = make_problem("laplace_bilinear", n=16)
    r = run_solver(p, instantiate(cfg.solver), Budget(max_iters=30), sink=lambda k, v: events.append((k, v)))
    assert events[0][0] == "setup" and events[0][1] == pytest.approx(r.setup_s)
    rows = [v for k, v in events if k == "row"]
    assert [row["iteration"] for row in rows] == list(r.trace.iteration)


# ------------------------------------------------------------------------------ fault injection
def test_hang_times_out_with_a_partial_trace_and_skips_later_repeats(tmp_path):
    t0 = time.monotonic()
    df = job(tmp_path, f"solver._target_={FAULTY}.Hangs", "job_timeout_s=1", "repeats=3")
    assert time.monotonic() - t0 < 20
    assert set(df.status) == {"timeout"} and set(df.repeat) == {0}  # repeats 1, 2 skipped
    assert list(df.iteration) == [0, 1, 2, 3]  # the checkpoints before the hang are kept
    assert df.message.iloc[0].startswith("no result after 1 s (job_timeout_s=1), killed during the solve")
    meta = read_metadata(tmp_path / "job" / "trace.parquet")
    assert meta["guard"]["repeats"][0]["outcome"] == "timeout"


def test_hang_in_setup_times_out(tmp_path):
    df = job(tmp_path, f"solver._target_={FAULTY}.HangsInSetup", "job_timeout_s=0.5")
    assert list(df.status) == ["timeout"] and df.message.iloc[0].endswith("killed during setup")
    assert df.iteration.isna().all()


def test_segfault_is_an_error_with_a_partial_trace(tmp_path):
    df = job(tmp_path, f"solver._target_={FAULTY}.Segfaults")
    assert set(df.status) == {"error"} and len(df) == 4
    assert "killed by SIGSEGV during the solve" in df.message.iloc[0]


def test_repeats_share_one_child_and_each_gets_its_own_deadline(tmp_path):
    df = job(tmp_path, f"solver._target_={FAULTY}.Slow", "+solver.delay=0.1", "budget.max_iters=6",
             "repeats=3", "job_timeout_s=1.5")  # 0.6 s per repeat: 1.8 s in all, more than one deadline
    assert set(df.status) == {"budget"} and set(df.repeat) == {0, 1, 2}
    guard_meta = read_metadata(tmp_path / "job" / "trace.parquet")["guard"]
    assert [r["outcome"] for r in guard_meta["repeats"]] == ["done"] * 3
    assert guard_meta["child_wall_s"] > 1.5


def test_a_job_stopped_from_outside_records_nothing(tmp_path):
    """SIGTERM (scancel, preemption, kill) is not the solver's fault: no trace, so resume runs it again."""
    with pytest.raises(guard.Interrupted, match="SIGTERM"):
        job(tmp_path, f"solver._target_={FAULTY}.Preempted")
    assert not (tmp_path / "job" / "trace.parquet").exists()


@pytest.mark.parametrize("isolate", ["true", "false"])
def test_raise_and_nan_are_recorded(tmp_path, isolate):
    df = job(tmp_path, f"solver._target_={FAULTY}.Raises", f"isolate={isolate}", name="raises")
    assert set(df.status) == {"error"} and "injected fault" in df.message.iloc[0]
    df = job(tmp_path, f"solver._target_={FAULTY}.ReturnsNaN", f"isolate={isolate}", name="nan")
    assert set(df.status) == {"diverged"} and df.message.iloc[0].startswith("MSR nan")


def test_bad_solver_parameter_is_recorded_not_raised(tmp_path):
    df = job(tmp_path, "solver.method=nope")
    assert list(df.status) == ["error"] and "bad solver configuration" in df.message.iloc[0]


def test_single_job_that_never_started_writes_nothing(tmp_path):
    with pytest.raises(JobNotRun, match="not found"):
        job(tmp_path, f"solver._target_={FAULTY}.NeedsFile", "+solver.checkpoint=/nonexistent",
            write_unstarted=False)
    assert not (tmp_path / "job").exists()


# ------------------------------------------------------------------------------ memory guard
def test_memory_refusal_message():
    msg = guard.memory_refusal({"name": "laplace_bilinear", "n": 40000}, {"name": "cg"}, "krylov",
                               available=8 * guard.GiB)
    assert msg.startswith("grid 40000x40000 needs ~1192.1 GiB") and "this machine has 8.0 GiB available" in msg
    assert guard.memory_refusal({"name": "laplace_bilinear", "n": 512}, {"name": "cg"}, "krylov") is None
    # sparse LU and the obstacle problem's reference solve cost more per node
    cg = guard.estimate_bytes({"n": 1024}, {"name": "cg"}, "krylov")
    assert guard.estimate_bytes({"n": 1024}, {"name": "splu"}, "direct") > 3 * cg
    assert guard.estimate_bytes({"n": 1024, "name": "laplace_obstacles"}, {"name": "cg"}, "krylov") > 3 * cg


def test_too_large_grid_is_an_error_row_without_building_the_problem(tmp_path):
    t0 = time.monotonic()
    df = job(tmp_path, "problem.n=40000")
    assert time.monotonic() - t0 < 15  # 1.6e9 nodes: building it would take minutes and ~1 TB
    assert list(df.status) == ["error"] and df.message.iloc[0].startswith("grid 40000x40000 needs ~")
    assert df.h.iloc[0] == 40000 and df.family.iloc[0] == "krylov"


# ------------------------------------------------------------------------------ resume keys
def test_job_key_is_content_not_order():
    a = config("solver=adam", "solver.lr=0.1", "budget.max_seconds=5")
    b = config("budget.max_seconds=5.0", "solver.lr=0.1", "solver=adam")
    from omegaconf import OmegaConf

    ka = resume.job_key(OmegaConf.to_container(a, resolve=True), ["solver=adam", "solver.lr=0.1"])
    kb = resume.job_key(OmegaConf.to_container(b, resolve=True), ["solver.lr=0.1", "solver=adam"])
    assert ka == kb
    c = OmegaConf.to_container(config("solver=adam", "solver.lr=0.1", "budget.max_seconds=6"), resolve=True)
    assert resume.job_key(c, ["solver=adam", "solver.lr=0.1"]) != ka
    d = OmegaConf.to_container(config("solver=adam", "solver.lr=0.1", "budget.max_seconds=5", "progress=true",
                                      "job_timeout_s=9"), resolve=True)
    assert resume.job_key(d, ["solver=adam", "solver.lr=0.1"]) == ka  # not part of the result


def test_complete_jobs_finds_traces_by_key_and_ignores_debris(tmp_path):
    run_job(config("budget.max_iters=5"), tmp_path / "a", [])
    meta = read_metadata(tmp_path / "a" / "trace.parquet")
    assert resume.key_from_metadata(meta) == meta["job_key"]
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / ".trace-x.tmp").write_bytes(b"PAR1 half a file")
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "trace.parquet").write_bytes(b"garbage")
    assert resume.complete_jobs(tmp_path) == {meta["job_key"]: tmp_path / "a" / "trace.parquet"}


def test_a_job_killed_while_writing_leaves_no_trace(tmp_path):
    def write_and_die(emit):
        def partial(table, where, **kw):
            Path(where).write_bytes(b"PAR1 partial")
            os.kill(os.getpid(), signal.SIGKILL)

        pq.write_table = partial  # only in this child
        df = job(tmp_path, "budget.max_iters=5", "isolate=false")
        return df

    out = guard.run_isolated(write_and_die, timeout_s=60)
    assert out.kind == "died"
    files = sorted(p.name for p in (tmp_path / "job").iterdir())
    assert "trace.parquet" not in files and any(f.endswith(".tmp") for f in files)
    with pytest.raises(ResultsError):
        load(tmp_path)
    assert resume.complete_jobs(tmp_path) == {}


# ------------------------------------------------------------------------------ results on disk
def test_old_schema_is_skipped_with_a_message(tmp_path):
    run_job(config("budget.max_iters=5"), tmp_path / "new", [])
    old = pa.table({"solver": ["cg"], "iteration": [1], "residual": [0.1]})  # schema 0: no problem, n, status
    (tmp_path / "old").mkdir()
    pq.write_table(old, tmp_path / "old" / "trace.parquet")
    df = load(tmp_path)
    assert set(df.path) == {"new/trace.parquet"}
    (path, why), = df.attrs["skipped"]
    assert path.endswith("old/trace.parquet") and why.startswith("older or foreign schema")
    with pytest.raises(ResultsError, match="older or foreign schema"):
        load(tmp_path / "old")


def test_write_trace_is_atomic_no_temp_left(tmp_path):
    df = job(tmp_path, "budget.max_iters=5")
    write_trace(df.drop(columns=["path"]), tmp_path / "again" / "trace.parquet", {})
    assert [p.name for p in (tmp_path / "again").iterdir()] == ["trace.parquet"]


# ------------------------------------------------------------------------------ command line (no subprocess)
@pytest.mark.parametrize("argv, expected", [
    (["solver=nope"], "unknown solver 'nope'; valid: "),
    (["solver=cg,nope"], "unknown solver 'nope'"),
    (["problem=nope"], "unknown problem 'nope'; valid: "),
    (["+sweep=nope"], "unknown sweep 'nope'"),
    (["solver="], "solver= needs a value; valid: "),
    (["problem.n=4"], "problem.n=4 is not a grid size: use an integer >= 8"),
    (["problem.n=6.5"], "problem.n=6.5 is not a grid size"),
    (["problem.n=abc"], "problem.n=abc is not a grid size"),
    (["problem.n=range(4,32,8)"], "problem.n=4 is not a grid size"),
    (["problem.n=64,,"], "malformed override 'problem.n=64,,'"),
    (["budget.max_seconds=0"], "budget.max_seconds=0 must be a positive number"),
    (["budget.max_seconds=-1"], "budget.max_seconds=-1 must be a positive number"),
    (["budget.max_iters=-5"], "budget.max_iters=-5 must be a positive integer"),
    (["budget.max_iters=2.5"], "budget.max_iters=2.5 must be a positive integer"),
    (["repeats=0"], "repeats=0 must be a positive integer"),
    (["job_timeout_s=0"], "job_timeout_s=0 must be a positive number"),
    (["resume=/nonexistent/sweep"], "resume=/nonexistent/sweep: no such sweep folder"),
])
def test_check_arguments_rejects(argv, expected):
    assert expected in (check_arguments(argv) or "")


@pytest.mark.parametrize("argv", [
    ["problem.n=range(16,65,16)", "solver=cg,minres", "+sweep=laplace_scaling"],
    ["problem.n=choice(16,32)", "problem.h=null", "budget.max_seconds=0.5", "job_timeout_s=null"],
    ["-m", "--cfg", "job", "budget.max_seconds=interval(1,2)", "~budget.target_msr"],
])
def test_check_arguments_accepts(argv, tmp_path):
    assert check_arguments([*argv, f"hydra.run.dir={tmp_path}/x/${{now:%H}}"]) is None


def test_unwritable_results_folder(tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("")
    assert "is a file, not a folder" in check_arguments([f"hydra.run.dir={afile}/sub"])
    assert "is a file, not a folder" in check_arguments([f"hydra.sweep.dir={afile}/sub/${{now:%H}}"])
    assert "cannot write results there" in check_arguments(["hydra.run.dir=/proc/forbidden"])


def test_launcher_presets_compose():
    with initialize_config_dir(version_base="1.3", config_dir=CONF, job_name="test"):
        slurm = compose("config", overrides=["hydra/launcher=slurm", "threads=4"], return_hydra_config=True)
        local = compose("config", overrides=["hydra/launcher=joblib_local"], return_hydra_config=True)
    assert slurm.hydra.launcher._target_.endswith("SlurmLauncher")
    assert slurm.hydra.launcher.cpus_per_task == 4 and slurm.hydra.launcher.additional_parameters.exclusive
    assert local.hydra.launcher._target_.endswith("JoblibLauncher") and local.hydra.launcher.n_jobs == -1


def test_min_grid_matches_problems():
    assert MIN_GRID == PROBLEMS_MIN_GRID


def test_resume_points_the_sweep_at_the_old_folder(tmp_path):
    argv = resume_arguments(["+sweep=ci", f"resume={tmp_path}"])
    assert f"hydra.sweep.dir='{tmp_path.resolve()}'" in argv
    subdir = next(a for a in argv if a.startswith("hydra.sweep.subdir="))
    assert "/resumed-" in subdir and subdir.endswith("-${hydra.job.num}")
    assert resume_arguments(["solver=cg"]) == ["solver=cg"]
    assert "hydra.sweep.dir=/x" in resume_arguments([f"resume={tmp_path}", "hydra.sweep.dir=/x"])


def test_remove_job_folder_only_removes_hydra_bookkeeping(tmp_path):
    keep = tmp_path / "keep"
    (keep / ".hydra").mkdir(parents=True)
    (keep / "mine.txt").write_text("x")
    remove_job_folder(keep)
    assert (keep / "mine.txt").exists() and (keep / ".hydra").exists()
    gone = tmp_path / "gone"
    (gone / ".hydra").mkdir(parents=True)
    (gone / "run.log").write_text("")
    remove_job_folder(gone)
    assert not gone.exists() and tmp_path.exists()


def test_faulty_solvers_behave_in_process():
    p = make_problem("laplace_bilinear", n=16)
    r = run_solver(p, faulty.Raises("raises"), Budget(max_iters=10))
    assert r.status == "error" and len(r.trace) == 4
    r = run_solver(p, faulty.ReturnsNaN("nan"), Budget(max_iters=10))
    assert r.status == "diverged"
