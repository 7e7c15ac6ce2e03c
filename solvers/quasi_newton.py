"""scipy.optimize: Newton-CG, nonlinear CG and L-BFGS-B on the interior unknowns.

``gradient: exact`` (default): objective F(x) = ||A x - b||^2 (the sum, not the
mean: same minimiser, but SciPy's absolute stopping tests no longer fire on the
tiny 1/N-scaled values, API_NOTES.md), its exact gradient 2 A (A x - b) and, for
Newton-CG, the exact Hessian product 2 A A p.
``gradient: detach`` reproduces the paper: objective MSR (the mean), ``jac`` the
detached gradient -6 r / N (inconsistent with the objective), Newton-CG's
Hessian by finite differences of that jac.
All tolerances are zero so the optimiser runs until the harness budget ends.

Newton-CG still ends itself: its inner CG stops on an *absolute* curvature test
(p.Hp <= 3 eps), which near the solution leaves a zero step and "Optimization
terminated successfully" (at MSR ~1e-19 where CG reaches 1e-31). So it restarts
from its last iterate with the objective divided by its value there (same
minimiser, and the absolute tests become relative to the progress so far; a
plain restart repeats the same zero step), counting every operator
application, until the harness budget or target ends it. A restart that makes no
progress ends the solve: the job is then ``stalled`` with SciPy's reason.
"""

from __future__ import annotations

import numpy as np
import scipy.optimize

from problems.stencil import CENTRE
from solvers.base import IterationCounter, Solver

METHODS = {"newton_cg": "Newton-CG", "nonlinear_cg": "CG", "lbfgsb": "L-BFGS-B"}


class QuasiNewton(Solver):
    family = "quasi_newton"
    bytes_per_node = 100  # L-BFGS history
    backend = "scipy"

    def __init__(self, name: str, method: str = "lbfgsb", gradient: str = "exact", **params):
        if method not in METHODS:
            raise ValueError(f"unknown method {method!r}; valid: {', '.join(METHODS)}")
        if gradient not in ("exact", "detach"):
            raise ValueError(f"unknown gradient mode {gradient!r}; valid: exact, detach")
        super().__init__(name, method=method, gradient=gradient, **params)
        self.method, self.gradient = method, gradient
        self.scale, self.restarts = 1.0, 0

    def setup(self, problem):
        system = problem.linear_system()
        self.A, self.b = system.A, system.b
        self.matvecs = 0
        self.scale = 1.0  # Newton-CG restarts: the objective is divided by its value at the restart
        self.restarts = 0

    # Each function returns (value, gradient) so one residual serves both.
    def _exact(self, x):
        r = self.A @ x - self.b
        g = 2.0 * (self.A @ r)
        self.matvecs += 2
        return self.scale * float(r @ r), self.scale * g

    def _detach(self, x):
        r = self.A @ x - self.b  # = -(Lap_h u + f)
        self.matvecs += 1
        n = r.size
        return self.scale * float(r @ r) / n, (-2.0 * CENTRE * self.scale / n) * r

    def _hessp(self, x, p):
        self.matvecs += 2
        return (2.0 * self.scale) * (self.A @ (self.A @ p))

    def describe(self):
        return {"restarts": self.restarts} if self.method == "newton_cg" else {}

    def _options(self, maxiter):
        if self.method == "lbfgsb":
            return {"maxiter": maxiter, "maxfun": 1_000_000_000, "ftol": 0.0, "gtol": 0.0,
                    "maxcor": self.params.get("maxcor", 10)}
        if self.method == "nonlinear_cg":
            return {"maxiter": maxiter, "gtol": 0.0}
        return {"maxiter": maxiter, "xtol": 0.0}

    def solve(self, problem, monitor):
        self.matvecs = 0
        self.scale, self.restarts = 1.0, 0
        counter = IterationCounter(monitor)

        def callback(intermediate_result):  # SciPy passes the OptimizeResult to a parameter of this name
            counter(intermediate_result.x)

        fun = self._exact if self.gradient == "exact" else self._detach
        hessp = self._hessp if (self.method == "newton_cg" and self.gradient == "exact") else None
        x = np.zeros_like(self.b)
        while True:
            k_start = counter.k
            res = scipy.optimize.minimize(fun, x, jac=True, method=METHODS[self.method], hessp=hessp,
                                          callback=callback, options=self._options(monitor.max_iters - counter.k))
            self.exit_message = f"scipy {METHODS[self.method]} stopped by itself: {res.message}"
            if self.method != "newton_cg":
                return res.x
            progressed = counter.k > k_start and not np.array_equal(res.x, x)
            x = res.x
            if not progressed:
                if self.restarts:
                    self.exit_message += f" (after {self.restarts} restarts; the last made no progress)"
                return x
            # Restart from the last iterate with the objective scaled to 1 there (see module docstring).
            self.scale = 1.0
            value, _ = fun(x)
            if not value > 0:
                return x
            self.scale = 1.0 / value
            self.restarts += 1
