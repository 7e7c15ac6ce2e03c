"""The memory guard, applied by ``harness.job.run_job`` before setup: too large a grid is refused
with one line instead of being OOM-killed half-way through a sweep.

The estimate is the number of grid nodes times bytes per node: ``BASE_BYTES_PER_NODE`` (the
problem's own caches: the sparse assembly, the metrics), plus what the solver class declares
(``Solver.memory_per_node``), plus what the problem's generator declares for its reference
solution (``problems.reference_bytes_per_node``), against the memory this process may still
use (``MemAvailable``, capped by a cgroup limit and by the job's Slurm allocation, ``--mem``).
"""

from __future__ import annotations

import os
from pathlib import Path

from problems import reference_bytes_per_node

GiB = 1024**3
MiB = 1024**2

# Peak resident bytes per grid node (H*W), measured with the guard's child processes (ru_maxrss
# above the job process) on laplace_bilinear at n = 512, 1024, 2048 and rounded up; see
# docs/ROBUSTNESS.md. Most solvers peak at 550-750 B/node, set by the problem's own caches, which
# BASE covers; a solver adds its work space (its class's ``bytes_per_node``).
BASE_BYTES_PER_NODE = 700
UNKNOWN_SOLVER_BYTES_PER_NODE = 300  # a config whose _target_ does not resolve (it fails when built anyway)


def solver_class(solver_cfg: dict) -> type | None:
    """The class a solver config's ``_target_`` names, without instantiating it (None if it does not resolve)."""
    target = solver_cfg.get("_target_")
    if not target:
        return None
    try:
        from hydra.utils import get_class

        return get_class(target)
    except Exception:  # noqa: BLE001 - a bad _target_ is reported when the solver is built
        return None


def _params(solver_cfg: dict) -> dict:
    return {k: v for k, v in solver_cfg.items() if k != "_target_"}


def solver_family(solver_cfg: dict) -> str | None:
    """The family a solver config will report, from its class, without instantiating it."""
    cls = solver_class(solver_cfg)
    family_of = getattr(cls, "family_of", None)
    return family_of(_params(solver_cfg)) if family_of else getattr(cls, "family", None)


def grid_shape(problem_cfg: dict) -> tuple[int, int] | None:
    """(H, W) from a problem config (n, or h and w), or None if not integers."""
    n, h, w = problem_cfg.get("n"), problem_cfg.get("h"), problem_cfg.get("w")
    h, w = (h if h is not None else n), (w if w is not None else n)
    try:
        return int(h), int(w)
    except (TypeError, ValueError):
        return None


def bytes_per_node(solver_cfg: dict, problem_name: str = "") -> int:
    """Peak bytes per grid node of a job: the problem's caches + the solver's work space + the reference."""
    cls = solver_class(solver_cfg)
    per_node = getattr(cls, "memory_per_node", None)
    solver = per_node(_params(solver_cfg)) if per_node else UNKNOWN_SOLVER_BYTES_PER_NODE
    return BASE_BYTES_PER_NODE + solver + reference_bytes_per_node(problem_name)


def slurm_memory_limit() -> int | None:
    """Bytes of this Slurm job's memory allocation, from the variables Slurm sets in every job
    (``--mem``: SLURM_MEM_PER_NODE; ``--mem-per-cpu``: SLURM_MEM_PER_CPU x SLURM_CPUS_ON_NODE, in MiB),
    or None outside Slurm. Read from the environment because a cluster without cgroup task
    plugins enforces nothing the process could see, yet the job was granted only this much."""
    try:
        if os.environ.get("SLURM_MEM_PER_NODE"):
            return int(os.environ["SLURM_MEM_PER_NODE"]) * MiB
        if os.environ.get("SLURM_MEM_PER_CPU") and os.environ.get("SLURM_CPUS_ON_NODE"):
            return int(os.environ["SLURM_MEM_PER_CPU"]) * int(os.environ["SLURM_CPUS_ON_NODE"]) * MiB
    except ValueError:
        pass
    return None


def _resident_bytes() -> int:
    """This process's resident memory (what it already holds of a Slurm allocation)."""
    try:
        return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def available_memory() -> int | None:
    """Bytes this process may still allocate: MemAvailable, capped by a cgroup (v2 or v1) limit and by
    the job's Slurm allocation."""
    return memory_available()[0]


def memory_available() -> tuple[int | None, str]:
    """(bytes this process may still allocate, what sets that figure: "this machine" (its memory or
    cgroup) or "this Slurm job (--mem ...)", for the refusal's wording)."""
    avail, where = None, "this machine"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                avail = int(line.split()[1]) * 1024
                break
    except (OSError, ValueError):
        pass
    if avail is None:
        try:
            avail = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            return None, where
    for limit_f, usage_f in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                             ("/sys/fs/cgroup/memory/memory.limit_in_bytes",
                              "/sys/fs/cgroup/memory/memory.usage_in_bytes")):
        try:
            limit = Path(limit_f).read_text().strip()
            if limit != "max" and int(limit) < 1 << 60:
                avail = min(avail, int(limit) - int(Path(usage_f).read_text().strip()))
            break
        except (OSError, ValueError):
            continue
    slurm = slurm_memory_limit()
    if slurm is not None and slurm - _resident_bytes() < avail:
        avail, where = slurm - _resident_bytes(), f"this Slurm job (--mem {slurm / GiB:.1f} GiB)"
    return avail, where


def estimate_bytes(problem_cfg: dict, solver_cfg: dict) -> int | None:
    """Peak bytes the job is expected to need, or None if the grid size is not known."""
    shape = grid_shape(problem_cfg)
    if shape is None:
        return None
    h, w = shape
    return h * w * bytes_per_node(solver_cfg, str(problem_cfg.get("name", "")))


def memory_refusal(problem_cfg: dict, solver_cfg: dict, *, available: int | None = None,
                   margin: float = 0.9) -> str | None:
    """One line if the job would not fit in memory, else None."""
    need = estimate_bytes(problem_cfg, solver_cfg)
    have, where = memory_available() if available is None else (available, "this machine")
    if need is None or have is None or need <= margin * have:
        return None
    h, w = grid_shape(problem_cfg)
    family = solver_family(solver_cfg)
    more = " or a larger hydra.launcher.mem_gb" if where.startswith("this Slurm job") else ""
    return (f"grid {h}x{w} needs ~{need / GiB:.1f} GiB ({solver_cfg.get('name', '?')}, {family or 'unknown'} "
            f"family: ~{need // (h * w)} bytes per node), {where} has {max(have, 0) / GiB:.1f} GiB "
            f"available: use a smaller problem.n{more}, or memory_check=false to try anyway")
