"""Test-only solvers that misbehave on purpose (fault injection).

Use them through Hydra, e.g. ``solver._target_=tests.faulty_solvers.Hangs``
(any ``conf/solver/*.yaml`` supplies ``name``), or through ``run_solver``.
Each does a few honest Jacobi sweeps first, so a partial trace exists.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np

from solvers.base import Solver


class _Jacobi(Solver):
    """Damped Jacobi on the 9-point system: cheap, a real (slow) convergence curve."""

    family = "test"
    backend = "numpy"

    def __init__(self, name: str = "faulty", good_iterations: int = 3, **params):
        super().__init__(name, good_iterations=good_iterations, **params)
        self.good = int(good_iterations)

    def setup(self, problem):
        s = problem.linear_system()
        self.A, self.b, self.dinv = s.A, s.b, 1.0 / s.A.diagonal()

    def sweeps(self, problem, monitor, count):
        x = np.zeros_like(self.b)
        for k in range(1, count + 1):
            x = x + 0.8 * self.dinv * (self.b - self.A @ x)
            monitor(k, x)
        return x

    def solve(self, problem, monitor):
        return self.sweeps(problem, monitor, monitor.max_iters)


class Raises(_Jacobi):
    """Raises a RuntimeError after ``good_iterations`` iterations."""

    def solve(self, problem, monitor):
        self.sweeps(problem, monitor, self.good)
        raise RuntimeError("injected fault: the solver blew up")


class ReturnsNaN(_Jacobi):
    """Hands the monitor a NaN field after ``good_iterations`` iterations."""

    def solve(self, problem, monitor):
        x = self.sweeps(problem, monitor, self.good)
        x = np.full_like(x, math.nan)
        monitor(self.good + 1, x)
        return x


class Hangs(_Jacobi):
    """Sleeps (in Python) for ``seconds`` after ``good_iterations`` iterations."""

    def __init__(self, name: str = "hangs", seconds: float = 1e9, **params):
        super().__init__(name, **params)
        self.seconds = float(seconds)

    def solve(self, problem, monitor):
        x = self.sweeps(problem, monitor, self.good)
        time.sleep(self.seconds)
        return x


class HangsInSetup(Hangs):
    """Sleeps in ``setup``."""

    def setup(self, problem):
        super().setup(problem)
        time.sleep(self.seconds)


class StuckInC(_Jacobi):
    """One very long call in C (``sum(range(10**13))``, hours): no Python exception or signal
    handler runs until it returns; only killing the process ends it."""

    def solve(self, problem, monitor):
        x = self.sweeps(problem, monitor, self.good)
        sum(range(10**13))
        return x


class Slow(_Jacobi):
    """Honest Jacobi, ``delay`` seconds per iteration (for killing a sweep mid-job)."""

    def __init__(self, name: str = "slow", delay: float = 0.05, **params):
        super().__init__(name, **params)
        self.delay = float(delay)

    def solve(self, problem, monitor):
        x = np.zeros_like(self.b)
        for k in range(1, monitor.max_iters + 1):
            time.sleep(self.delay)
            x = x + 0.8 * self.dinv * (self.b - self.A @ x)
            monitor(k, x)
        return x


class Segfaults(_Jacobi):
    """Kills its own process with SIGSEGV after ``good_iterations`` (a crash in C code)."""

    def solve(self, problem, monitor):
        import faulthandler
        import os
        import signal

        self.sweeps(problem, monitor, self.good)
        faulthandler.disable()  # pytest's traceback dump would only be noise here
        os.kill(os.getpid(), signal.SIGSEGV)


class NeedsFile(_Jacobi):
    """Needs a model file, like a neural solver: reports a missing or unreadable one as unavailable."""

    def __init__(self, name: str = "needs_file", checkpoint: str = "", **params):
        super().__init__(name, checkpoint=checkpoint, **params)

    def available(self):
        path = Path(self.params["checkpoint"])
        if not path.is_file():
            return f"checkpoint {path} not found: set solver.checkpoint=PATH"
        if not path.read_bytes().startswith(b"WEIGHTS"):
            return f"checkpoint {path} is corrupt (not a weights file)"
        return None


class Preempted(_Jacobi):
    """Receives SIGTERM after ``good_iterations`` (Ctrl-C, scancel, a preempted Slurm job)."""

    def solve(self, problem, monitor):
        import os
        import signal

        self.sweeps(problem, monitor, self.good)
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(60)


class OutOfMemory(_Jacobi):
    """Really runs out of memory: caps its own process's address space (RLIMIT_AS, in the solver's
    child process, so the harness process is untouched), then allocates ``gib`` GiB past the cap
    and writes to it. The allocation fails in the C allocator (numpy raises MemoryError)."""

    def __init__(self, name: str = "out_of_memory", gib: float = 2.0, **params):
        super().__init__(name, **params)
        self.gib = float(gib)

    def solve(self, problem, monitor):
        import resource

        x = self.sweeps(problem, monitor, self.good)
        used = _address_space_bytes()
        resource.setrlimit(resource.RLIMIT_AS, (used + (256 << 20), resource.getrlimit(resource.RLIMIT_AS)[1]))
        hog = np.ones(int(self.gib * (1 << 30)) // 8)  # past the cap: fails here
        return x + hog[: x.size]


def _address_space_bytes() -> int:
    """This process's current virtual size (VmSize), in bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmSize:"):
            return int(line.split()[1]) * 1024
    raise OSError("no VmSize in /proc/self/status")
