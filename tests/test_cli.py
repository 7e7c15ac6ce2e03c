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
        "n below 8": (["problem.n=4"], run_, "error: problem.n=4 is not a grid size: use an integer >= 8"),
        "non-integer n": (["problem.n=6.5"], run_, "error: problem.n=6.5 is not a grid size"),
        "zero budget": (["budget.max_seconds=0"], run_, "error: budget.max_seconds=0 must be a positive number"),
        "negative budget": (["budget.max_iters=-5"], run_, "error: budget.max_iters=-5 must be a positive integer"),
        "malformed sweep value": (["-m", "problem.n=64,,"], run_, "error: malformed override 'problem.n=64,,'"),
        "empty solver": (["solver="], run_, "error: solver= needs a value; valid: "),
        "bad value in a sweep": (["+sweep=laplace_scaling", "problem.n=64,4"], run_, "error: problem.n=4 is not"),
        "unknown solver parameter": (["solver.bogus=1"], run_,
                                     "error: Could not override 'solver.bogus'. To append to your config use "
                                     "+solver.bogus=1"),
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
         "malformed sweep value", "empty solver", "bad value in a sweep", "unknown solver parameter",
         "missing checkpoint", "corrupt checkpoint", "corrupt torch checkpoint", "missing file (test solver)",
         "grid too large", "unwritable results folder", "resume from nowhere", "report on an empty folder"]


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
                                          ("Raises", "ReturnsNaN", "Hangs", "StuckInC", "Segfaults"))]
    t0 = time.monotonic()
    proc = run("-m", f"solver._target_={','.join(targets)}", "problem.n=16", "budget.max_iters=50",
               "job_timeout_s=1", f"hydra.sweep.dir={sweep}", "progress=false")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert time.monotonic() - t0 < 60
    df = load(sweep)
    status = {label.split("=")[1].rsplit(".", 1)[-1].rstrip(")"): s
              for label, s in df.groupby("label").status.first().items()}
    assert status == {"Krylov": "budget", "Raises": "error", "ReturnsNaN": "diverged", "Hangs": "timeout",
                      "StuckInC": "timeout", "Segfaults": "error"}
    hung = df[df.label.str.contains("Hangs")]
    assert list(hung.iteration) == [0, 1, 2, 3]  # partial trace kept

    # an old-schema file in the folder is skipped with a message; the report shows every failure
    (sweep / "old").mkdir()
    pq.write_table(pa.table({"solver": ["cg"], "iteration": [1]}), sweep / "old" / "trace.parquet")
    rep = run(str(sweep), "--no-figures", "--out", str(tmp_path / "report"), module="harness.report")
    assert rep.returncode == 0, rep.stderr
    assert "warning: skipped" in rep.stderr and "older or foreign schema" in rep.stderr
    summary = (tmp_path / "report" / "summary.md").read_text()
    for text in ("timeout", "diverged", "injected fault", "no result after 1 s", "SIGSEGV"):
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
    common = ["+solver.delay=0.05", "budget.max_iters=60", "progress=false"]
    proc = subprocess.Popen(command("-m", "problem.n=16,24",
                                    f"solver._target_=solvers.krylov.Krylov,{FAULTY}.Slow",
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
    res = run("-m", "problem.n=16", f"solver._target_={FAULTY}.Slow,solvers.krylov.Krylov", *common,
              f"resume={sweep}")
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.count("(resume: skipped)") == 1
    assert (sweep / "laplace_bilinear_n16/cg/0/trace.parquet").stat().st_mtime_ns == done_before
    resumed = sorted((sweep / "laplace_bilinear_n16/cg").glob("resumed-*"))
    assert len(resumed) == 1 and (resumed[0] / "trace.parquet").is_file()  # skipped job left no folder
    df = load(sweep)
    assert df.groupby("label").run_id.nunique().to_dict() == {
        "cg(_target_=solvers.krylov.Krylov,delay=0.05)": 1, f"cg(_target_={FAULTY}.Slow,delay=0.05)": 1}
    assert set(df.status) == {"budget"}

    again = run("-m", "problem.n=16", f"solver._target_={FAULTY}.Slow,solvers.krylov.Krylov", *common,
                f"resume={sweep}")
    assert again.stdout.count("(resume: skipped)") == 2
    assert load(sweep).run_id.nunique() == 2


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
