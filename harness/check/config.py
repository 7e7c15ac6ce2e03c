"""Where the check finds its sweep and baseline, and the tolerances it compares with."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

REPO = Path(__file__).resolve().parents[2]
CONF = REPO / "conf"
SWEEP = "ci"
BASELINE_DIR = REPO / "tests" / "baselines" / SWEEP
BASELINE_FILE = "trace.parquet"
BASELINE_JSON = "baseline.json"
DEFAULT_OUT = Path("reports") / "check"
KEY = ["problem", "n", "solver"]  # a job of the check (see harness.results: what identifies what)
PER_SOLVER_KEYS = ("decades", "iters_rel", "noise_floor")

# --- configuration ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Tolerances:
    decades: float = 0.5
    iters_rel: float = 0.10
    iters_target: float = 1e-10
    floor: float = 1e-32
    noise_floor: float = 1e-26
    symmetric: bool = True
    fail_on_new: bool = False
    per_solver: dict[str, dict[str, float]] = field(default_factory=dict)

    def for_solver(self, solver: str) -> Tolerances:
        extra = self.per_solver.get(solver) or {}
        bad = set(extra) - set(PER_SOLVER_KEYS)
        if bad:
            raise ValueError(f"check.per_solver.{solver}: unknown keys {sorted(bad)} "
                             f"(valid: {', '.join(PER_SOLVER_KEYS)})")
        return replace(self, **extra) if extra else self

    @classmethod
    def from_config(cls, check: dict | DictConfig | None) -> Tolerances:
        d = OmegaConf.to_container(check, resolve=True) if isinstance(check, DictConfig) else dict(check or {})
        names = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in d.items() if k in names and v is not None})


def load_ci_config(sweep: str = SWEEP) -> DictConfig:
    """The sweep file itself (sweeper params and the ``check`` section)."""
    path = CONF / "sweep" / f"{sweep}.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"no sweep config {path}")
    return OmegaConf.load(path)


