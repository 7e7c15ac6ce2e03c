"""Entry point: ``python -m harness.run [overrides]`` (one job) or ``+sweep=NAME`` (a sweep).

Before Hydra starts, the command is checked (``harness.overrides``: the override
grammar, group names, sweep syntax, results folders, then every value of every job
through ``harness.validate``), so a mistake costs one line naming the key, the value
and the fix, and writes nothing. Then the output folder is worked out and claimed
(``harness.output``, ``harness.lock``): one run at a time per folder tree, a sweep
never into a folder that already holds another sweep (use ``resume=`` to add to it),
a single job never into a folder that holds a trace. ``resume=<sweep folder>``
re-runs a sweep into that folder, skipping the jobs it already holds
(``harness.resume``). SIGTERM and SIGHUP stop a sweep like Ctrl-C, and so does a
full disk: the finished jobs are kept and the resume command is printed.

Exit status: 0 when every job ran (or was already complete) and none failed;
1 when a job ended ``error``, ``timeout`` or ``unavailable``, a sweep ran no
job, or results could not be written (one line says which and how many); 2
for bad input, refused before anything was written; 130 (Ctrl-C, SIGHUP) or
143 (SIGTERM) when stopped from outside.
"""

from __future__ import annotations

import errno
import logging
import signal
import sys
from pathlib import Path

from harness.lock import FolderBusy, FolderLock, describe
from harness.output import is_multirun, keep_sweep_record, plan_output, remove_job_folder, resume_arguments, with_hydra
from harness.overrides import INFO_FLAGS, _check_values, _hydra_error_line, check_arguments

DISK_FULL = (errno.ENOSPC, errno.EDQUOT)
MULTIRUN_FLAGS = ("-m", "--multirun")
log = logging.getLogger("harness")


class Stopped(KeyboardInterrupt):
    """SIGTERM or SIGHUP (kill, scancel, a closed terminal): stop like Ctrl-C."""

    code = 130

    def __init__(self, why: str, code: int = 130):
        super().__init__(why)
        self.code = code


class DiskFull(Stopped):
    """Results cannot be written (no space left, quota): stop the sweep like Ctrl-C, finished jobs kept."""


def _main(cfg) -> None:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode
    from omegaconf import OmegaConf

    from harness import outcome
    from harness.job import ConfigError, JobNotRun, one_line, run_job
    from harness.results import TRACE_NAME
    from harness.resume import find_complete, job_key, solver_label
    from problems import ProblemError

    hc = HydraConfig.get()
    single = hc.mode != RunMode.MULTIRUN
    out_dir = Path(hc.runtime.output_dir)
    overrides = list(hc.overrides.task)
    label = solver_label(str(cfg.solver.name), overrides)
    own = str(hc.output_subdir) if hc.output_subdir is not None else None

    def fail(message: str, code: int = 2) -> None:
        message = one_line(str(message))
        if single:  # one line on stderr, nothing left behind, non-zero exit
            print(f"error: {message}", file=sys.stderr)
            remove_job_folder(out_dir, own)
            sys.exit(code)
        outcome.record(outcome.FAILED, out_dir, "error", message)
        log.error(f"error: {message}")  # a sweep records it and goes on

    if cfg.get("resume"):
        key = job_key(OmegaConf.to_container(cfg, resolve=True))
        done = find_complete(cfg.resume, key)
        if done is not None:
            log.info(f"{label:>14s} {cfg.problem.name} n={cfg.problem.n}  complete in {done.parent} (resume: skipped)")
            outcome.record(outcome.SKIPPED, done.parent)
            remove_job_folder(out_dir, own)
            return
    if (out_dir / TRACE_NAME).exists():  # cli() refuses such folders; this guards any other way in
        fail(f"{out_dir} already holds another job's trace: not overwritten (give each job its own folder)")
        return
    try:
        trace = run_job(cfg, out_dir, overrides, write_unstarted=not single)
    except (JobNotRun, ProblemError, ConfigError) as exc:
        fail(str(exc))
        return
    except OSError as exc:
        why = f"cannot write results to {out_dir}: {exc.strerror or exc}"
        if exc.errno in DISK_FULL and not single:
            raise DiskFull(why, code=1) from None
        fail(f"{why}; free some space (or choose another folder) and run it again", code=1)
        return
    faults = outcome.job_faults(trace)
    if faults and single:
        status, message = faults[0]
        print(f"error: {label} on {cfg.problem.name} ended {status}: {one_line(message)} (its trace is kept: "
              f"{trace})", file=sys.stderr)
        sys.exit(1)
    outcome.record(outcome.FAILED if faults else outcome.RAN, trace.parent, *(faults[0] if faults else ()))


def main() -> None:
    import hydra

    hydra.main(config_path="../conf", config_name="config", version_base="1.3")(_main)()


def _stop_on(sig, frame) -> None:
    raise Stopped(f"stopped by {signal.Signals(sig).name}", 128 + sig if sig == signal.SIGTERM else 130)


def cli() -> None:
    from harness import outcome

    argv = sys.argv[1:]
    # -m anywhere: Hydra's own parser takes it only before the overrides ("unrecognized arguments" otherwise)
    argv = [a for a in argv if a in MULTIRUN_FLAGS] + [a for a in argv if a not in MULTIRUN_FLAGS]
    checked = argv
    problem = check_arguments(argv)
    if problem:
        _refuse(problem)
    problem, first = _check_values(argv)
    if problem:
        _refuse(problem)
    argv = resume_arguments(argv)
    if any(a in INFO_FLAGS or a.startswith("--cfg") for a in argv):  # Hydra prints and exits: no folder
        sys.argv = [sys.argv[0], *argv]
        main()
        return
    try:
        cfg = with_hydra(argv, first if argv == checked else None)
    except Exception as exc:  # noqa: BLE001 - whatever Hydra says, as one line
        _refuse(_hydra_error_line(exc))
    folder, pin, problem = plan_output(argv, cfg)
    if folder is None:
        _refuse(problem)
    multirun = is_multirun(argv, cfg)
    lock = FolderLock(folder)
    try:
        lock.acquire()
    except FolderBusy as exc:
        _refuse(str(exc))
    if problem:
        lock.release()
        _refuse(problem)
    if lock.stale:
        print(f"note: took over the lock of a run that is gone ({describe(lock.stale)})", file=sys.stderr)
    previous = {sig: signal.signal(sig, _stop_on) for sig in (signal.SIGTERM, signal.SIGHUP)}
    sys.argv = [sys.argv[0], *argv, *pin]
    code, line = 0, None
    ledger = outcome.start_ledger(folder) if multirun else None
    if multirun:
        keep_sweep_record(folder)
    try:
        main()
        if ledger is not None:
            code, line = outcome.summarise(ledger, folder)
    except KeyboardInterrupt as exc:  # Ctrl-C, SIGTERM/SIGHUP, a full disk, or a solver process stopped from outside
        why = str(exc) or "interrupted"
        free = "free some space and " if isinstance(exc, DiskFull) else ""
        line = (f"stopped: {why}. Finished jobs are kept; to run the rest, {free}repeat the command with "
                f"resume={folder}")
        code = exc.code if isinstance(exc, Stopped) else 130
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if ledger is not None:
            ledger.unlink(missing_ok=True)
        lock.release()
    if line:
        print(line, file=sys.stderr)
    if code:
        sys.exit(code)


def _refuse(line: str) -> None:
    print(f"error: {line}", file=sys.stderr)
    sys.exit(2)


if __name__ == "__main__":
    cli()
