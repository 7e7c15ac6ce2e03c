"""Entry point: ``python -m harness.run [overrides]`` (one job) or ``+sweep=NAME`` (a sweep).

Command-line names are checked before Hydra starts, so a typo costs one line
naming the valid choices and writes nothing.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from harness.job import ConfigError, run_job
from problems import MIN_GRID, ProblemError

CONF = Path(__file__).resolve().parents[1] / "conf"
log = logging.getLogger("harness")


def choices(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


def _values(arg: str) -> list[str]:
    value = arg.split("=", 1)[1]
    for prefix in ("choice(", "range("):
        if value.startswith(prefix) and value.endswith(")"):
            value = value[len(prefix):-1]
    return [v.strip() for v in value.split(",") if v.strip()]


def check_arguments(argv: list[str]) -> str | None:
    """One line describing the first bad command-line value, or None."""
    for arg in argv:
        key = arg.split("=", 1)[0].lstrip("+~")
        if "=" not in arg:
            continue
        if key in ("solver", "problem", "sweep"):
            valid = choices(key)
            for v in _values(arg):
                if v not in valid:
                    return f"unknown {key} {v!r}; valid: {', '.join(valid)}"
        elif key in ("problem.n", "problem.h", "problem.w"):
            if arg.split("=", 1)[1].startswith("range("):
                continue
            for v in _values(arg):
                if not v.lstrip("-").isdigit() or int(v) < MIN_GRID:
                    return f"{key}={v} is not a grid size: use an integer >= {MIN_GRID} (e.g. {key}=64)"
        elif key in ("budget.max_iters", "budget.max_seconds", "repeats"):
            for v in _values(arg):
                try:
                    ok = float(v) > 0 and (key == "budget.max_seconds" or float(v).is_integer())
                except ValueError:
                    ok = False
                if not ok:
                    kind = "a positive number" if key == "budget.max_seconds" else "a positive integer"
                    return f"{key}={v} must be {kind}"
    return None


@hydra.main(config_path="../conf", config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> None:
    hc = HydraConfig.get()
    try:
        run_job(cfg, hc.runtime.output_dir, list(hc.overrides.task))
    except (ProblemError, ConfigError) as exc:
        # A user error in this job: say so in one line; earlier jobs of a sweep are kept.
        log.error(f"error: {exc}")
        if hc.mode is None or str(hc.mode).endswith("RUN") and not str(hc.mode).endswith("MULTIRUN"):
            sys.exit(2)


def cli() -> None:
    problem = check_arguments(sys.argv[1:])
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        sys.exit(2)
    main()


if __name__ == "__main__":
    cli()
