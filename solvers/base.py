"""The one Solver interface every solver implements (CPU, GPU, neural alike).

The harness drives a solver in three untimed/timed phases::

    reason = solver.available()      # None, or why it cannot run here
    solver.setup(problem)            # untimed by the solve clock, reported as setup_s
    u = solver.solve(problem, monitor)   # timed; calls monitor(k, x) after iteration k

Rules a solver follows:
- Never compute the harness metrics and never stop on its own tolerance; run
  until ``monitor`` raises (it owns the budget). ``monitor.max_iters`` is the
  iteration budget, for solvers that need a ``maxiter``.
- ``x`` passed to the monitor is either an interior vector (length
  ``problem.n_interior``) or a full (H, W) field, as NumPy, CuPy or torch.
  The monitor copies it to the host only at checkpoints.
- A solver without per-iteration callbacks sets ``callbacks = False`` and calls
  ``monitor(k, x)`` once, at the end, having run ``monitor.max_iters``
  iterations; the harness then re-runs it fresh for each checkpoint (the
  re-run strategy) and records that in the trace. Before ``setup`` the harness
  tells it the planned iteration counts (``set_rerun_plan``), so that per-run
  objects can be built off the clock.
- ``solve`` may be called several times after one ``setup`` (the untimed
  warm-up, the re-run strategy, the timing self-check); each call starts afresh.
- ``sync()`` waits for queued device work; the monitor calls it before every
  clock read so that asynchronous GPU work is charged to the right place.
- ``exit_message``: a solver that returns before the monitor stops it says why.
- ``matvecs`` counts operator applications so far in the current solve
  (sparse mat-vecs or stencil applications); leave it None where it cannot be
  counted honestly.
"""

from __future__ import annotations

from typing import Any, ClassVar


class Solver:
    family: ClassVar[str] = "base"
    backend: ClassVar[str] = "cpu"
    callbacks: ClassVar[bool] = True
    max_iterations: ClassVar[int | None] = None  # e.g. 1 for a direct solver
    # Peak resident bytes per grid node the solver adds to the problem's own caches (the memory
    # guard's estimate, harness.memory); measured, see docs/ROBUSTNESS.md. 300 for a solver
    # that has not been measured.
    bytes_per_node: ClassVar[int] = 300

    def __init__(self, name: str, device: str = "cpu", **params: Any):
        self.name = name
        self.device = device
        self.params = params
        self.matvecs: int | None = None
        self.exit_message: str | None = None  # why solve() returned by itself, if it did
        self.rerun_plan: list[int] | None = None  # set by the harness for re-run solvers

    @classmethod
    def family_of(cls, params: dict[str, Any]) -> str:
        """The family a solver built with ``params`` reports (without building it)."""
        return cls.family

    @classmethod
    def memory_per_node(cls, params: dict[str, Any]) -> int:
        """Peak bytes per grid node a solver built with ``params`` adds (without building it)."""
        return cls.bytes_per_node

    def available(self) -> str | None:
        """None if the solver can run here, else a one-line reason (and the fix)."""
        return None

    def supports(self, problem) -> str | None:
        """None if the solver applies to ``problem``, else why not (recorded as unavailable)."""
        return None

    def set_rerun_plan(self, iterations: list[int]) -> None:
        """Re-run strategy only, called before ``setup``: the ``monitor.max_iters`` values the
        harness will solve with, in increasing order (it may stop before the last)."""
        self.rerun_plan = list(iterations)

    def setup(self, problem) -> None:
        """Everything that is not iterating: assembly, transfers, factorisation,
        AMG hierarchy, model load. Timed as setup_s; the harness warms the solve up
        afterwards (an untimed short solve), so no solver needs its own warm-up here."""

    def solve(self, problem, monitor):
        """Iterate from the problem's initial field; return the final full-grid field."""
        raise NotImplementedError

    def sync(self) -> None:
        """Block until queued device work is done (no-op on the CPU)."""

    def teardown(self) -> None:
        """Release resources (GPU handles, AMGX objects); always called."""

    def describe(self) -> dict[str, Any]:
        """Facts about this solver instance for the trace metadata (key ``solver_info``, JSON-
        serialisable), beyond its configured parameters (which the trace stores anyway): e.g. a
        neural solver's training cost, or how many objects a re-run solver prebuilt."""
        return {}


class IterationCounter:
    """The per-iteration callback of a SciPy or PyAMG solve: its k-th call hands iterate k to the monitor.

    ``before`` runs first (e.g. to bring a mat-vec count up to date); ``k`` is the last iteration reported.

    >>> seen = []
    >>> callback = IterationCounter(lambda k, x: seen.append((k, x)))
    >>> callback("x1"); callback("x2"); seen
    [(1, 'x1'), (2, 'x2')]
    """

    def __init__(self, monitor, before=None):
        self.monitor, self.before = monitor, before
        self.k = 0

    def __call__(self, x) -> None:
        self.k += 1
        if self.before is not None:
            self.before()
        self.monitor(self.k, x)


def torch_sync(device: str) -> None:
    """Synchronise a torch device (no-op on CPU)."""
    if str(device).startswith("cuda"):
        import torch

        torch.cuda.synchronize(device)


def cuda_unavailable_reason(device: str) -> str | None:
    """Why a torch solver cannot run on ``device`` here, or None."""
    if not str(device).startswith("cuda"):
        return None
    import torch

    if torch.version.cuda is None:
        return ("this torch is a CPU-only build: install a CUDA build of torch (see docs/GPU.md), "
                "or set solver.device=cpu")
    if not torch.cuda.is_available():
        return "no CUDA device visible to torch (set solver.device=cpu, or run on a GPU machine)"
    return None
