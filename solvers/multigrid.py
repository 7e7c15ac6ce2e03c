"""Algebraic multigrid from PyAMG: smoothed aggregation and Ruge-Stueben V-cycles.

Standalone here (one callback per cycle); as a CG preconditioner see
``solvers.krylov`` with ``preconditioner: pyamg_sa | pyamg_rs`` (SciPy's CG with
``M = ml.aspreconditioner()``, ~2x faster than pyamg's own ``accel='cg'``).
The hierarchy is built in setup, off the solve clock, and reported as setup_s.
"""

from __future__ import annotations

import numpy as np
import pyamg  # at import time, before jobs fork: a repeat's setup_s must not include a module import

from solvers.base import IterationCounter, Solver

KINDS = ("sa", "rs")


def build_hierarchy(kind: str, A):
    if kind == "sa":
        return pyamg.smoothed_aggregation_solver(A)
    if kind == "rs":
        return pyamg.ruge_stuben_solver(A)
    raise ValueError(f"unknown AMG kind {kind!r}; valid: {', '.join(KINDS)}")


class PyAMG(Solver):
    family = "multigrid"
    bytes_per_node = 150  # hierarchy, operator complexity ~1.3
    backend = "pyamg"

    def __init__(self, name: str, kind: str = "sa", cycle: str = "V", **params):
        if kind not in KINDS:
            raise ValueError(f"unknown AMG kind {kind!r}; valid: {', '.join(KINDS)}")
        super().__init__(name, kind=kind, cycle=cycle, **params)
        self.kind, self.cycle = kind, cycle

    def setup(self, problem):
        system = problem.linear_system()
        self.b = system.b
        self.ml = build_hierarchy(self.kind, system.A)
        self.matvecs = None  # fine- and coarse-level applications inside a cycle are not countable here

    def solve(self, problem, monitor):
        callback = IterationCounter(monitor)
        # tol=0: pyamg's test is ||r|| < tol ||b||, never true, so it runs until the monitor stops it.
        return self.ml.solve(self.b, x0=np.zeros_like(self.b), tol=0.0, maxiter=monitor.max_iters,
                             cycle=self.cycle, callback=callback)
