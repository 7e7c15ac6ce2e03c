"""Entry point: ``python -m harness.run [overrides]`` (one job) or ``+sweep=NAME`` (a sweep).

Command-line values are checked before Hydra starts (names, grid sizes,
budgets, the override grammar, the results folder), so a mistake costs one
line naming the fix and writes nothing. ``resume=<sweep folder>`` re-runs a
sweep into that folder, skipping the jobs it already holds (``harness.resume``).
"""

from __future__ import annotations

import logging
import shutil
import sys
import tempfile
from datetime import datetime
from pathlib import Path

CONF = Path(__file__).resolve().parents[1] / "conf"
MIN_GRID = 8  # = problems.MIN_GRID (not imported: a bad command line fails before the heavy imports)
log = logging.getLogger("harness")

# New jobs of a resumed sweep go to fresh folders (never into an old job's folder,
# whose Hydra job number may now belong to a different job).
RESUMED_SUBDIR = "${problem.name}_n${problem.n}/${solver.name}/resumed-STAMP-${hydra.job.num}"
RESUMED_RUN_DIR = "${problem.name}_n${problem.n}/${solver.name}/resumed-STAMP"
POSITIVE_INT = ("budget.max_iters", "repeats")
POSITIVE_NUMBER = ("budget.max_seconds", "job_timeout_s")
DIR_KEYS = ("hydra.run.dir", "hydra.sweep.dir", "resume")


def choices(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


def _parse(arg: str):
    """The Hydra override for ``arg``, or a one-line error."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    try:
        return OverridesParser.create().parse_overrides([arg])[0], None
    except HydraException as exc:
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return None, f"malformed override {arg!r} ({detail}); see python -m harness.run --help"


def _values(override) -> list[str] | None:
    """The string value(s) of an override (every value of a discrete sweep); None when not listable."""
    if override.is_delete():
        return None
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
        if not target.is_dir():
            return f"resume={value}: no such sweep folder (give the folder a sweep wrote, e.g. results/<sweep>/<stamp>)"
        probe = target
    if not probe.is_dir():
        return f"{key}={value}: cannot write results there, {probe} is a file, not a folder"
    try:  # os.access says yes to root everywhere; creating a folder is the real test
        Path(tempfile.mkdtemp(prefix=".harness-probe-", dir=probe)).rmdir()
    except OSError as exc:
        return f"{key}={value}: cannot write results there ({probe}: {exc.strerror or exc})"
    return None


def check_arguments(argv: list[str]) -> str | None:
    """One line describing the first bad command-line value, or None."""
    seen_dirs = set()
    for arg in argv:
        if arg.startswith("-") or "=" not in arg:
            continue  # Hydra flags (--help, -m, --cfg job); Hydra reports its own
        override, error = _parse(arg)
        if error:
            return error
        key = override.key_or_group.lstrip("+~")
        values = _values(override)
        if values is None:
            continue
        if key in ("solver", "problem", "sweep"):
            valid = choices(key)
            for v in values:
                if v not in valid:
                    what = f"{key}= needs a value" if v == "" else f"unknown {key} {v!r}"
                    return f"{what}; valid: {', '.join(valid)}"
        elif key in ("problem.n", "problem.h", "problem.w"):
            for v in values:
                if v in ("null", "None") and key != "problem.n":
                    continue
                if not v.lstrip("-").isdigit() or int(v) < MIN_GRID:
                    return f"{key}={v} is not a grid size: use an integer >= {MIN_GRID} (e.g. {key}=64)"
        elif key in POSITIVE_INT + POSITIVE_NUMBER:
            for v in values:
                if key == "job_timeout_s" and v in ("null", "None"):
                    continue
                try:
                    ok = float(v) > 0 and (key in POSITIVE_NUMBER or float(v).is_integer())
                except ValueError:
                    ok = False
                if not ok:
                    kind = "a positive number" if key in POSITIVE_NUMBER else "a positive integer"
                    return f"{key}={v} must be {kind}"
        elif key in DIR_KEYS:
            if not values[0]:
                return f"{key}= needs a folder"
            if key == "resume" and values[0] in ("null", "None"):
                continue
            seen_dirs.add(key)
            reason = _unwritable(key, values[0])
            if reason:
                return reason
    if not seen_dirs & {"hydra.run.dir", "hydra.sweep.dir", "resume"}:
        return _unwritable("results folder", "results")
    return None


def _one_line(exc: Exception) -> str:
    """Hydra's multi-line composition errors as one line."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    if not lines:
        return type(exc).__name__
    if any(ln.startswith("Available options") for ln in lines):
        i = next(i for i, ln in enumerate(lines) if ln.startswith("Available options"))
        options = [ln for ln in lines[i + 1:] if not ln.startswith(("Config search path", "provider="))]
        return f"{lines[0]}; available: {', '.join(options)}"
    return " ".join(lines[:2]) if lines[0].startswith("Could not override") else lines[0]


def check_composition(argv: list[str], max_configs: int = 40) -> str | None:
    """Compose the config as Hydra will (each value of a swept key once); one line if that fails."""
    from hydra import compose, initialize_config_dir

    overrides = [a for a in argv if not a.startswith("-") and ("=" in a or a.startswith("~"))]
    parsed = [(a, _parse(a)[0]) for a in overrides]
    base, variants = [], []
    for i, (arg, ov) in enumerate(parsed):
        values = _values(ov) if ov is not None and ov.is_sweep_override() else None
        if not values:
            base.append(arg)
            continue
        key = ov.get_key_element()
        base.append(f"{key}={values[0]}")
        variants += [(i, f"{key}={v}") for v in values[1:]]
    configs = [base] + [base[:i] + [v] + base[i + 1:] for i, v in variants]
    try:
        with initialize_config_dir(version_base="1.3", config_dir=str(CONF), job_name="check"):
            for ovs in configs[:max_configs]:
                compose("config", overrides=ovs)
    except Exception as exc:  # noqa: BLE001 - whatever Hydra says, as one line
        return _one_line(exc)
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
    if "hydra.run.dir" not in given:
        extra.append(f"hydra.run.dir='{folder}/{RESUMED_RUN_DIR.replace('STAMP', stamp)}'")
    return argv + extra


def remove_job_folder(out_dir: Path) -> None:
    """Remove a job folder that holds only what Hydra put there (.hydra/, run.log), and empty parents
    inside results/. Never touches a folder with anything else in it."""
    out_dir = Path(out_dir)
    if not out_dir.is_dir() or any(p.name not in (".hydra", "run.log") for p in out_dir.iterdir()):
        return
    shutil.rmtree(out_dir / ".hydra", ignore_errors=True)
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


def _main(cfg) -> None:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode
    from omegaconf import OmegaConf

    from harness.job import ConfigError, JobNotRun, run_job
    from harness.resume import find_complete, job_key, solver_label
    from problems import ProblemError

    hc = HydraConfig.get()
    single = hc.mode != RunMode.MULTIRUN
    out_dir = Path(hc.runtime.output_dir)
    overrides = list(hc.overrides.task)

    def fail(message: str) -> None:
        message = " ".join(str(message).split())
        if single:  # one line on stderr, nothing left behind, non-zero exit
            print(f"error: {message}", file=sys.stderr)
            remove_job_folder(out_dir)
            sys.exit(2)
        log.error(f"error: {message}")  # a sweep records it and goes on

    if cfg.get("resume"):
        key = job_key(OmegaConf.to_container(cfg, resolve=True), overrides)
        done = find_complete(cfg.resume, key)
        if done is not None:
            label = solver_label(str(cfg.solver.name), overrides)
            log.info(f"{label:>14s} {cfg.problem.name} n={cfg.problem.n}  complete in {done.parent} (resume: skipped)")
            remove_job_folder(out_dir)
            return
    try:
        run_job(cfg, out_dir, overrides, write_unstarted=not single)
    except JobNotRun as exc:
        fail(str(exc))
    except (ProblemError, ConfigError) as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"cannot write results to {out_dir}: {exc.strerror or exc}")


def main() -> None:
    import hydra

    hydra.main(config_path="../conf", config_name="config", version_base="1.3")(_main)()


def cli() -> None:
    argv = sys.argv[1:]
    problem = check_arguments(argv) or check_composition(argv)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        sys.exit(2)
    sys.argv = [sys.argv[0], *resume_arguments(argv)]
    try:
        main()
    except KeyboardInterrupt as exc:  # Ctrl-C, or a solver process stopped from outside (harness.guard)
        why = str(exc) or "interrupted"
        print(f"stopped: {why}. Finished jobs are kept; to run the rest of a sweep, repeat the command "
              f"with resume=<its sweep folder>", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    cli()
