"""Running the check's sweep in this process: its jobs expanded by Hydra's override parser, composed
with Hydra's compose API, run by ``harness.job.run_job`` one thread, seeded."""

from __future__ import annotations

import hashlib
import itertools
import random
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from omegaconf import DictConfig, OmegaConf

from harness.check.config import CONF, KEY, REPO, SWEEP, load_ci_config
from harness.formats import count, number


class NoJobRan(RuntimeError):
    """Every job of the sweep was skipped (left out, or an optional solver unavailable): nothing to compare."""


@dataclass(frozen=True)
class Job:
    problem: str
    n: int
    solver: str


def expand(params: dict[str, Any]) -> list[dict[str, str]]:
    """Every combination of a sweep's ``hydra.sweeper.params``, parsed by Hydra's override parser
    and ordered as Hydra's basic sweeper orders them (the last key varies fastest)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    overrides = OverridesParser.create().parse_overrides([f"{k}={v}" for k, v in params.items()])
    axes = [[(o.get_key_element(), value) for value in
             (o.sweep_string_iterator() if o.is_sweep_override() else [o.get_value_element_as_str()])]
            for o in overrides]
    return [dict(combo) for combo in itertools.product(*axes)]


def ci_jobs(sweep_cfg: DictConfig) -> list[Job]:
    """The (problem, n, solver) jobs of a sweep config."""
    params = OmegaConf.to_container(sweep_cfg.hydra.sweeper.params, resolve=True)
    return [Job(j["problem"], int(j["problem.n"]), j["solver"]) for j in expand(params)]


# --- running ------------------------------------------------------------------------------------------
def _seed_everything(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _optional_reason(solver: str, cfg: DictConfig) -> str | None:
    """None if an optional solver can run here, else why not."""
    if not (CONF / "solver" / f"{solver}.yaml").is_file():
        return f"conf/solver/{solver}.yaml does not exist"
    from hydra.utils import instantiate

    try:
        return instantiate(cfg.solver, _convert_="all").available()
    except Exception as exc:
        return f"cannot build the solver: {type(exc).__name__}: {exc}"


def checkpoint_hash(path: str | Path) -> str | None:
    p = Path(path)
    if not p.is_absolute():
        p = REPO / p
    if not p.is_file():
        return None
    return hashlib.sha256(p.read_bytes()).hexdigest()


def run_ci_sweep(out_dir: str | Path | None = None, *, sweep: str = SWEEP, jobs: Iterable[Job] | None = None,
                 overrides: dict[str, Sequence[str]] | None = None, skip: Iterable[str] = (),
                 verbose: bool = False) -> pd.DataFrame:
    """Run the ci sweep (or ``jobs`` of it) in this process; one DataFrame of every trace.

    ``overrides`` maps a solver name to extra Hydra overrides for its jobs
    (e.g. ``{"adam": ["solver.lr=1e-4"]}``); ``skip`` leaves solvers out. ``df.attrs`` carries ``skipped``
    (optional solver -> reason), ``checkpoints`` (solver -> sha256 of a
    ``solver.checkpoint`` file) and ``wall_s``.
    """
    import torch
    from hydra import compose, initialize_config_dir
    from threadpoolctl import ThreadpoolController

    from harness.job import run_job
    from harness.results import load

    sweep_cfg = load_ci_config(sweep)
    optional = set(sweep_cfg.get("check", {}).get("optional_solvers", []) or [])
    jobs = list(jobs) if jobs is not None else ci_jobs(sweep_cfg)
    overrides = overrides or {}
    tmp = None
    if out_dir is None:
        tmp = tempfile.TemporaryDirectory(prefix="harness-check-")
        out_dir = tmp.name
    out_dir = Path(out_dir)
    skipped: dict[str, str] = {s: "left out with --skip" for s in skip}
    hashes: dict[str, str] = {}
    frames = []
    t_start = time.perf_counter()
    det_before = torch.are_deterministic_algorithms_enabled()
    threads_before = torch.get_num_threads()
    torch.use_deterministic_algorithms(True)
    try:
        with ThreadpoolController().limit(limits=1), \
                initialize_config_dir(version_base="1.3", config_dir=str(CONF), job_name="check"):
            for i, job in enumerate(jobs):
                extra = list(overrides.get(job.solver, ()))
                ov = [f"+sweep={sweep}", f"problem={job.problem}", f"problem.n={job.n}",
                      f"solver={job.solver}", *extra]
                if job.solver in skipped:
                    continue
                if job.solver in optional and not (CONF / "solver" / f"{job.solver}.yaml").is_file():
                    skipped[job.solver] = f"conf/solver/{job.solver}.yaml does not exist"
                    continue
                cfg = compose("config", overrides=ov)
                if job.solver in optional:
                    reason = _optional_reason(job.solver, cfg)
                    if reason:
                        skipped[job.solver] = reason
                        continue
                ck = cfg.solver.get("checkpoint")
                if ck and job.solver not in hashes:
                    h = checkpoint_hash(ck)
                    if h:
                        hashes[job.solver] = h
                _seed_everything(int(cfg.seed))
                t0 = time.perf_counter()
                folder = out_dir / f"{job.problem}_n{job.n}" / job.solver
                run_job(cfg, folder, [f"solver={job.solver}", *extra])
                df = load(folder).drop(columns=["path"])
                frames.append(df)
                if verbose:
                    last = df.iloc[-1]
                    print(f"[{i + 1:>2}/{len(jobs)}] {job.solver:>10s} {job.problem:<21s} n={job.n:<4d}"
                          f" {last.status:<8s} it={count(last.iteration):>5s} msr={number(last.msr, '.2e')}"
                          f"  {time.perf_counter() - t0:5.2f}s", flush=True)
    finally:
        torch.use_deterministic_algorithms(det_before)
        torch.set_num_threads(threads_before)
        if tmp is not None:
            tmp.cleanup()
    if not frames:
        why = "; ".join(f"{s}: {r}" for s, r in skipped.items()) or "no job in the sweep"
        raise NoJobRan(f"the {sweep} sweep ran no job ({why})")
    out = pd.concat(frames, ignore_index=True)
    out = out.sort_values(KEY + ["iteration"], na_position="first", kind="stable").reset_index(drop=True)
    out.attrs.update(skipped=skipped, checkpoints=hashes, wall_s=time.perf_counter() - t_start)
    return out


