"""Krylov solvers from scipy.sparse.linalg on the SPD interior system.

Tolerances are zero, except CG's breakdown guard (see ATOL), so a solver never
stops on its own test before the harness budget ends (SciPy's stop rules are
relative to ||b|| and some test a recursive residual). Operator applications
are counted by wrapping A in a LinearOperator that costs what SciPy's own
wrapper costs. Iterations are counted in one unit for every method: one
Krylov step (one new basis vector / one product with A); GMRES's restart
cycles are split so that its rows count inner iterations too.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from solvers.base import IterationCounter, Solver

METHODS = ("cg", "minres", "gmres", "bicgstab", "gcrotmk", "lgmres", "lsmr")
PRECONDITIONERS = (None, "jacobi", "ilu", "pyamg_sa", "pyamg_rs")
# CG's breakdown guard, not a convergence test. SciPy's CG stops when its *recursive* residual
# ||r_k|| < max(atol, rtol ||b||); we pass rtol=0 and atol=1e-150. The recursive residual keeps
# shrinking geometrically after the true residual ||b - A x_k|| has reached its float64 floor
# (~1e-15 sqrt(N) here), so this test fires only hundreds of iterations after that floor (or
# never, within the budget). With atol=0 the recursive residual would underflow to 0, r.z = 0,
# and CG would divide 0 by 0 and return NaN; 1e-150 ~ sqrt(smallest normal float) stops it
# just before. When it fires, the job is ``stalled`` and says so.
ATOL = 1e-150


class CountingOperator(spla.LinearOperator):
    """A sparse matrix as a LinearOperator that counts its applications (A and A^T)."""

    def __init__(self, A: sp.spmatrix):
        super().__init__(dtype=A.dtype, shape=A.shape)
        self.A = A
        self.count = 0

    def _matvec(self, x):
        self.count += 1
        return self.A @ x

    def _rmatvec(self, x):
        self.count += 1
        return self.A.T @ x


def make_preconditioner(kind: str | None, A: sp.csr_matrix, options: dict) -> spla.LinearOperator | None:
    """Build M ~ A^-1 (setup work, off the solve clock)."""
    if kind is None:
        return None
    if kind == "jacobi":
        inv_diag = 1.0 / A.diagonal()
        return spla.LinearOperator(A.shape, matvec=lambda x: inv_diag * x, dtype=A.dtype)
    if kind == "ilu":
        # Natural ordering and no pivoting keep the incomplete factors close to symmetric, which
        # CG needs; a fill cap that truncates the factors (fill_factor=10 at n>=256) made CG stall.
        ilu = spla.spilu(A.tocsc(), drop_tol=options.get("ilu_drop_tol", 1e-3),
                         fill_factor=options.get("ilu_fill_factor", 20),
                         permc_spec=options.get("ilu_permc_spec", "NATURAL"),
                         diag_pivot_thresh=options.get("ilu_diag_pivot_thresh", 0.0))
        return spla.LinearOperator(A.shape, matvec=ilu.solve, dtype=A.dtype)
    if kind in ("pyamg_sa", "pyamg_rs"):
        from solvers.multigrid import build_hierarchy

        return build_hierarchy(kind.removeprefix("pyamg_"), A).aspreconditioner(cycle=options.get("cycle", "V"))
    raise ValueError(f"unknown preconditioner {kind!r}; valid: {', '.join(str(p) for p in PRECONDITIONERS)}")


class Krylov(Solver):
    """``method`` in METHODS, optional ``preconditioner`` (jacobi, ilu, pyamg_sa, pyamg_rs)."""

    family = "krylov"
    bytes_per_node = 100  # SciPy work vectors (CG ~5, GMRES ~restart)
    AMG = ("pyamg_sa", "pyamg_rs")
    backend = "scipy"

    def __init__(self, name: str, method: str = "cg", preconditioner: str | None = None,
                 restart: int = 20, **params):
        if method not in METHODS:
            raise ValueError(f"unknown Krylov method {method!r}; valid: {', '.join(METHODS)}")
        if preconditioner not in PRECONDITIONERS:
            raise ValueError(f"unknown preconditioner {preconditioner!r}; valid: "
                             f"{', '.join(str(p) for p in PRECONDITIONERS)}")
        if method == "lsmr" and preconditioner:
            raise ValueError("lsmr takes no preconditioner here (set solver.preconditioner=null)")
        super().__init__(name, method=method, preconditioner=preconditioner, restart=restart, **params)
        self.method, self.preconditioner, self.restart = method, preconditioner, restart
        self.callbacks = method != "lsmr"  # lsmr has no callback: re-run strategy
        self.family = self.family_of(self.params)

    @classmethod
    def family_of(cls, params):
        # AMG-preconditioned CG belongs with the multigrid methods
        return "multigrid" if params.get("preconditioner") in cls.AMG else cls.family

    @classmethod
    def memory_per_node(cls, params):
        base = 150 if params.get("preconditioner") in cls.AMG else cls.bytes_per_node  # AMG hierarchy, as PyAMG
        extra = 1000 if params.get("preconditioner") == "ilu" else 0  # ILU's factors: measured 1.4-1.5 kB/node
        extra += 150 if params.get("method") in ("lgmres", "gcrotmk") else 0  # their kept vectors
        return base + extra

    def setup(self, problem):
        system = problem.linear_system()
        self.op = CountingOperator(system.A)
        self.b = system.b
        self.M = make_preconditioner(self.preconditioner, system.A, self.params)
        # Operator applications hidden inside an AMG cycle cannot be counted honestly.
        self.matvecs = None if self.preconditioner in self.AMG else 0

    def _count(self):
        if self.matvecs is not None:
            self.matvecs = self.op.count

    def _gmres(self, monitor):
        """Restarted GMRES(restart); rows count inner iterations, like every other Krylov solver.

        SciPy exposes x once per restart cycle (callback_type="x"). A cycle applies A once per
        inner iteration plus once for the residual at its end (and once more at the start of a
        call from a nonzero x0), so the counting operator gives each cycle's inner iterations
        exactly, also when a cycle ends early. The first call runs whole cycles; if
        ``max_iters`` is not a multiple of ``restart``, a second call runs one shortened cycle,
        so that the last row is exactly ``max_iters`` inner iterations.
        """
        x = np.zeros_like(self.b)
        state = {"k": 0, "seen": 0, "start": 0}  # iterations; applications accounted for; initial residual

        def cycle_callback(xk):
            inner = self.op.count - state["seen"] - 1 - state["start"]
            state.update(k=state["k"] + inner, seen=self.op.count, start=0)
            self._count()
            monitor(state["k"], xk)

        full, rest = divmod(monitor.max_iters, self.restart)
        for cycles, length in ((full, self.restart), (1 if rest else 0, rest)):
            if cycles == 0:
                continue
            state["start"] = 1 if x.any() else 0  # SciPy's initial r = b - A x0
            x, _ = spla.gmres(self.op, self.b, x0=x, rtol=0.0, atol=0.0, restart=length, maxiter=cycles,
                              M=self.M, callback=cycle_callback, callback_type="x")
        self.exit_message = f"gmres stopped by itself after {state['k']} inner iterations"
        return x

    def solve(self, problem, monitor):
        self.op.count = 0
        x0 = np.zeros_like(self.b)
        maxiter = monitor.max_iters
        callback = IterationCounter(monitor, before=self._count)

        m = self.method
        if m == "lsmr":
            out = spla.lsmr(self.op, self.b, atol=0.0, btol=0.0, conlim=0.0, maxiter=maxiter, x0=x0)
            self.exit_message = f"lsmr stopped by itself after {out[2]} iterations (istop={out[1]})"
            self._count()
            monitor(int(out[2]), out[0])
            return out[0]
        if m == "gmres":
            return self._gmres(monitor)
        if m == "minres":
            x, info = spla.minres(self.op, self.b, x0=x0, rtol=0.0, maxiter=maxiter, M=self.M, callback=callback)
            self.exit_message = f"minres stopped by itself (info={info}): its own convergence tests at rtol=0"
            return x
        solver_fn = {"cg": spla.cg, "bicgstab": spla.bicgstab, "gcrotmk": spla.gcrotmk, "lgmres": spla.lgmres}[m]
        atol = ATOL if m == "cg" else 0.0  # gcrotmk blows up after converging with any atol > 0
        x, info = solver_fn(self.op, self.b, x0=x0, rtol=0.0, atol=atol, maxiter=maxiter, M=self.M,
                            callback=callback)
        self.exit_message = f"{m} stopped by itself (info={info})" + (
            f": its recursive residual fell below {atol:g}" if atol else ": breakdown after convergence")
        self._count()
        return x
