"""The command line end to end (subprocesses, tiny grids): bad input, injected faults,
a sweep killed and resumed, the joblib and submitit launchers, concurrent sweeps."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.results import load, read_metadata

REPO = Path(__file__).resolve().parents[1]
FAULTY = "tests.faulty_solvers"
ENV = {**os.environ, "PYTHONPATH": str(REPO), "HYDRA_FULL_ERROR": ""}


def command(*args: str, module: str = "harness.run") -> list[str]:
    return [sys.executable, "-m", module, *args]


def run(*args: str, module: str = "harness.run", cwd: Path = REPO, timeout: float = 180):
    return subprocess.run(command(*args, module=module), cwd=cwd, env=ENV, capture_output=True, text=True,
                          timeout=timeout)


def lines(proc) -> list[str]:
    return [ln for ln in (proc.stdout + proc.stderr).splitlines() if ln.strip()]


# ------------------------------------------------------------------------------ bad input
def bad_inputs(tmp: Path) -> dict[str, tuple[list[str], str, str]]:
    """case -> (arguments, module, expected text). Each must give one line and write nothing."""
    afile = tmp / "a_file"
    afile.write_text("not a folder")
    garbage = tmp / "garbage.safetensors"
    garbage.write_bytes(os.urandom(256))
    garbage_pt = tmp / "garbage.pt"
    garbage_pt.write_bytes(b"\x80\x04not a pickle at all" + os.urandom(64))
    (tmp / "empty").mkdir()
    run_ = "harness.run"
    return {
        "unknown solver": (["solver=nope"], run_, "error: unknown solver 'nope'; valid: adadelta, "),
        "unknown problem": (["problem=nope"], run_, "error: unknown problem 'nope'; valid: laplace_bilinear"),
        "n below 8": (["problem.n=4"], run_, "error: problem.n=4 is not valid for laplace_bilinear: use an "
                                              "integer >= 8"),
        "non-integer n": (["problem.n=6.5"], run_, "error: problem.n=6.5 is not valid"),
        "zero budget": (["budget.max_seconds=0"], run_,
                        "error: budget.max_seconds=0 is not valid: use a positive finite number of seconds"),
        "negative budget": (["budget.max_iters=-5"], run_, "error: budget.max_iters=-5 is not valid: use a positive "
                                                           "integer"),
        "threads -1": (["threads=-1"], run_, "error: threads=-1 is not valid: use an integer in 1..4096"),
        "threads 0": (["threads=0"], run_, "error: threads=0 is not valid"),
        "threads abc": (["threads=abc"], run_, "error: threads=abc is not valid"),
        "seed abc": (["seed=abc"], run_, "error: seed=abc is not valid: use an integer in 0..4294967295"),
        "added unknown parameter": (["+solver.bogus=1"], run_, "error: +solver.bogus=1: cg has no parameter 'bogus'"),
        "misspelt parameter": (["solver=adam", "+solver.lrr=0.5"], run_,
                               "error: +solver.lrr=0.5: adam has no parameter 'lrr'; did you mean solver.lr?"),
        "divergence factor 0": (["budget.divergence_factor=0"], run_,
                                "error: budget.divergence_factor=0 is not valid: use a factor > 1"),
        "lr abc": (["solver=adam", "solver.lr=abc"], run_, "error: solver.lr=abc is not valid for adam: use a number"),
        "target abc": (["budget.target_msr=abc"], run_, "error: budget.target_msr=abc is not valid: use an MSR >= 0"),
        "checkpoint is a directory": (["solver=metamizer", "solver.checkpoint=/tmp"], run_,
                                      "error: solver.checkpoint=/tmp is a directory"),
        "malformed sweep value": (["-m", "problem.n=64,,"], run_, "error: malformed override 'problem.n=64,,'"),
        "empty solver": (["solver="], run_, "error: solver= needs a value; valid: "),
        "bad value in a sweep": (["+sweep=laplace_scaling", "problem.n=64,4"], run_, "error: problem.n=4 is not valid"),
        "unknown solver parameter": (["solver.bogus=1"], run_,
                                     "error: Could not override 'solver.bogus': the solver's config has no such key"),
        "missing checkpoint": (["solver=metamizer", "solver.checkpoint=/nonexistent"], run_,
                               "checkpoint /nonexistent not found"),
        "corrupt checkpoint": (["solver=metamizer", f"solver.checkpoint={garbage}"], run_,
                               "is not a readable safetensors file"),
        "corrupt torch checkpoint": (["solver=metamizer", f"solver.checkpoint={garbage_pt}"], run_,
                                     "could not be loaded safely"),
        "missing file (test solver)": ([f"solver._target_={FAULTY}.NeedsFile", "+solver.checkpoint=/nonexistent"],
                                       run_, "checkpoint /nonexistent not found"),
        "grid too large": (["problem.n=40000"], run_, "grid 40000x40000 needs ~"),
        "unwritable results folder": ([f"hydra.run.dir={afile}/sub"], run_, "is a file, not a folder"),
        "resume from nowhere": (["-m", "resume=/nonexistent"], run_, "resume=/nonexistent: no such sweep folder"),
        "report on an empty folder": ([str(tmp / "empty")], "harness.report", "error: no traces (trace.parquet)"),
        "report target inf": ([str(tmp / "empty"), "--target", "inf"], "harness.report",
                              "error: --target inf is not valid: use a positive finite MSR"),
        "evaluate unknown solver": (["--solver", "nope"], "harness.evaluate",
                                    "harness.evaluate: error: --solver nope: no such solver config"),
        "evaluate unavailable solver": (["--solver", "cupy_cg", "--sizes", "16", "--iters", "5"], "harness.evaluate",
                                        "harness.evaluate: error: cupy_cg on laplace_bilinear n=16: unavailable: "),
        "check empty baseline": (["--baseline", str(tmp / "empty"), "--out", str(tmp / "out")], "harness.check",
                                 "harness.check: error: no baseline at"),
    }


@pytest.fixture(scope="module")
def bad_results(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bad")
    cases = bad_inputs(tmp)

    def one(item):
        name, (args, module, _) = item
        out = tmp / "".join(c if c.isalnum() else "_" for c in name)
        extra = [] if module != "harness.run" or any(a.startswith("hydra.run.dir") for a in args) else [
            f"hydra.run.dir={out}", f"hydra.sweep.dir={out}-sweep", "progress=false"]
        return name, run(*args, *extra, module=module), out

    with ThreadPoolExecutor(4) as pool:
        return {name: (proc, out) for name, proc, out in pool.map(one, cases.items())}, cases


CASES = ["unknown solver", "unknown problem", "n below 8", "non-integer n", "zero budget", "negative budget",
         "threads -1", "threads 0", "threads abc", "seed abc", "added unknown parameter", "misspelt parameter",
         "divergence factor 0", "lr abc", "target abc", "checkpoint is a directory",
         "malformed sweep value", "empty solver", "bad value in a sweep", "unknown solver parameter",
         "missing checkpoint", "corrupt checkpoint", "corrupt torch checkpoint", "missing file (test solver)",
         "grid too large", "unwritable results folder", "resume from nowhere", "report on an empty folder",
         "report target inf", "evaluate unknown solver", "evaluate unavailable solver", "check empty baseline"]


def test_every_case_is_listed(tmp_path):
    assert sorted(bad_inputs(tmp_path)) == sorted(CASES)


@pytest.mark.parametrize("case", CASES)
def test_bad_input_gives_one_line_and_writes_nothing(bad_results, case):
    results, cases = bad_results
    proc, out = results[case]
    expected = cases[case][2]
    said = lines(proc)
    assert proc.returncode != 0
    assert len(said) == 1, said
    assert expected in said[0] and "Traceback" not in said[0]
    assert not out.exists() and not Path(f"{out}-sweep").exists()


# ------------------------------------------------------------------------------ injected faults
def test_faults_are_recorded_and_reported(tmp_path):
    sweep = tmp_path / "faults"
    targets = ["solvers.krylov.Krylov", *(f"{FAULTY}.{c}" for c in
                                          ("Raises", "ReturnsNaN", "Hangs", "StuckInC", "Segfaults", "OutOfMemory"))]
    t0 = time.monotonic()
    proc = run("-m", f"solver._target_={','.join(targets)}", "problem.n=16", "budget.max_iters=50",
               "job_timeout_s=1", f"hydra.sweep.dir={sweep}", "progress=false")
    assert proc.returncode == 1, proc.stderr[-2000:]  # the sweep went on, and its exit status says 5 failed
    assert lines(proc)[-1].startswith("error: 5 of 7 jobs failed (3 error, 2 timeout), the first in ")
    assert "Traceback" not in proc.stdout + proc.stderr
    assert time.monotonic() - t0 < 60
    df = load(sweep)
    status = {label.split("=")[1].rsplit(".", 1)[-1].rstrip(")"): s
              for label, s in df.groupby("label").status.first().items()}
    assert status == {"Krylov": "budget", "Raises": "error", "ReturnsNaN": "diverged", "Hangs": "timeout",
                      "StuckInC": "timeout", "Segfaults": "error", "OutOfMemory": "error"}
    hung = df[df.label.str.contains("Hangs")]
    assert list(hung.iteration) == [0, 1, 2, 3]  # partial trace kept

    # an old-schema file in the folder is skipped with a message; the report shows every failure
    (sweep / "old").mkdir()
    pq.write_table(pa.table({"solver": ["cg"], "iteration": [1]}), sweep / "old" / "trace.parquet")
    rep = run(str(sweep), "--no-figures", "--out", str(tmp_path / "report"), module="harness.report")
    assert rep.returncode == 0, rep.stderr
    assert "warning: skipped" in rep.stderr and "older or foreign schema" in rep.stderr
    summary = (tmp_path / "report" / "summary.md").read_text()
    for text in ("timeout", "diverged", "injected fault", "no result after 1 s", "SIGSEGV", "MemoryError"):
        assert text in summary


# ------------------------------------------------------------------------------ kill and resume
def _processes_mentioning(text: str) -> list[int]:
    pids = []
    for p in Path("/proc").iterdir():
        try:
            if p.name.isdigit() and text in (p / "cmdline").read_bytes().decode(errors="replace"):
                pids.append(int(p.name))
        except OSError:
            continue
    return pids


def test_a_killed_sweep_resumes_by_content(tmp_path):
    sweep = tmp_path / "rs"
    common = [f"solver._target_={FAULTY}.Slow", "budget.max_iters=60", "progress=false"]
    proc = subprocess.Popen(command("-m", "problem.n=16,24", "+solver.delay=0.001,0.05",
                                    *common, f"hydra.sweep.dir={sweep}"),
                            cwd=REPO, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        for line in proc.stdout:  # job 1 is the slow one (3 s): kill the sweep while it runs
            if "#1 :" in line:
                break
        time.sleep(1.0)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(30)
    time.sleep(0.5)
    assert _processes_mentioning(str(sweep)) == []  # the solver's child died with the job process
    assert (sweep / "laplace_bilinear_n16/cg/0/trace.parquet").is_file()
    killed = sweep / "laplace_bilinear_n16/cg/1"
    assert killed.is_dir() and not (killed / "trace.parquet").exists()  # nothing that looks complete
    done_before = (sweep / "laplace_bilinear_n16/cg/0/trace.parquet").stat().st_mtime_ns

    # narrowed (n=16 only) and reordered: the complete job is skipped, the killed one runs again
    first_command = (sweep / "multirun.yaml").read_bytes()
    res = run("-m", "problem.n=16", "+solver.delay=0.05,0.001", *common, f"resume={sweep}")
    assert res.returncode == 0, res.stderr[-2000:]
    assert (sweep / "multirun.1.yaml").read_bytes() == first_command  # the first command is kept
    assert b"resume" in (sweep / "multirun.yaml").read_bytes()
    assert "note: took over the lock of a run that is gone (PID " in res.stderr  # the killed sweep's lock
    assert res.stdout.count("(resume: skipped)") == 1
    assert (sweep / "laplace_bilinear_n16/cg/0/trace.parquet").stat().st_mtime_ns == done_before
    resumed = sorted((sweep / "laplace_bilinear_n16/cg").glob("resumed-*"))
    assert len(resumed) == 1 and (resumed[0] / "trace.parquet").is_file()  # skipped job left no folder
    df = load(sweep)
    assert df.groupby("label").run_id.nunique().to_dict() == {
        f"cg(_target_={FAULTY}.Slow,delay=0.001)": 1, f"cg(_target_={FAULTY}.Slow,delay=0.05)": 1}
    assert set(df.status) == {"budget"}

    again = run("-m", "problem.n=16", "+solver.delay=0.05,0.001", *common, f"resume={sweep}")
    assert again.stdout.count("(resume: skipped)") == 2
    assert again.returncode == 0 and lines(again)[-1] == f"note: all 2 jobs were already complete in {sweep}: " \
                                                         f"nothing to run"
    assert load(sweep).run_id.nunique() == 2
    assert sorted(p.name for p in sweep.glob("multirun*.yaml")) == ["multirun.1.yaml", "multirun.2.yaml",
                                                                   "multirun.yaml"]
    assert not (sweep / ".harness-jobs.jsonl").exists()


# ------------------------------------------------------------------------------ launchers, concurrency
def test_concurrent_sweeps_with_every_launcher_lose_nothing(tmp_path):
    """Three sweeps of the same name start together (basic, joblib, submitit local): each gets its own
    folder under results/, every trace has the same schema, and load() merges them."""
    pytest.importorskip("hydra_plugins.hydra_joblib_launcher", reason="pip install -e '.[cluster]'")
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher", reason="pip install -e '.[cluster]'")
    common = ["-m", "problem.n=16", "solver=cg,minres", "sweep_name=conc", "budget.max_iters=20", "progress=false"]
    launchers = {"basic": [], "joblib": ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"],
                 "submitit": ["hydra/launcher=submitit_local", "hydra.launcher.timeout_min=5"]}
    procs = {name: subprocess.Popen(command(*common, *extra), cwd=tmp_path, env=ENV, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, text=True)
             for name, extra in launchers.items()}
    outs = {name: p.communicate(timeout=180)[0] for name, p in procs.items()}
    for name, p in procs.items():
        assert p.returncode == 0, f"{name}: {outs[name][-2000:]}"
    sweeps = sorted((tmp_path / "results" / "conc").iterdir())
    assert len(sweeps) == 3
    frames = {s.name: load(s) for s in sweeps}
    assert all(len(df.run_id.unique()) == 2 for df in frames.values())
    schemas = {tuple(df.columns) for df in frames.values()}
    assert len(schemas) == 1
    merged = load(tmp_path / "results" / "conc")
    assert merged.run_id.nunique() == 6 and set(merged.status) <= {"budget", "stalled"}
    for f in (tmp_path / "results" / "conc").rglob("trace.parquet"):
        assert read_metadata(f)["guard"]["isolated"] is True


# ------------------------------------------------------------------------------ one run per folder
def _start_slow_sweep(sweep: Path, delay: float = 0.05, iters: int = 40) -> subprocess.Popen:
    """A sweep of three jobs of the Slow test solver (delay x iters seconds each) into ``sweep``."""
    return subprocess.Popen(command("-m", "problem.n=16,20,24", f"solver._target_={FAULTY}.Slow",
                                    f"+solver.delay={delay}", f"budget.max_iters={iters}", "progress=false",
                                    f"hydra.sweep.dir={sweep}"),
                            cwd=REPO, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _wait_for_first_job(proc: subprocess.Popen) -> None:
    for line in proc.stdout:
        if "#0 :" in line:
            return
    raise AssertionError("the sweep ended before its first job")


def test_two_sweeps_into_one_folder_at_once_the_second_is_refused(tmp_path):
    """The second sweep (and a resume) into a folder in use are refused in one line naming the owner;
    the first sweep completes every job and nothing of it is overwritten."""
    sweep = tmp_path / "shared"
    first = _start_slow_sweep(sweep)
    try:
        _wait_for_first_job(first)
        second = run("-m", "problem.n=16,20,24", "solver=cg,minres", "budget.max_iters=20", "progress=false",
                     f"hydra.sweep.dir={sweep}")
        resumed = run("-m", "problem.n=16,20,24", "solver=cg", "budget.max_iters=20", "progress=false",
                      f"resume={sweep}")
        inside = run("problem.n=24", "budget.max_iters=5", "progress=false",  # a job not started yet
                     f"hydra.run.dir={sweep}/laplace_bilinear_n24/cg/2")
        other = tmp_path / "elsewhere"
        other.mkdir()
        resumed_elsewhere = run("-m", "problem.n=16", "progress=false", f"resume={other}",
                                f"hydra.sweep.dir={sweep}")
        rest = first.communicate(timeout=180)[0]
    finally:
        first.kill()
    assert first.returncode == 0, rest[-2000:]
    for proc in (second, resumed):
        said = lines(proc)
        assert proc.returncode == 2 and len(said) == 1, said
        assert said[0].startswith(f"error: {sweep} is in use by another run (PID {first.pid}, started 20")
    assert lines(inside) == [f"error: {sweep}/laplace_bilinear_n24/cg/2 is inside {sweep}, which another run is "
                             f"using ({lines(inside)[0].split('using (', 1)[1]}"] and inside.returncode == 2
    assert f"(PID {first.pid}, started 20" in lines(inside)[0]
    assert lines(resumed_elsewhere) == [f"error: hydra.sweep.dir={sweep} is not inside resume={other}: a resumed "
                                        f"run writes only into the folder it resumes; drop hydra.sweep.dir"]
    df = load(sweep)
    assert len(df.run_id.unique()) == 3 and set(df.n) == {16, 20, 24} and set(df.status) == {"budget"}
    assert len(list(sweep.rglob("trace.parquet"))) == 3
    assert not (sweep / ".harness.lock").exists()  # released
    again = run("-m", "problem.n=16", "solver=cg", "progress=false", f"hydra.sweep.dir={sweep}")
    assert again.returncode == 2 and f"add the missing jobs with resume={sweep}" in again.stderr


def test_sigterm_stops_a_sweep_with_the_resume_line(tmp_path):
    sweep = tmp_path / "term"
    proc = _start_slow_sweep(sweep, iters=200)
    try:
        _wait_for_first_job(proc)
        time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        out = proc.communicate(timeout=60)[0]
    finally:
        proc.kill()
    assert proc.returncode == 128 + signal.SIGTERM, out[-2000:]
    assert f"stopped: stopped by SIGTERM. Finished jobs are kept; to run the rest, repeat the command with " \
           f"resume={sweep}" in out
    assert "Traceback" not in out and not (sweep / ".harness.lock").exists()
    assert not list(sweep.rglob("trace.parquet"))  # the job it stopped recorded nothing: resume runs it


def test_a_failed_job_never_touches_another_jobs_folder(tmp_path):
    out = tmp_path / "good"
    assert run("problem.n=16", "budget.max_iters=5", "progress=false", f"hydra.run.dir={out}").returncode == 0
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    bad = run("solver=metamizer", "solver.checkpoint=/nonexistent", "problem.n=16", f"hydra.run.dir={out}")
    assert bad.returncode == 2 and lines(bad) == [f"error: hydra.run.dir={out} already holds a job's trace: "
                                                  f"choose a new folder (a job never overwrites another one)"]
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before


def test_hydra_files_of_another_run_are_never_replaced(tmp_path):
    out = tmp_path / "job"
    (out / ".hydra").mkdir(parents=True)
    (out / ".hydra" / "config.yaml").write_text("an earlier run's config")
    proc = run("problem.n=16", "budget.max_iters=5", "progress=false", f"hydra.run.dir={out}")
    assert proc.returncode == 0, proc.stderr
    assert (out / ".hydra" / "config.yaml").read_text() == "an earlier run's config"
    fresh = [p for p in out.iterdir() if p.name.startswith(".hydra-")]
    assert len(fresh) == 1 and (fresh[0] / "config.yaml").is_file() and (out / "trace.parquet").is_file()


# ------------------------------------------------------------------------------ exit status
def test_a_single_job_whose_solver_raises_exits_non_zero(tmp_path):
    out = tmp_path / "job"
    proc = run(f"solver._target_={FAULTY}.Raises", "problem.n=16", "progress=false", f"hydra.run.dir={out}")
    assert proc.returncode == 1 and "Traceback" not in proc.stdout + proc.stderr
    assert lines(proc)[-1] == (f"error: cg(_target_={FAULTY}.Raises) on laplace_bilinear ended error: RuntimeError: "
                               f"injected fault: the solver blew up (faulty_solvers.py:49) (its trace is kept: "
                               f"{out / 'trace.parquet'})")
    assert load(out).status.unique().tolist() == ["error"]  # recorded, not lost


def test_a_sweep_of_unavailable_solvers_exits_non_zero(tmp_path):
    proc = run("-m", "solver=cupy_cg,cupy_minres", "problem.n=16", "progress=false", f"hydra.sweep.dir={tmp_path}/s")
    assert proc.returncode == 1
    assert lines(proc)[-1].startswith("error: 2 of 2 jobs failed (2 unavailable), the first in ")


def test_a_full_disk_stops_the_sweep_with_the_resume_line(tmp_path):
    """The second job's trace meets a full disk (ENOSPC, injected with sitecustomize): the sweep stops, the
    first job's trace is kept, and the line says how to run the rest."""
    inject = tmp_path / "inject"
    inject.mkdir()
    (inject / "sitecustomize.py").write_text(
        "import errno, os\n"
        "import harness.results as r\n"
        "real, calls = r.write_trace, []\n"
        "def full(*a, **k):\n"
        "    calls.append(1)\n"
        "    if len(calls) > 1:\n"
        "        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))\n"
        "    return real(*a, **k)\n"
        "r.write_trace = full\n")
    sweep = tmp_path / "s"
    env = {**ENV, "PYTHONPATH": f"{inject}:{REPO}"}
    proc = subprocess.run(command("-m", "problem.n=16,20,24", "budget.max_iters=5", "progress=false",
                                  f"hydra.sweep.dir={sweep}"), cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=180)
    assert proc.returncode == 1 and "Traceback" not in proc.stdout + proc.stderr
    assert lines(proc)[-1] == (f"stopped: cannot write results to {sweep}/laplace_bilinear_n20/cg/1: No space left "
                               f"on device. Finished jobs are kept; to run the rest, free some space and repeat the "
                               f"command with resume={sweep}")
    assert [p.parent.name for p in sweep.rglob("trace.parquet")] == ["0"]
    assert not (sweep / ".harness.lock").exists()


def test_a_sweep_over_a_problem_parameter_reports_every_job(tmp_path):
    """The issue's command: two variants of one problem with one solver are two jobs in the report."""
    sweep = tmp_path / "s"
    proc = run("-m", "problem=laplace_harmonic", "problem.variant=x2-y2,x3-3xy2", "solver=cg", "problem.n=16",
               "budget.max_iters=20", "progress=false", f"hydra.sweep.dir={sweep}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    rep = run(str(sweep), "--no-figures", "--out", str(tmp_path / "rep"), module="harness.report")
    assert rep.returncode == 0 and lines(rep) == [f"report: {tmp_path / 'rep' / 'index.html'} (2 of 2 jobs ran)"]
    summary = (tmp_path / "rep" / "summary.md").read_text()
    assert "cg [problem.variant=x2-y2]" in summary and "cg [problem.variant=x3-3xy2]" in summary


# ------------------------------------------------------------------------------ property-based, end to end
# A few real runs of random values (most examples run in-process: tests/test_robustness.py): each is refused
# with one line and no traceback, or runs and stores exactly the value given.
@given(key=st.sampled_from(["budget.max_iters", "budget.max_seconds", "budget.divergence_factor", "seed", "repeats",
                            "budget.target_msr"]),
       value=st.one_of(st.integers(-3, 3), st.floats(-2, 2), st.sampled_from(["abc", "null", "1e-3", "true"])))
@settings(max_examples=4, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_random_values_on_the_command_line(tmp_path_factory, key, value):
    from harness.overrides import _hydra_text

    out = tmp_path_factory.mktemp("prop") / "job"
    arg = f"{key}={_hydra_text(value) if not isinstance(value, str) else value}"
    proc = run("problem.n=16", "budget.max_iters=5", "isolate=false", "progress=false", arg, f"hydra.run.dir={out}")
    said = lines(proc)
    assert "Traceback" not in proc.stdout + proc.stderr
    if proc.returncode != 0:
        assert len(said) == 1 and said[0].startswith(f"error: {key}=") and not out.exists(), said
        return
    stored = read_metadata(out / "trace.parquet")["config"]
    for part in key.split("."):
        stored = stored[part]
    assert stored == value if not isinstance(value, str) else stored == _as_hydra_reads_it(arg), (stored, value)


def _as_hydra_reads_it(override: str):
    """The value Hydra's own override grammar gives ``key=text`` ("1e-3" is the float 0.001, "null" is None)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    return OverridesParser.create().parse_override(override).value()
