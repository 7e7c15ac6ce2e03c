"""Sweeps through a real Slurm scheduler (``hydra/launcher=slurm``): traces, summary and report; a job
cancelled and resumed; a job past its time limit; two sweeps at once; exclusive nodes; the job's memory
limit; GPU jobs on a cluster without GPUs; jobs that can never start.

They need a cluster: the one running here, or the one-node cluster of ``scripts/slurm_local.sh``,
which the ``cluster`` fixture starts (and stops afterwards) where it can (root, Debian's slurm-wlm and
munge installed). Without one they skip and say why; with ``HARNESS_REQUIRE_SLURM=1`` (set by
``.ci/run`` once it has installed the packages) they fail instead. Select them with ``pytest -m slurm``.
Every job is tiny (n <= 64 and a second or two), but each Slurm job starts a Python process; the
time-limit test waits for Slurm's 1-minute minimum. About 3-4 minutes in all on 2 busy cores.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from datetime import datetime
from pathlib import Path

import pytest

from harness.results import load, read_metadata, trace_files

pytestmark = pytest.mark.slurm

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "slurm_local.sh"
ENV = {**os.environ, "PYTHONPATH": str(REPO), "HYDRA_FULL_ERROR": ""}
SLOW = "tests.faulty_solvers.Slow"


def _no_cluster(reason: str) -> None:
    if os.environ.get("HARNESS_REQUIRE_SLURM") == "1":
        pytest.fail(f"HARNESS_REQUIRE_SLURM=1 but {reason}")
    pytest.skip(reason)


def _script(action: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPT), action], capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def cluster():
    """A Slurm cluster that runs jobs: the one already up, or the one-node cluster of scripts/slurm_local.sh
    (started here and stopped after these tests)."""
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher", reason="pip install -e '.[cluster]'")
    if shutil.which("sbatch") is None:
        _no_cluster("no Slurm here (sbatch not found): apt-get install -y slurm-wlm munge, then "
                    "bash scripts/slurm_local.sh start")
    up = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True, timeout=30)
    started = False
    if up.returncode != 0 or not any(s.startswith(("idle", "mix", "alloc")) for s in up.stdout.split()):
        if os.geteuid() != 0:
            _no_cluster(f"no Slurm controller answers (sinfo: {up.stderr.strip() or up.stdout.strip()}), and "
                        "starting the one-node cluster needs root: sudo bash scripts/slurm_local.sh start")
        start = _script("start")
        if start.returncode != 0:
            _no_cluster(f"scripts/slurm_local.sh start failed: {(start.stderr or start.stdout).strip()}")
        started = "started" in start.stdout
    yield
    if started:
        _script("stop")


def sweep(tmp: Path, name: str, *args: str, wait: bool = True, launcher: str = "hydra/launcher=slurm"):
    """A sweep through hydra/launcher=slurm into tmp/name; Slurm jobs named ``name``-<random>."""
    command = [sys.executable, "-m", "harness.run", "-m", *([launcher] if launcher else []), "progress=false",
               f"hydra.launcher.name={name}-{uuid.uuid4().hex[:8]}", f"hydra.sweep.dir={tmp / name}", *args]
    proc = subprocess.Popen(command, cwd=tmp, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    if not wait:
        return proc
    out = proc.communicate(timeout=600)[0]
    return proc.returncode, out


def finish(proc: subprocess.Popen) -> tuple[int, str]:
    out = proc.communicate(timeout=600)[0]
    return proc.returncode, out


def records(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "slurm_jobs.jsonl").read_text().splitlines()]


def slurm_state(job_id: str) -> str:
    return subprocess.run(["squeue", "-h", "-t", "all", "-j", job_id, "-o", "%T"], capture_output=True, text=True,
                          timeout=30).stdout.strip()


def test_sweep_lands_every_trace_the_summary_and_a_report(cluster, tmp_path):
    code, out = sweep(tmp_path, "basic", "problem.n=32,64", "solver=cg,pyamg_rs", "budget.max_seconds=1")
    assert code == 0, out[-3000:]
    folder = tmp_path / "basic"
    df = load(folder)
    assert df.run_id.nunique() == 4 and set(df.status) <= {"budget", "stalled", "target"}
    slurm = [read_metadata(f)["slurm"] for f in trace_files(folder)]
    assert len({s["job_id"] for s in slurm}) == 4 and len({s["array_job_id"] for s in slurm}) == 1
    assert "Slurm: 4 jobs submitted: 4 completed, 0 cancelled, 0 failed" in out
    assert "traces: " in out and "┃ problem" in out  # the summary table
    assert "sacct" not in out.lower() and "bypassing" not in out.lower()
    assert [r["outcome"] for r in records(folder)] == ["completed"] * 4
    report = subprocess.run([sys.executable, "-m", "harness.report", str(folder), "--out", str(tmp_path / "report"),
                             "--no-figures"], cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=300)
    assert report.returncode == 0, report.stderr[-3000:]
    summary = (tmp_path / "report" / "summary.md").read_text()
    assert "pyamg_rs" in summary and "cg" in summary


def _wait_until_running(proc: subprocess.Popen, folder: Path, task: str, timeout: float = 120) -> str:
    """The Slurm id of the sweep's array task ``task`` once its job has started its Python function."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()[0][-3000:]
        for log in folder.glob(f".submitit/*_{task}/*_{task}_0_log.out"):
            if "Loading pickle" in log.read_text():
                return log.parent.name
        time.sleep(0.2)
    raise AssertionError(f"array task {task} did not start in {timeout} s")


def test_a_cancelled_job_is_recorded_with_slurms_reason_and_resume_runs_only_it(cluster, tmp_path):
    args = ["problem.n=16", f"solver._target_={SLOW}", "+solver.delay=0.1,0.001,0.002", "budget.max_iters=100"]
    proc = sweep(tmp_path, "cancel", *args, wait=False)
    folder = tmp_path / "cancel"
    victim = _wait_until_running(proc, folder, "0")  # job 0: 100 x 0.1 s
    time.sleep(1.0)
    subprocess.run(["scancel", victim], timeout=30)
    code, out = finish(proc)
    assert code == 1, out[-3000:]
    cancelled = [ln for ln in out.splitlines() if ln.startswith("  cancelled: job 0 (")]
    assert len(cancelled) == 1 and "+solver.delay=0.1 " in cancelled[0], out[-3000:]
    assert f"Slurm job {victim}: CANCELLED *** JOB" in out and f"resume={folder}" in out
    assert "Slurm: 3 jobs submitted: 2 completed, 1 cancelled, 0 failed" in out
    rec = {r["num"]: r for r in records(folder)}
    assert rec[0]["outcome"] == "cancelled" and rec[0]["trace"] is None and "CANCELLED AT" in rec[0]["reason"]
    assert [rec[i]["outcome"] for i in (1, 2)] == ["completed", "completed"]
    assert load(folder).run_id.nunique() == 2

    code, out = sweep(tmp_path, "cancel", *args, f"resume={folder}")
    assert code == 0, out[-3000:]
    assert "Slurm: 1 job submitted (2 complete already, not submitted): 1 completed" in out
    df = load(folder)
    assert df.groupby("label").run_id.nunique().tolist() == [1, 1, 1]
    assert df.run_id.nunique() == 3 and len(trace_files(folder)) == 3  # the missing job, and no duplicate


def test_stopping_the_sweep_cancels_its_jobs(cluster, tmp_path):
    """SIGTERM to the sweep (as Ctrl-C, or its own Slurm job's end): it exits 143 with the resume line, and
    cancels its jobs still queued or running, so nothing writes into the folder after it."""
    args = ["problem.n=16", f"solver._target_={SLOW}", "+solver.delay=0.05,0.06", "budget.max_iters=100"]
    proc = sweep(tmp_path, "stop", *args, wait=False)
    folder = tmp_path / "stop"
    running = _wait_until_running(proc, folder, "0")
    proc.send_signal(signal.SIGTERM)
    code, out = finish(proc)
    assert code == 143 and f"stopped: stopped by SIGTERM. Finished jobs are kept; to run the rest, repeat the " \
                           f"command with resume={folder}" in out, out[-3000:]
    rec = records(folder)
    assert [r["outcome"] for r in rec] == ["cancelled", "cancelled"]
    assert all(r["reason"] == "cancelled because the sweep was stopped" for r in rec)
    array = running.split("_")[0]
    assert set(slurm_state(array).split()) == {"CANCELLED"}
    assert not trace_files(folder)


def test_a_job_past_its_time_limit_is_recorded_as_timeout(cluster, tmp_path):
    """Slurm's shortest limit is a minute; its controller enforces it within about 30 s after."""
    code, out = sweep(tmp_path, "limit", "problem.n=16", f"solver._target_={SLOW}", "+solver.delay=0.5",
                      "budget.max_iters=1000", "budget.max_seconds=900", "job_timeout_s=1000",
                      "hydra.launcher.timeout_min=1")
    assert code == 0, out[-3000:]
    df = load(tmp_path / "limit")
    assert list(df.status) == ["timeout"]
    message = df.message.iloc[0]
    assert "at its time limit (hydra.launcher.timeout_min=1)" in message and "DUE TO TIME LIMIT" in message
    assert "Slurm: 1 job submitted: 0 completed, 1 timed out, 0 cancelled, 0 failed" in out
    meta = read_metadata(trace_files(tmp_path / "limit")[0])
    assert meta["slurm"]["state"] == "TIMEOUT"


def _intervals(folder: Path) -> list[tuple[str, datetime, datetime, str]]:
    out = []
    for f in trace_files(folder):
        m = read_metadata(f)
        out.append((m["hostname"], datetime.fromisoformat(m["started"]), datetime.fromisoformat(m["ended"]),
                    str(f.relative_to(folder))))
    return out


def test_two_sweeps_at_once_keep_every_trace_and_no_two_jobs_share_the_node(cluster, tmp_path):
    """Two sweeps of two 1-s jobs each, submitted together, four jobs that could run two at a time on
    the node's two cores (one CPU each, array_parallelism 2): all four traces land, and, because the
    preset asks for --exclusive, no two jobs held the node at once (from each trace's start and end)."""
    args = ["problem.n=16,24", "solver=pyamg_rs", "budget.max_seconds=1", "hydra.launcher.array_parallelism=2"]
    procs = [sweep(tmp_path, name, *args, wait=False) for name in ("first", "second")]
    results = [finish(p) for p in procs]
    for code, out in results:
        assert code == 0, out[-3000:]
        assert "Slurm: 2 jobs submitted: 2 completed" in out
    spans = _intervals(tmp_path)
    assert len(spans) == 4 and {load(tmp_path / n).run_id.nunique() for n in ("first", "second")} == {2}
    for (host_a, start_a, end_a, a), (host_b, start_b, end_b, b) in itertools.combinations(spans, 2):
        assert host_a != host_b or end_a <= start_b or end_b <= start_a, f"{a} and {b} overlapped on {host_a}"


def test_the_memory_guard_sees_the_jobs_slurm_memory_not_the_nodes(cluster, tmp_path):
    """A 1200 x 1200 grid needs ~1.1 GiB: refused under --mem=1G although the node has far more."""
    code, out = sweep(tmp_path, "mem", "problem.n=1200", "solver=cg", "hydra.launcher.mem_gb=1")
    assert code == 0, out[-3000:]
    df = load(tmp_path / "mem")
    assert list(df.status) == ["error"]
    message = df.message.iloc[0]
    assert "this Slurm job (--mem 1.0 GiB) has" in message and "hydra.launcher.mem_gb" in message
    assert float(message.split(" has ")[1].split(" GiB")[0]) < 1.0


def test_gpu_jobs_on_a_cluster_without_gpus_are_recorded_unavailable(cluster, tmp_path):
    """The GPU preset asks for one GPU per job; a cluster without any refuses them at submission, so each
    is recorded `unavailable` with sbatch's reason at once, and nothing waits in the queue."""
    start = time.monotonic()
    code, out = sweep(tmp_path, "gpu", "+sweep=slurm_gpu", "problem.n=64", "solver=cupy_cg,metamizer_cuda",
                      launcher="")  # the preset's own: hydra/launcher=slurm_gpu
    assert code == 0, out[-3000:]
    df = load(tmp_path / "gpu")
    assert sorted(df.solver) == ["cupy_cg", "metamizer_cuda"] and set(df.status) == {"unavailable"}
    assert all(m.startswith("Slurm refused the job: sbatch: error: ") for m in df.message)
    assert "Slurm: 2 jobs submitted: 0 completed, 0 cancelled, 0 failed, 2 unavailable" in out
    assert time.monotonic() - start < 120


def test_a_job_that_cannot_start_is_given_up_with_slurms_reason(cluster, tmp_path):
    """A job Slurm accepts but will not start (here: not before an hour from now) is cancelled once
    nothing of the sweep has run for max_pending_min, and recorded `unavailable` with Slurm's reason."""
    code, out = sweep(tmp_path, "pending", "problem.n=16", "solver=cg", "hydra.launcher.max_pending_min=0.1",
                      "+hydra.launcher.additional_parameters.begin=now+3600")
    assert code == 0, out[-3000:]
    df = load(tmp_path / "pending")
    assert list(df.status) == ["unavailable"]
    assert "still pending after 0.1 min" in df.message.iloc[0] and "BeginTime" in df.message.iloc[0]
    (record,) = records(tmp_path / "pending")
    assert record["outcome"] == "unavailable" and slurm_state(record["slurm_job"]) == "CANCELLED"
