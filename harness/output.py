"""Where a run writes: the folder it owns, the overrides that pin Hydra to it, and what it leaves behind.

``plan_output`` resolves the folder before Hydra starts (``${now:...}`` included) and
hands it to Hydra, so the folder locked (``harness.lock``) is the folder written: a
sweep goes to a folder that holds no other sweep (or to ``resume=``'s folder), each job
to its own subfolder, never outside it; a single job to a folder without a trace. A
resume writes only into the folder it resumes (``resume_arguments``: new jobs into
fresh ``resumed-<stamp>`` subfolders) and keeps the earlier ``multirun.yaml``
(``keep_sweep_record``). Hydra's ``.hydra/`` files never replace another run's
(``fresh_subdir``, the ``harness_fresh_subdir`` resolver of conf/config.yaml).
``remove_job_folder`` takes away only what a job that did not run left.
"""

from __future__ import annotations

import itertools
import os
import shutil
from datetime import datetime
from pathlib import Path

from harness.lock import LOCK_NAME
from harness.overrides import CONF, _hydra_error_line, _leaves_folder, _parse, _quoted, job_variants, sweeper_params

PER_JOB = ("${hydra.job.num}", "${hydra.job.id}", "${hydra.job.override_dirname}")
# New jobs of a resumed sweep go to fresh folders (never into an old job's folder,
# whose Hydra job number may now belong to a different job).
RESUMED_SUBDIR = "${problem.name}_n${problem.n}/${solver.name}/resumed-STAMP-${hydra.job.num}"
RESUMED_RUN_DIR = "${problem.name}_n${problem.n}/${solver.name}/resumed-STAMP"


_FRESH: dict[tuple[str, str], str] = {}  # (name, job folder) -> the subfolder chosen, the same at every lookup


def fresh_subdir(name: str, output_dir: str) -> str:
    """Hydra's ``hydra.output_subdir`` for a job: ``name`` (.hydra), or ``name-<stamp>`` if the job's folder
    already has one (an earlier job's config files are never replaced). Decided once per job folder: a later
    lookup (``_main`` cleaning up after a skipped job) gets the same answer."""
    key = (name, str(output_dir))
    if key not in _FRESH:
        taken = (Path(output_dir) / name).exists()
        _FRESH[key] = f"{name}-{datetime.now().strftime('%Y-%m-%d_%H-%M-%S-%f')}" if taken else name
    return _FRESH[key]


def _register_resolvers() -> None:
    from omegaconf import OmegaConf

    OmegaConf.register_new_resolver("harness_fresh_subdir", fresh_subdir, replace=True)


_register_resolvers()  # in every process that runs a job: harness.run imports this module

def plan_output(argv: list[str], cfg=None) -> tuple[Path | None, list[str], str | None]:
    """(folder this run owns, overrides that pin Hydra to it, a one-line refusal or None). The
    folder is None when it could not be worked out; else a refusal is given only once the folder's
    lock is held (a folder in use is reported as such, not as already holding a sweep).

    The folder is resolved now (``${now:...}`` included) and handed to Hydra, so the
    folder locked is the folder written. A sweep goes to a folder that holds no other
    sweep (or to ``resume=``'s folder), each job to its own subfolder; a single job to a
    folder without a trace."""
    from omegaconf import OmegaConf

    try:
        cfg = with_hydra(argv, cfg)
        multirun = is_multirun(argv, cfg)
        given = {a.split("=", 1)[0] for a in argv if "=" in a}
        sweeping = [a for a in argv if "=" in a and not a.startswith("-") and (o := _parse(a)[0]) is not None
                    and o.is_sweep_override()]
        if sweeping and not multirun:
            return None, [], (f"{sweeping[0]} is a sweep: add -m (python -m harness.run -m ...) or name a sweep preset "
                              f"(+sweep=NAME)")
        hydra_cfg = OmegaConf.to_container(cfg.hydra, resolve=False)
        for key, value in (("hydra.sweep.subdir", hydra_cfg["sweep"].get("subdir") if multirun else None),
                           ("hydra.output_subdir", hydra_cfg.get("output_subdir"))):
            reason = _leaves_folder(key, str(value)) if value is not None else None
            if reason:
                return None, [], reason
        if cfg.get("resume"):
            folder = Path(str(cfg.resume)).expanduser().resolve()
            key = "hydra.sweep.dir" if multirun else "hydra.run.dir"
            target = Path(str(cfg.hydra.sweep.dir if multirun else cfg.hydra.run.dir)).expanduser().resolve()
            if target != folder and folder not in target.parents:
                return folder, [], (f"{key}={target} is not inside resume={folder}: a resumed run writes only into "
                                    f"the folder it resumes; drop {key}")
            return folder, [], None
        if multirun:
            subdir = str(hydra_cfg["sweep"].get("subdir"))
            folder = Path(str(cfg.hydra.sweep.dir)).expanduser().absolute()
            if not any(part in subdir for part in PER_JOB):
                return folder, [], (f"hydra.sweep.subdir={subdir} has no ${{hydra.job.num}}: every job of the sweep "
                                  f"would write to the same folder (e.g. hydra.sweep.subdir=${{hydra.job.num}})")
            held = _holds_sweep(folder)
            if held:
                return folder, [], (f"hydra.sweep.dir={folder} already holds a sweep ({held}): add the missing jobs "
                                  f"with resume={folder}, or choose a new folder")
            pin = [] if "hydra.sweep.dir" in given else [f"hydra.sweep.dir={_quoted(str(folder))}"]
            return folder, pin, None
        folder = Path(str(cfg.hydra.run.dir)).expanduser().absolute()
        if (folder / "trace.parquet").exists():
            return folder, [], (f"hydra.run.dir={folder} already holds a job's trace: choose a new folder "
                              f"(a job never overwrites another one)")
        pin = [] if "hydra.run.dir" in given else [f"hydra.run.dir={_quoted(str(folder))}"]
        return folder, pin, None
    except Exception as exc:  # noqa: BLE001 - e.g. an output folder that does not resolve
        return None, [], _hydra_error_line(exc)


def with_hydra(argv: list[str], cfg=None):
    """The first job's config with its hydra section (``cfg`` itself when it has one: cli() passes the config
    ``_check_values`` composed)."""
    from hydra import compose, initialize_config_dir

    if cfg is None or "hydra" not in cfg:
        with initialize_config_dir(version_base="1.3", config_dir=str(CONF), job_name="run"):
            cfg = compose("config", overrides=job_variants(argv, sweeper_params(argv))[0], return_hydra_config=True)
    return cfg


def is_multirun(argv: list[str], cfg) -> bool:
    """Whether the command runs a sweep: -m, or a sweep preset that sets Hydra's mode."""
    from hydra.types import RunMode

    return "-m" in argv or "--multirun" in argv or cfg.hydra.mode == RunMode.MULTIRUN


def _holds_sweep(folder: Path) -> str | None:
    """What shows that ``folder`` already holds a sweep (its multirun.yaml, or a trace), or None."""
    if (folder / "multirun.yaml").exists():
        return "multirun.yaml"
    if folder.is_dir():
        for root, _, files in os.walk(folder):
            if "trace.parquet" in files:
                return f"{Path(root, 'trace.parquet').relative_to(folder)}"
    return None


def resume_arguments(argv: list[str]) -> list[str]:
    """With ``resume=DIR``: send the sweep (or single job) into DIR, new jobs into fresh subfolders."""
    resume = None
    for arg in argv:
        if arg.split("=", 1)[0].lstrip("+") == "resume" and "=" in arg:
            resume = arg.split("=", 1)[1]
    if not resume or resume in ("null", "None"):
        return argv
    given = {a.split("=", 1)[0] for a in argv if "=" in a}
    stamp = datetime.now().strftime("%Y-%m-%d_%H-%M-%S-%f")  # one per resumed run
    folder = str(Path(resume).expanduser().resolve()).replace("\\", "\\\\").replace("'", "\\'")
    extra = []
    if "hydra.sweep.dir" not in given:
        extra.append(f"hydra.sweep.dir='{folder}'")
    if "hydra.sweep.subdir" not in given:
        extra.append(f"hydra.sweep.subdir={RESUMED_SUBDIR.replace('STAMP', stamp)}")
    else:  # the user's layout, under a fresh folder: never into the folder of a job the sweep already holds
        argv = [f"hydra.sweep.subdir=resumed-{stamp}/{a.split('=', 1)[1]}" if a.split("=", 1)[0] == "hydra.sweep.subdir"
                else a for a in argv]
    if "hydra.run.dir" not in given:
        extra.append(f"hydra.run.dir='{folder}/{RESUMED_RUN_DIR.replace('STAMP', stamp)}'")
    return argv + extra


def remove_job_folder(out_dir: Path, own: str | None = ".hydra") -> None:
    """Remove what this job's Hydra put in its folder (``own``: its .hydra subfolder, and run.log) and the
    folder with its empty parents inside results/, when nothing else is there. Never touches anything else: a
    folder that also holds another job's files keeps them (and its run.log, which both jobs wrote). (This
    run's own lock file is removed, with the folders it created, when the lock is released.)"""
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        return
    mine = {own, "run.log", LOCK_NAME} - {None}
    if own:
        shutil.rmtree(out_dir / own, ignore_errors=True)
    if any(p.name not in mine for p in out_dir.iterdir()):
        return
    (out_dir / "run.log").unlink(missing_ok=True)
    root = (Path.cwd() / "results").resolve()
    folder = out_dir.resolve()
    try:
        folder.rmdir()
        folder = folder.parent
        while folder != root and root in folder.parents:
            folder.rmdir()
            folder = folder.parent
    except OSError:
        pass


def keep_sweep_record(folder: Path) -> None:
    """A resumed sweep keeps the earlier commands: ``multirun.yaml`` (which Hydra rewrites at every sweep
    start) is moved to the first free ``multirun.<k>.yaml`` (k = 1 the first command), never overwritten."""
    current = folder / "multirun.yaml"
    if not current.exists():
        return
    for k in itertools.count(1):
        try:
            os.link(current, folder / f"multirun.{k}.yaml")
            break
        except FileExistsError:
            continue
    current.unlink()
