"""Guards, resume keys, fault injection and bad input, in process (fast).

The command-line end of the same features is in tests/test_cli.py.
"""

from __future__ import annotations

import copy
import json
import math
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hydra import compose, initialize_config_dir
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness import guard, memory, resume
from harness.job import JobNotRun, run_job
from harness.lock import LOCK_NAME, FolderBusy, FolderLock
from harness.monitor import Budget
from harness.output import plan_output, remove_job_folder, resume_arguments
from harness.overrides import MIN_GRID, check_arguments, check_values
from harness.results import ResultsError, load, read_metadata, write_trace
from harness.runner import run_solver
from harness.validate import config_error
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


def test_a_result_that_beats_the_deadline_by_a_hair_is_kept(tmp_path, monkeypatch):
    """The repeat's result is in, then the deadline passes before the child says it is done (here: the child
    stalls after its last repeat): the result is the job's, no traceback, no lost trace."""
    import harness.job as job_module

    def slow_decision(result, limit):
        time.sleep(3)  # in the forked child, after the result was sent
        return False

    monkeypatch.setattr(job_module, "more_repeats", slow_decision)
    df = job(tmp_path, "budget.max_iters=5", "job_timeout_s=1")
    assert list(df.status.unique()) == ["budget"] and df.iteration.max() == 5
    meta = read_metadata(tmp_path / "job" / "trace.parquet")["guard"]
    assert meta["child_outcome"] == "timeout" and [r["outcome"] for r in meta["repeats"]] == ["done"]


def test_a_message_in_the_pipe_at_the_deadline_is_read_first():
    def work(emit):
        emit("started")
        emit("result", "in time")  # sent while the parent is busy with "started", long before the deadline
        time.sleep(5)

    seen = []

    def slow_parent(kind, payload):
        seen.append((kind, payload))
        if kind == "started":
            time.sleep(1.0)  # the deadline passes meanwhile, with the result waiting in the pipe

    out = guard.run_isolated(work, timeout_s=0.5, on_event=slow_parent)
    assert out.kind == "timeout" and seen == [("started", None), ("result", "in time")]


def test_building_the_problem_is_inside_the_deadline(tmp_path):
    """A problem whose generator runs for minutes (10 million obstacle boxes) is stopped at the deadline and
    recorded as a timeout while building the problem; the sweep goes on."""
    t0 = time.monotonic()
    df = job(tmp_path, "problem=laplace_obstacles", "problem.n_boxes=10000000", "job_timeout_s=1")
    assert time.monotonic() - t0 < 30
    assert list(df.status) == ["timeout"]
    assert df.message.iloc[0] == "no result after 1 s (job_timeout_s=1), killed while building the problem"


def test_a_problem_that_cannot_be_built_is_an_error_row(tmp_path, monkeypatch):
    import harness.job as job_module

    def broken(cfg):
        raise ValueError("no such geometry")

    monkeypatch.setattr(job_module, "build_problem", broken)
    df = job(tmp_path, "budget.max_iters=5")
    assert list(df.status) == ["error"]
    assert df.message.iloc[0] == "building the problem failed: ValueError: no such geometry"


def test_a_huge_budget_gets_a_finite_deadline_that_says_so(monkeypatch):
    import harness.job as job_module
    from harness.job import MAX_DEFAULT_TIMEOUT_S, build_budget, job_timeout

    said = []  # the log line itself (Hydra's logging set-up in other tests may detach pytest's handlers)
    monkeypatch.setattr(job_module.log, "info", said.append)
    cfg = config("budget.max_seconds=1e300")
    assert job_timeout(cfg, build_budget(cfg)) == MAX_DEFAULT_TIMEOUT_S
    assert len(said) == 1 and "capped at 86400 s per repeat; set job_timeout_s" in said[0]
    assert config_error(config("budget.max_seconds=inf")).startswith("budget.max_seconds=inf is not valid")


def test_a_trace_is_never_replaced(tmp_path):
    first = job(tmp_path, "budget.max_iters=5")
    path = tmp_path / "job" / "trace.parquet"
    before = path.read_bytes()
    with pytest.raises(FileExistsError):
        write_trace(first.drop(columns=["path"]), path, {})
    again = run_job(config("budget.max_iters=5"), tmp_path / "job", [])  # another run wrote there meanwhile
    assert path.read_bytes() == before
    assert again.parent.name.startswith("again-") and again.parent.parent == tmp_path / "job"
    assert [p.name for p in (tmp_path / "job").iterdir() if p.name.startswith(".trace")] == []


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
CG = {"_target_": "solvers.krylov.Krylov", "name": "cg", "method": "cg", "preconditioner": None}


def test_memory_refusal_message():
    msg = memory.memory_refusal({"name": "laplace_bilinear", "n": 40000}, CG, available=8 * memory.GiB)
    assert msg.startswith("grid 40000x40000 needs ~1192.1 GiB") and "this machine has 8.0 GiB available" in msg
    assert "krylov family" in msg
    assert memory.memory_refusal({"name": "laplace_bilinear", "n": 512}, CG) is None
    # sparse LU and the obstacle problem's reference solve cost more per node
    cg = memory.estimate_bytes({"n": 1024}, CG)
    assert memory.estimate_bytes({"n": 1024}, {"_target_": "solvers.direct.SparseLU", "name": "splu"}) > 3 * cg
    assert memory.estimate_bytes({"n": 1024, "name": "laplace_obstacles"}, CG) > 3 * cg


def test_solver_classes_declare_family_and_memory():
    """The memory guard asks the solver class (no table keyed by family); AMG-preconditioned CG is multigrid."""
    amg = {**CG, "name": "cg_pyamg_sa", "preconditioner": "pyamg_sa"}
    assert memory.solver_family(CG) == "krylov" and memory.solver_family(amg) == "multigrid"
    assert memory.estimate_bytes({"n": 100}, amg) > memory.estimate_bytes({"n": 100}, CG)
    ilu = {**CG, "preconditioner": "ilu"}
    assert memory.estimate_bytes({"n": 100}, ilu) > 2 * memory.estimate_bytes({"n": 100}, CG)
    unknown = memory.estimate_bytes({"n": 100}, {"_target_": "no.such.Solver", "name": "x"})
    assert unknown == 100 * 100 * (memory.BASE_BYTES_PER_NODE + memory.UNKNOWN_SOLVER_BYTES_PER_NODE)


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

    ka = resume.job_key(OmegaConf.to_container(a, resolve=True))
    kb = resume.job_key(OmegaConf.to_container(b, resolve=True))
    assert ka == kb
    c = OmegaConf.to_container(config("solver=adam", "solver.lr=0.1", "budget.max_seconds=6"), resolve=True)
    assert resume.job_key(c) != ka
    d = OmegaConf.to_container(config("solver=adam", "solver.lr=0.1", "budget.max_seconds=5", "progress=true",
                                      "job_timeout_s=9"), resolve=True)
    assert resume.job_key(d) == ka  # not part of the result


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


def test_a_sparse_trace_is_normalised_once_on_load(tmp_path):
    from harness.results import COLUMNS, TEXT_DEFAULTS, read_trace

    (tmp_path / "a").mkdir()  # only the essential columns, one solve that never ran
    pq.write_table(pa.table({"solver": ["cg"], "problem": ["laplace_bilinear"], "n": [16], "status": [None],
                             "iteration": pa.array([None], pa.int64())}), tmp_path / "a" / "trace.parquet")
    df = load(tmp_path)
    assert set(COLUMNS) | {"path", "job"} <= set(df.columns)
    row = df.iloc[0]
    assert row["label"] == "cg" and row["status"] == TEXT_DEFAULTS["status"] and row["family"] == "unknown"
    assert row["repeat"] == 0 and row["n_unknowns"] == 256 and row["job"] == "a/trace.parquet#0"
    assert df["msr"].dtype == float and math.isnan(row["iteration"])
    one = read_trace(tmp_path / "a" / "trace.parquet")  # a single file (a baseline) reads the same way
    pd.testing.assert_frame_equal(one.drop(columns=["path", "job"]), df.drop(columns=["path", "job"]))


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
    (["problem.n=64,,"], "malformed override 'problem.n=64,,'"),
    (["resume=/nonexistent/sweep"], "resume=/nonexistent/sweep: no such sweep folder"),
])
def test_check_arguments_rejects(argv, expected):
    assert expected in (check_arguments(argv) or "")


# Every value of every job, checked on the composed configs (harness.validate), before anything runs.
@pytest.mark.parametrize("argv, expected", [
    (["problem.n=4"], "problem.n=4 is not valid for laplace_bilinear: use an integer >= 8"),
    (["problem.n=6.5"], "problem.n=6.5 is not valid"),
    (["problem.n=abc"], "problem.n=abc is not valid"),
    (["problem.n=range(4,32,8)"], "problem.n=4 is not valid"),
    (["+sweep=laplace_scaling", "problem.n=64,4"], "problem.n=4 is not valid"),
    (["budget.max_seconds=0"], "budget.max_seconds=0 is not valid: use a positive finite number of seconds"),
    (["budget.max_seconds=inf"], "budget.max_seconds=inf is not valid: use a positive finite number of seconds"),
    (["warmup=no"], "warmup=no is not valid: use true or false"),
    (["repeat_solve_under_s=-1"], "repeat_solve_under_s=-1 is not valid: use a positive number of seconds, or null"),
    (["repeats=1001"], "repeats=1001 is not valid: use an integer in 1..1000"),
    (["threads=5000"], "threads=5000 is not valid: use an integer in 1..4096 or all"),
    (["solver=metamizer", "solver.checkpoint=''"], "solver.checkpoint='' is empty: give a checkpoint file"),
    (["seed=${oops}"], "seed: its value does not resolve (Interpolation key 'oops' not found)"),
    (["budget.max_seconds=-1"], "budget.max_seconds=-1 is not valid"),
    (["budget.max_iters=-5"], "budget.max_iters=-5 is not valid: use a positive integer"),
    (["budget.max_iters=2.5"], "budget.max_iters=2.5 is not valid: use a positive integer"),
    (["budget.divergence_factor=0"], "budget.divergence_factor=0 is not valid: use a factor > 1"),
    (["budget.target_msr=abc"], "budget.target_msr=abc is not valid: use an MSR >= 0, or null"),
    (["repeats=0"], "repeats=0 is not valid: use an integer in 1..1000"),
    (["job_timeout_s=0"], "job_timeout_s=0 is not valid: use a positive number of seconds, or null"),
    (["threads=0"], "threads=0 is not valid: use an integer in 1..4096"),
    (["threads=-1"], "threads=-1 is not valid"),
    (["threads=abc"], "threads=abc is not valid"),
    (["seed=abc"], "seed=abc is not valid: use an integer in 0..4294967295"),
    (["verify_timing=1"], "verify_timing=1 is not valid: use true or false"),
    (["+bogus=1"], "+bogus: no such setting"),
    (["+solver.bogus=1"], "+solver.bogus=1: cg has no parameter 'bogus'"),
    (["solver=adam", "+solver.lrr=0.5"], "+solver.lrr=0.5: adam has no parameter 'lrr'; did you mean solver.lr?"),
    (["solver=adam", "solver.lr=abc"], "solver.lr=abc is not valid for adam: use a number > 0 (e.g. solver.lr=0.01"),
    (["solver=adam", "solver.lr=0.1,-1"], "solver.lr=-1 is not valid for adam"),
    (["+sweep=paper_lr_adam", "solver.lr=0.1,abc"], "solver.lr=abc is not valid for adam"),
    (["solver=cg", "solver.method=nope"], "solver.method=nope is not valid for cg: use one of cg, minres"),
    (["solver=adam", "solver.device=tpu"], "solver.device=tpu is not valid for adam: use cpu, cuda or cuda:N"),
    (["solver=metamizer", "solver.checkpoint=/tmp"], "solver.checkpoint=/tmp is a directory"),
    (["problem=laplace_harmonic", "problem.variant=zz"], "problem.variant=zz is not valid for laplace_harmonic"),
    (["-m", "solver=adam,cg", "solver.lr=0.1"], "Could not override 'solver.lr'"),
])
def test_check_values_rejects(argv, expected):
    line = check_values(argv)
    assert line is not None and expected in line and "\n" not in line, line


@pytest.mark.parametrize("argv", [
    ["solver=adam", "solver.lr=0.5"],
    ["solver=lbfgsb", "+solver.maxcor=20"],
    ["solver=cg", "solver.preconditioner=ilu", "+solver.ilu_drop_tol=1e-4"],
    ["+sweep=paper_lr_adam"],
    ["problem=laplace_obstacles", "seed=3", "threads=2", "budget.target_msr=null"],
    [f"solver._target_={FAULTY}.Slow", "+solver.delay=0.01"],
])
def test_check_values_accepts(argv):
    assert check_values(argv) is None


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
    (keep / ".hydra").mkdir(parents=True)  # another run's (this job's own went to .hydra-<stamp>)
    (keep / ".hydra-2026").mkdir()
    (keep / "run.log").write_text("both runs' lines")
    (keep / "mine.txt").write_text("x")
    remove_job_folder(keep, ".hydra-2026")
    assert sorted(p.name for p in keep.iterdir()) == [".hydra", "mine.txt", "run.log"]
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


# ------------------------------------------------------------------------------ property-based bad input
# Random values of every type for each config key, one key at a time, checked by the validation layer
# directly (compose is slow, so each solver/problem config is composed once). Each value must either be
# refused in one line naming the key and the value, or be used exactly as given by what consumes it.
_COMPOSED: dict[tuple[str, str], dict] = {}


def composed(solver: str, problem: str) -> dict:
    from omegaconf import OmegaConf

    if (solver, problem) not in _COMPOSED:
        _COMPOSED[solver, problem] = OmegaConf.to_container(config(f"solver={solver}", f"problem={problem}"),
                                                            resolve=True)
    return copy.deepcopy(_COMPOSED[solver, problem])


KEYS = [  # (key, solver, problem)
    *((k, "cg", "laplace_bilinear") for k in (
        "budget.max_iters", "budget.max_seconds", "budget.target_msr", "budget.divergence_factor", "repeats",
        "seed", "threads", "verify_timing", "progress", "isolate", "memory_check", "job_timeout_s", "sweep_name",
        "warmup", "repeat_solve_under_s",
        "problem.n", "problem.h", "solver.method", "solver.preconditioner", "solver.restart", "solver.bogus")),
    ("problem.seed", "cg", "laplace_obstacles"), ("problem.n_boxes", "cg", "laplace_obstacles"),
    ("problem.variant", "cg", "laplace_harmonic"), ("problem.bogus", "cg", "laplace_bilinear"),
    *((k, "adam", "laplace_bilinear") for k in ("solver.lr", "solver.gradient", "solver.optimizer",
                                                "solver.device", "solver.lrr")),
    ("solver.maxcor", "lbfgsb", "laplace_bilinear"), ("solver.hidden", "metamizer", "laplace_bilinear"),
    ("solver.variant", "metamizer", "laplace_bilinear"), ("solver.workers", "dst", "laplace_bilinear"),
    ("solver.kind", "pyamg_sa", "laplace_bilinear"), ("solver.cycle", "pyamg_sa", "laplace_bilinear"),
]
ANY_VALUE = st.one_of(
    st.none(), st.booleans(), st.integers(-(10**6), 10**6), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=6), st.sampled_from(["cg", "ilu", "exact", "cpu", "cuda:1", "V", "batch", "x2-y2", "all"]),
    st.lists(st.integers(0, 9), max_size=2), st.dictionaries(st.text(max_size=2), st.integers(), max_size=1))


def _consume_exactly(key: str, cfg: dict, value) -> None:
    """What the harness does with an accepted value: it must take it as it is (no coercion, no error)."""
    from hydra.utils import instantiate

    section, _, name = key.rpartition(".")
    if section == "budget":
        assert getattr(Budget(**cfg["budget"]), name) == value
    elif section == "problem":
        p = dict(cfg["problem"])
        if max(v for v in (p.get("n"), p.get("h"), p.get("w")) if isinstance(v, int)) <= 64:
            make_problem(p.pop("name"), **p)
        else:
            assert type(value) is int
    elif section == "solver":
        solver = instantiate(cfg["solver"], _convert_="all")
        assert solver.params.get(name, getattr(solver, name, None)) == value
    elif name == "threads":
        from harness.job import resolve_threads

        assert resolve_threads(value) == (value if type(value) is int else len(os.sched_getaffinity(0)))
    elif name in ("repeats", "seed"):
        assert type(value) is int and value >= (0 if name == "seed" else 1)
        assert name == "seed" or value <= 1000
    elif name in ("verify_timing", "progress", "isolate", "memory_check", "warmup"):
        assert type(value) is bool
    elif name == "repeat_solve_under_s":
        from omegaconf import OmegaConf

        from harness.job import repeat_limit

        assert repeat_limit(OmegaConf.create(cfg)) == value
    elif name == "job_timeout_s":
        assert value is None or (type(value) in (int, float) and math.isfinite(value) and value > 0)
    elif name == "sweep_name":
        assert isinstance(value, str) and value and "/" not in value


@given(case=st.sampled_from(KEYS), value=ANY_VALUE)
@settings(max_examples=int(os.environ.get("HYPOTHESIS_EXAMPLES", "400")), deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])
def test_any_value_is_refused_in_one_line_or_used_exactly(case, value):
    key, solver, problem = case
    cfg = composed(solver, problem)
    section, _, name = key.rpartition(".")
    target = cfg[section] if section else cfg
    added = [] if name in target else [key]
    target[name] = value
    line = config_error(cfg, added)
    if line is not None:
        assert "\n" not in line and "Traceback" not in line
        assert line.lstrip("+").startswith(f"{key}") or line.startswith(f"+{key}"), line
        return
    assert name not in ("bogus", "lrr"), f"+{key}={value!r} (not a parameter) was accepted"
    _consume_exactly(key, cfg, value)


# ------------------------------------------------------------------------------ one run per folder
def test_lock_refuses_a_second_owner_and_names_the_first(tmp_path):
    folder = tmp_path / "a" / "b"
    first = FolderLock(folder).acquire()
    owner = json.loads((folder / LOCK_NAME).read_text())
    assert owner["pid"] == os.getpid() and owner["started"]
    with pytest.raises(FolderBusy, match=rf"in use by another run \(PID {os.getpid()}, started "):
        FolderLock(folder).acquire()  # another open file description: its flock is refused
    first.release()
    assert not (tmp_path / "a").exists()  # the folders it created, removed while empty
    with FolderLock(folder) as again:
        assert again.stale is None
        (folder / "keep").write_text("x")
    assert (folder / "keep").exists() and not (folder / LOCK_NAME).exists()


def test_lock_of_a_dead_run_is_taken_over(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / LOCK_NAME).write_text(json.dumps({"pid": dead.pid, "started": "earlier", "host": socket.gethostname()}))
    with FolderLock(tmp_path) as lock:
        assert lock.stale["pid"] == dead.pid
        assert json.loads((tmp_path / LOCK_NAME).read_text())["pid"] == os.getpid()


def test_lock_of_a_live_run_holds_without_flock(tmp_path):
    """Where flock is a no-op (some network file systems), a live PID with its start time still holds."""
    from harness.lock import _proc_start

    parent = os.getppid()
    (tmp_path / LOCK_NAME).write_text(json.dumps({"pid": parent, "host": socket.gethostname(),
                                                  "proc_start": _proc_start(parent), "started": "then"}))
    with pytest.raises(FolderBusy, match=f"PID {parent}, started then"):
        FolderLock(tmp_path).acquire()


def test_a_lock_covers_the_folders_above_and_below_it(tmp_path):
    """A single job pointed into a running sweep's job folder, and a sweep into a folder where a job runs,
    are refused naming the folder in use; a dead run's lock below or above blocks nothing."""
    sweep = tmp_path / "sweep"
    with FolderLock(sweep):
        with pytest.raises(FolderBusy, match=rf"{sweep / 'p_n16/cg/1'} is inside {sweep}, which another run is "
                                             rf"using \(PID {os.getpid()}"):
            FolderLock(sweep / "p_n16" / "cg" / "1").acquire()
        assert not (sweep / "p_n16").exists()  # the refused run left nothing
    job = tmp_path / "other" / "p_n16" / "cg" / "0"
    with FolderLock(job):
        with pytest.raises(FolderBusy, match=rf"{tmp_path / 'other'} holds {job}, which another run is using"):
            FolderLock(tmp_path / "other").acquire()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (job.parent / "9").mkdir(parents=True)
    (job.parent / "9" / LOCK_NAME).write_text(json.dumps({"pid": dead.pid, "host": socket.gethostname()}))
    with FolderLock(tmp_path / "other") as lock:
        assert lock.stale is None


def test_output_folder_rules(tmp_path):
    sweep = tmp_path / "sweep"
    sweep.mkdir()
    folder, pin, problem = plan_output(["-m", f"hydra.sweep.dir={sweep}"])  # empty: fine
    assert problem is None and folder == sweep and pin == []
    (sweep / "multirun.yaml").write_text("")
    folder, _, problem = plan_output(["-m", f"hydra.sweep.dir={sweep}"])
    assert folder == sweep
    assert f"already holds a sweep (multirun.yaml): add the missing jobs with resume={sweep}" in problem
    _, _, problem = plan_output(["-m", f"hydra.sweep.dir={tmp_path}/new", "hydra.sweep.subdir=fixed"])
    assert "hydra.sweep.subdir=fixed has no ${hydra.job.num}" in problem
    run_job(config("budget.max_iters=5"), tmp_path / "job", [])
    _, _, problem = plan_output([f"hydra.run.dir={tmp_path}/job"])
    assert "already holds a job's trace" in problem
    folder, pin, problem = plan_output([])  # the default stamped folder is resolved now and pinned
    assert problem is None and "${" not in str(folder) and pin == [f"hydra.run.dir='{folder}'"]


# ------------------------------------------------------------------------------ a real memory fault
def test_real_out_of_memory_is_an_error_and_the_next_job_runs(tmp_path):
    df = job(tmp_path, f"solver._target_={FAULTY}.OutOfMemory", name="oom")
    assert set(df.status) == {"error"} and list(df.iteration) == [0, 1, 2, 3]  # partial trace kept
    assert df.message.iloc[0].startswith("MemoryError: Unable to allocate 2.00 GiB")
    assert set(job(tmp_path, "budget.max_iters=5", name="next").status) == {"budget"}  # this process is fine
