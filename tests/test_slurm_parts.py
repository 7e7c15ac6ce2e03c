"""The Slurm launcher's parts that need no cluster: reading squeue and slurmstepd, the summary's lines,
the memory limit a Slurm job gets, and the launcher's parameters. (Jobs through a real scheduler:
tests/test_slurm.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from harness import memory
from harness.slurm import scheduler
from harness.slurm.record import JobRecord, Outcome, summary_lines

CONF = str(Path(__file__).resolve().parents[1] / "conf")


def test_squeue_lines_become_job_states(monkeypatch):
    squeue = "12_0|COMPLETED|None|vm\n12_1|CANCELLED|None|vm\n12_2|PENDING|BeginTime|\n12_3|RUNNING|None|vm\n"
    monkeypatch.setattr(scheduler, "_run", lambda command, timeout=60: squeue)
    states = scheduler.job_states(["12"])
    assert states["12_0"] == scheduler.JobState("COMPLETED", "", "vm") and states["12_0"].final
    assert states["12_1"].final and states["12_1"].state in scheduler.STOPPED
    assert states["12_2"] == scheduler.JobState("PENDING", "BeginTime", "") and not states["12_2"].final
    assert not states["12_3"].final and states["12_3"].state in scheduler.ACTIVE
    monkeypatch.setattr(scheduler, "_run", lambda command, timeout=60: None)
    assert scheduler.job_states(["12"]) is None  # squeue did not answer: the launcher waits, it does not guess


def test_slurmstepd_says_why_a_job_ended(tmp_path):
    err = tmp_path / "log.err"
    err.write_text("some output\nslurmstepd-vm: error: *** STEP 3.0 ON vm CANCELLED AT 2026-12-05T07:23:33 ***\n"
                   "slurmstepd-vm: error: *** JOB 3 ON vm CANCELLED AT 2026-12-05T07:23:33 DUE TO TIME LIMIT ***\n")
    assert scheduler.stepd_line(err) == "*** JOB 3 ON vm CANCELLED AT 2026-12-05T07:23:33 DUE TO TIME LIMIT ***"
    assert scheduler.stepd_line(tmp_path / "absent") == ""


def test_the_summary_counts_every_outcome_and_says_how_to_run_the_missing_jobs():
    recs = [JobRecord(0, ["solver=cg"], Outcome.COMPLETED, "5_0", "COMPLETED"),
            JobRecord(1, ["solver=gmres"], Outcome.CANCELLED, "5_1", "CANCELLED", "*** JOB 7 ON vm CANCELLED AT x ***"),
            JobRecord(2, ["solver=minres"], Outcome.TIMED_OUT, "5_2", "TIMEOUT", "at its time limit"),
            JobRecord(3, ["solver=adam"], Outcome.SKIPPED)]
    lines = summary_lines(recs, "/sweep")
    assert lines[0] == ("Slurm: 3 jobs submitted (1 complete already, not submitted): 1 completed, 1 timed out, "
                        "1 cancelled, 0 failed")
    assert "  cancelled: job 1 (solver=gmres) Slurm job 5_1: CANCELLED *** JOB 7 ON vm CANCELLED AT x ***" in lines
    assert lines[-1] == "incomplete: 1 job left no trace; to run it, repeat the command with resume=/sweep"
    assert not summary_lines([], "/sweep")
    assert not summary_lines(recs[:1], "/sweep")[-1].startswith("incomplete")


def test_a_slurm_jobs_memory_is_what_the_guard_sees(monkeypatch):
    for var in ("SLURM_MEM_PER_NODE", "SLURM_MEM_PER_CPU", "SLURM_CPUS_ON_NODE"):
        monkeypatch.delenv(var, raising=False)
    assert memory.slurm_memory_limit() is None and memory.memory_available()[1] == "this machine"
    monkeypatch.setenv("SLURM_MEM_PER_CPU", "256")
    monkeypatch.setenv("SLURM_CPUS_ON_NODE", "2")
    assert memory.slurm_memory_limit() == 512 * memory.MiB
    monkeypatch.setenv("SLURM_MEM_PER_NODE", "1024")
    have, where = memory.memory_available()
    assert memory.slurm_memory_limit() == memory.GiB and where == "this Slurm job (--mem 1.0 GiB)"
    assert have < memory.GiB
    cg = {"_target_": "solvers.krylov.Krylov", "name": "cg", "method": "cg"}
    line = memory.memory_refusal({"name": "laplace_bilinear", "n": 1200}, cg)
    assert "this Slurm job (--mem 1.0 GiB) has" in line and "or a larger hydra.launcher.mem_gb" in line


@pytest.mark.parametrize(("threads", "cpus"), [(1, 1), (3, 3), ("all", None)])
def test_the_launcher_asks_slurm_for_the_jobs_threads(threads, cpus):
    """cpus_per_task follows ``threads``; threads=all asks for no CPU count (the exclusive node's every core)."""
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher", reason="pip install -e '.[cluster]'")
    from hydra_plugins.harness_slurm.slurm_launcher import HarnessSlurmLauncher

    with initialize_config_dir(version_base="1.3", config_dir=CONF):
        cfg = compose("config", overrides=["hydra/launcher=slurm", f"threads={threads}",
                                           "hydra.sweep.dir=/tmp/x"], return_hydra_config=True)
    params = OmegaConf.to_container(cfg.hydra.launcher, resolve=True)
    assert params.pop("_target_").endswith("HarnessSlurmLauncher")
    launcher = HarnessSlurmLauncher(**params)
    assert launcher.params["cpus_per_task"] == cpus and launcher.params["additional_parameters"] == {"exclusive": True}
    assert launcher.max_pending_min is None and "max_pending_min" not in launcher.params


def test_a_job_dies_on_sigterm_from_its_first_statement(monkeypatch):
    """submitit sets SIGTERM to "bypass" just before it calls the launcher on the node; a scancel landing
    while the launcher imports would be ignored and the cancelled job would run on and write its trace
    (seen in CI). So the default action comes back before anything is imported."""
    import signal
    import sys

    launcher = pytest.importorskip("hydra_plugins.harness_slurm.slurm_launcher")
    if launcher.SlurmLauncher is None:
        pytest.skip("pip install -e '.[cluster]'")
    before = signal.signal(signal.SIGTERM, lambda sig, frame: None)  # submitit's bypass
    monkeypatch.setitem(sys.modules, "harness.slurm", None)  # the import fails: what ran before it?
    try:
        with pytest.raises(ImportError):
            launcher.HarnessSlurmLauncher.__call__(object())
        assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
    finally:
        signal.signal(signal.SIGTERM, before)
