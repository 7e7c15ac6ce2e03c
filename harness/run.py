"""Entry point: ``python -m harness.run [overrides]`` (one job) or ``+sweep=NAME`` (a sweep).
Over 300 lines: the command line's contract (argument checks, output folder, locking, resume, exit status)
in one place.

Before Hydra starts: the override grammar, group names (``glob()`` expanded), sweep
syntax the basic sweeper cannot run (``interval()``) and results folders
(``check_arguments``), then every value of every job the command will run
(``check_values``: each composed config through ``harness.validate``), so a
mistake costs one line naming the key, the value and the fix, and writes
nothing. Then the output folder is claimed (``harness.lock``): one run at a
time per folder, nested ones included; a sweep never into a folder that
already holds another sweep (use ``resume=`` to add to it), a single job never
into a folder that holds a trace, a ``hydra.sweep.subdir`` never outside the
sweep folder. ``resume=<sweep folder>`` re-runs a sweep into that folder,
skipping the jobs it already holds (``harness.resume``), new jobs into fresh
subfolders, the earlier ``multirun.yaml`` kept as ``multirun.<k>.yaml``. Hydra's
``.hydra/`` files never replace another run's (``fresh_subdir``). SIGTERM and
SIGHUP stop a sweep like Ctrl-C, and so does a full disk: the finished jobs
are kept and the resume command is printed.

Exit status: 0 when every job ran (or was already complete) and none failed;
1 when a job ended ``error``, ``timeout`` or ``unavailable``, a sweep ran no
job, or results could not be written (one line says which and how many); 2
for bad input, refused before anything was written; 130 (Ctrl-C, SIGHUP) or
143 (SIGTERM) when stopped from outside.
"""

from __future__ import annotations

import errno
import itertools
import logging
import os
import shutil
import signal
import sys
import tempfile
from datetime import datetime
from pathlib import Path

from harness.lock import LOCK_NAME, FolderBusy, FolderLock, describe

CONF = Path(__file__).resolve().parents[1] / "conf"
MIN_GRID = 8  # = problems.MIN_GRID (not imported: a bad command line fails before the heavy imports)
GROUPS = ("solver", "problem", "sweep")
INFO_FLAGS = ("--help", "-h", "--hydra-help", "--cfg", "-c", "--info", "-i", "--shell-completion", "-sc",
              "--version")
PER_JOB = ("${hydra.job.num}", "${hydra.job.id}", "${hydra.job.override_dirname}")
log = logging.getLogger("harness")

# New jobs of a resumed sweep go to fresh folders (never into an old job's folder,
# whose Hydra job number may now belong to a different job).
RESUMED_SUBDIR = "${problem.name}_n${problem.n}/${solver.name}/resumed-STAMP-${hydra.job.num}"
RESUMED_RUN_DIR = "${problem.name}_n${problem.n}/${solver.name}/resumed-STAMP"
DIR_KEYS = ("hydra.run.dir", "hydra.sweep.dir", "resume")
SUBDIR_KEYS = ("hydra.sweep.subdir", "hydra.output_subdir")  # paths inside a folder: never outside it
DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


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


_register_resolvers()


def choices(group: str, extra: list[Path] = ()) -> list[str]:
    """The configs of ``group`` (e.g. solver) in conf/ and in the ``extra`` config folders."""
    return sorted({p.stem for folder in (CONF, *extra) for p in (Path(folder) / group).glob("*.yaml")})


def search_dirs(argv: list[str]) -> list[Path] | None:
    """Config folders added with ``hydra.searchpath=[file://DIR,...]`` (a solver kept outside the
    repository), or None when one of them is not a folder (``pkg://``): its configs cannot be listed."""
    dirs: list[Path] = []
    for arg in argv:
        if arg.split("=", 1)[0].lstrip("+~") != "hydra.searchpath":
            continue
        override, error = _parse(arg)
        value = override.value() if not error else None
        for entry in value if isinstance(value, list) else []:
            if not str(entry).startswith("file://"):
                return None
            dirs.append(Path(str(entry)[len("file://"):]))
    return dirs


def _parse(arg: str):
    """The Hydra override for ``arg``, or a one-line error."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    try:
        return OverridesParser.create().parse_overrides([arg])[0], None
    except HydraException as exc:
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        detail = detail.split(" expecting ", 1)[0]  # Hydra's list of every token it could take: noise here
        return None, (f"malformed override {arg!r} ({detail}): use key=value, or key=a,b,c to sweep "
                      f"(e.g. problem.n=64,128); see python -m harness.run --help")


def _glob(override):
    """The ``glob()`` of a sweep override, or None."""
    from hydra.core.override_parser.types import Glob

    value = override.value() if override.is_sweep_override() else None
    return value if isinstance(value, Glob) else None


def _values(override, extra: list[Path] = ()) -> list[str] | None:
    """The string value(s) of an override (every value of a discrete sweep, the configs a ``glob()`` picks);
    None when not listable."""
    if override.is_delete():
        return None
    if (pattern := _glob(override)) is not None:
        return pattern.filter(choices(override.key_or_group.lstrip("+~"), extra))
    if override.is_sweep_override():
        return list(override.sweep_string_iterator()) if override.is_discrete_sweep() else None
    return [override.get_value_element_as_str()]


def _unwritable(key: str, value: str) -> str | None:
    """Why results cannot be written under ``value`` (the part before any ${...}), or None."""
    literal = value.split("${", 1)[0] or "."
    target = Path(literal).expanduser()
    target = target if target.is_absolute() else Path.cwd() / target
    probe = target
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if key == "resume":
        if target.is_file():
            return f"resume={value} is a file, not a sweep folder: give the folder a sweep wrote (results/<sweep>/<t>)"
        if not target.is_dir():
            return f"resume={value}: no such sweep folder (give the folder a sweep wrote, e.g. results/<sweep>/<stamp>)"
        probe = target
    if not probe.is_dir():
        return f"{key}={value}: cannot write results there, {probe} is a file, not a folder: choose another folder"
    try:  # os.access says yes to root everywhere; creating a folder is the real test
        Path(tempfile.mkdtemp(prefix=".harness-probe-", dir=probe)).rmdir()
    except OSError as exc:
        return f"{key}={value}: cannot write results there ({probe}: {exc.strerror or exc}): choose another folder"
    return None


def check_arguments(argv: list[str]) -> str | None:
    """One line describing the first bad command-line value, or None."""
    seen_dirs = set()
    extra = search_dirs(argv)
    info = any(a in INFO_FLAGS or a.startswith("--cfg") for a in argv)  # Hydra only prints: nothing runs
    for arg in argv:
        if arg.startswith("-") or "=" not in arg:
            continue  # Hydra flags (--help, -m, --cfg job); Hydra reports its own
        override, error = _parse(arg)
        if error:
            return error
        key = override.key_or_group.lstrip("+~")
        if override.is_interval_sweep() and not info:
            return (f"{arg}: interval() needs a sweeper that samples (e.g. Optuna's); the basic sweeper runs a list "
                    f"or a range: use e.g. {key}=8,16 or {key}=range(8,17,4)")
        if _glob(override) is not None and key not in GROUPS:
            return (f"{arg}: glob() picks configs of a group ({', '.join(GROUPS)}), not values of {key}: list them "
                    f"(e.g. {key}=16,20) or use range()")
        values = _values(override, extra or [])
        if values is None:
            continue
        if _glob(override) is not None and not values:
            return f"{arg} matches no {key}; valid: {', '.join(choices(key, extra or []))}"
        if key in ("solver", "problem", "sweep") and extra is not None:
            valid = choices(key, extra)
            for v in values:
                if v not in valid:
                    what = f"{key}= needs a value" if v == "" else f"unknown {key} {v!r}"
                    return f"{what}; valid: {', '.join(valid)}"
        elif key in SUBDIR_KEYS:
            reason = _leaves_folder(key, arg.split("=", 1)[1])
            if reason:
                return reason
        elif key in DIR_KEYS:
            if not values[0]:
                return f"{key}= needs a folder (e.g. {key}=results/mine)"
            if key == "resume" and values[0] in ("null", "None"):
                continue
            seen_dirs.add(key)
            reason = _unwritable(key, values[0])
            if reason:
                return reason
    if not seen_dirs & {"hydra.run.dir", "hydra.sweep.dir", "resume"}:
        return _unwritable("results folder", "results")
    return None


def _leaves_folder(key: str, value: str) -> str | None:
    """Why a subfolder setting would write outside its folder (absolute, or climbing with ..), or None."""
    if value in ("null", "None", ""):
        return None
    if value.startswith(("/", "~")) or ".." in Path(value.replace("\\", "/")).parts:
        example = "hydra.sweep.subdir=${hydra.job.num}" if key == "hydra.sweep.subdir" else f"{key}=.hydra"
        return f"{key}={value} leaves its folder: give a path inside it, without .. (e.g. {example})"
    return None


def _hydra_error_line(exc: Exception) -> str:
    """Hydra's multi-line composition errors as one line."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    if not lines:
        return type(exc).__name__
    if any(ln.startswith("Available options") for ln in lines):
        i = next(i for i, ln in enumerate(lines) if ln.startswith("Available options"))
        options = [ln for ln in lines[i + 1:] if not ln.startswith(("Config search path", "provider="))]
        return f"{lines[0]}; available: {', '.join(options)}"
    if lines[0].startswith("Could not override") and len(lines) > 1:  # Hydra: the key is not in the config
        key = lines[0].split("'")[1] if lines[0].count("'") >= 2 else ""
        if key.startswith("solver."):
            return (f"{lines[0].rstrip('.')}: the solver's config has no such key (in a sweep, every solver "
                    f"must have it). {lines[1]} only if the solver takes that parameter")
        return f"{lines[0].rstrip('.')}: no such key in the config. {lines[1]} only if it is a real setting"
    return lines[0]


def _typed_values(override, extra: list[Path] = ()) -> list:
    """The typed value(s) of an override: every value of a discrete sweep, one otherwise."""
    from hydra.core.override_parser.types import Transformer

    if (pattern := _glob(override)) is not None:
        return pattern.filter(choices(override.key_or_group.lstrip("+~"), extra))
    if override.is_sweep_override():
        return list(override.sweep_iterator(transformer=Transformer.identity)) if override.is_discrete_sweep() else []
    return [override.value()]


def _as_override(prefix: str, key: str, value) -> str:
    """An override string that Hydra parses back to ``value``."""
    return f"{prefix}{key}={_hydra_text(value)}"


def _hydra_text(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_hydra_text(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{k}:{_hydra_text(v)}" for k, v in value.items()) + "}"
    text = str(value)
    plain = text and all(c.isalnum() or c in "_-./:" for c in text) and text.lower() not in (
        "null", "true", "false", "inf", "nan", "-inf")
    try:
        float(text)
        plain = False  # "5" given as a string stays a string
    except ValueError:
        pass
    return text if plain else _quoted(text)


def _quoted(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def job_variants(argv: list[str], sweep_params: dict[str, str] | None = None) -> list[list[str]]:
    """Override lists that cover every value of every swept key of the command (plus those of
    ``sweep_params``, a sweep file's ``hydra.sweeper.params``), without the full product: keys that
    depend on each other (a solver and its ``solver.*`` parameters; a problem and ``problem.*``)
    vary together, other keys one at a time. Each list composes to one job's config."""
    entries: dict[str, tuple[str, list]] = {}  # key -> (prefix, values), in command order
    extra = search_dirs(argv) or []
    for arg in [f"{k}={v}" for k, v in (sweep_params or {}).items()] + [
            a for a in argv if not a.startswith("-") and ("=" in a or a.startswith("~"))]:
        override, error = _parse(arg)
        if override is None:
            continue
        if override.is_delete():
            entries[override.get_key_element()] = ("", [arg])
            continue
        values = _typed_values(override, extra)
        if not values:
            continue  # a range or interval sweep of floats: Hydra's sweeper refuses it itself
        key = override.key_or_group
        prefix = override.get_key_element()[: -len(key)] if override.get_key_element().endswith(key) else ""
        entries[key] = (prefix, values)

    def as_args(choice: dict[str, object]) -> list[str]:
        out = []
        for key, (prefix, values) in entries.items():
            if len(values) == 1 and isinstance(values[0], str) and values[0].startswith("~"):
                out.append(values[0])
            else:
                out.append(_as_override(prefix, key, choice.get(key, values[0])))
        return out

    swept = {k: v for k, (_, v) in entries.items() if len(v) > 1}
    variants = [as_args({})]
    for family in ("solver", "problem"):
        keys = [k for k in swept if k == family or k.startswith(family + ".")]
        for combo in itertools.islice(itertools.product(*(swept[k] for k in keys)), 1, 2000):
            variants.append(as_args(dict(zip(keys, combo, strict=True))))
    for key in swept:
        if key.split(".", 1)[0] not in ("solver", "problem"):
            variants += [as_args({key: v}) for v in swept[key][1:]]
    return variants


def added_keys(overrides: list[str]) -> list[str]:
    """Dotted keys added with ``+key=`` or ``++key=`` (those must be declared settings)."""
    return [o.split("=", 1)[0].lstrip("+") for o in overrides if o.startswith("+") and "=" in o]


def sweeper_params(argv: list[str]) -> dict[str, str]:
    """``hydra.sweeper.params`` of the sweep file the command names (``+sweep=NAME``), if any."""
    from hydra import compose

    first = job_variants([a for a in argv if a.split("=", 1)[0].lstrip("+~").split(".")[0] in ("sweep", "hydra")
                          or a.split("=", 1)[0].lstrip("+~").startswith("hydra/")])[0]
    if not first:
        return {}  # conf/config.yaml itself sweeps nothing
    hc = compose("config", overrides=first, return_hydra_config=True)
    return {str(k): str(v) for k, v in (hc.hydra.sweeper.get("params") or {}).items()}


def check_values(argv: list[str], max_groups: int = 200) -> str | None:
    """Compose every job's config as Hydra will and check every value (``harness.validate``); one line
    for the first problem, or None."""
    return _check_values(argv, max_groups)[0]


def _check_values(argv: list[str], max_groups: int = 200):
    """(one line or None, the first job's config with its hydra section, for ``plan_output``)."""
    from hydra import compose, initialize_config_dir

    from harness.validate import config_error

    first = None
    try:
        with initialize_config_dir(version_base="1.3", config_dir=str(CONF), job_name="run"):
            params = sweeper_params(argv)
            for i, overrides in enumerate(job_variants(argv, params)):
                if i >= max_groups:
                    break
                cfg = compose("config", overrides=overrides, return_hydra_config=i == 0)
                first = cfg if i == 0 else first
                line = config_error(cfg, added_keys(overrides))
                if line:
                    return line, first
    except Exception as exc:  # noqa: BLE001 - whatever Hydra says, as one line
        return _hydra_error_line(exc), first
    return None, first


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
        cfg = with_hydra(argv, first if argv == sys.argv[1:] else None)
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


def _refuse(line: str) -> None:
    print(f"error: {line}", file=sys.stderr)
    sys.exit(2)


if __name__ == "__main__":
    cli()
