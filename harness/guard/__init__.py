"""Guards that keep one bad job from stalling or killing a sweep, both applied by ``harness.job.run_job``:
process isolation with a deadline (``isolation``) and a memory estimate before setup (``memory``)."""

from harness.guard.isolation import (
    FORK_REFUSED,
    ChildOutcome,
    Interrupted,
    SharedLog,
    cuda_initialised,
    environment_isolated,
    fork_available,
    fork_refusal,
    run_isolated,
)
from harness.guard.memory import (
    GiB,
    available_memory,
    estimate_bytes,
    grid_shape,
    memory_refusal,
    solver_class,
    solver_family,
)

__all__ = ["FORK_REFUSED", "ChildOutcome", "GiB", "Interrupted", "SharedLog", "available_memory",
           "cuda_initialised", "environment_isolated", "estimate_bytes", "fork_available", "fork_refusal",
           "grid_shape", "memory_refusal", "run_isolated", "solver_class", "solver_family"]
