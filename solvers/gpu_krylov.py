"""Krylov solvers from cupyx.scipy.sparse.linalg (CuPy) on the GPU: the twins of solvers/krylov.py.

Same interior system (``problem.linear_system()``), same never-stop-early
configuration (tolerances zero, the harness owns the budget), same callback
and re-run strategies, same matvec counting. Only the arrays live on the GPU.

- cg, minres: one callback per iteration with x (CuPy array; the monitor copies
  it to the host only at checkpoints, with the solve clock stopped).
- gmres: one callback per restart cycle (CuPy calls back with x once per
  cycle, plus once with x0 before the first); k counts inner iterations, and a
  shortened last cycle makes the last row exactly ``max_iters``.
- lsmr: no callback in CuPy: ``callbacks = False``, the re-run strategy.

Tolerances: CuPy 14 takes keyword-only ``rtol``/``atol`` for cg and gmres,
``tol`` for minres; CuPy 13 took ``tol`` everywhere. The keywords are chosen
by inspecting the installed signature (``tolerance_kwargs``).

Matvecs are counted with a LinearOperator that calls the same cuSPARSE SpMV
closure CuPy builds for a CSR matrix (``_make_fast_matvec``, descriptors and
buffer made once, in setup), plus one Python integer increment. Passing the
operator instead of the matrix disables CuPy's own fast path, so the wrapper
re-creates it: the extra cost per matvec is one Python call (well under a
microsecond), against several kernel launches per iteration. If that private
helper is missing in the installed CuPy the wrapper falls back to ``A @ x``
(descriptors re-created per call: a few microseconds); ``matvec_path`` says
which. ``count_matvecs: false`` passes the bare CSR matrix to CuPy (its own
path) and records matvecs as null: run both on a GPU to measure the difference.

Timing: the CSR upload (and with it the CUDA context) happens in ``setup``; cuBLAS/cuSPARSE
handles, kernel compilation and the memory pool are paid by the job's untimed warm-up solve
(``harness.runner.warm_up``), the same for every solver; all off the solve clock.
``sync()`` synchronises the device; the monitor calls it before every clock read.

Nothing here imports CuPy at module import time: on a machine without CuPy or
without a GPU, ``available()`` returns one line naming the fix.
"""

from __future__ import annotations

import inspect
import logging
from typing import Any

from solvers.base import Solver
from solvers.krylov import ATOL

log = logging.getLogger("harness")

METHODS = ("cg", "minres", "gmres", "lsmr")
INSTALL_HINT = "pip install -e '.[gpu]'"
LSMR_ISTOP = {0: "x = 0 solves the system", 1: "converged by atol/btol", 2: "least-squares converged by atol",
              3: "cond(A) estimate above conlim", 4: "converged to machine precision (atol = btol = eps)",
              5: "least-squares converged to machine precision", 6: "cond(A) estimate above 1/eps",
              7: "iteration limit"}


def cupy_unavailable_reason() -> str | None:
    """None if CuPy imports and sees a CUDA device, else one line saying why (and the fix)."""
    try:
        import cupy
    except ImportError:
        return f"cupy not installed: {INSTALL_HINT}"
    except Exception as exc:  # a broken install (wrong CUDA wheel, missing libraries)
        return f"cupy failed to import ({type(exc).__name__}: {exc}); reinstall the gpu extra: {INSTALL_HINT}"
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # CUDARuntimeError: no driver, no device, driver too old
        return f"no CUDA device visible to cupy ({type(exc).__name__}: {exc}); run on a GPU machine"
    if count < 1:
        return "no CUDA device visible to cupy (CUDA_VISIBLE_DEVICES empty?); run on a GPU machine"
    return None


def tolerance_kwargs(fn, **names: float) -> dict[str, float]:
    """Zero tolerances under the keyword names ``fn`` accepts.

    ``rtol`` falls back to ``tol`` (CuPy 13, and minres in CuPy 14); other names
    (``atol``, ``btol``, ``conlim``) are passed only where the signature has them.
    """
    params = inspect.signature(fn).parameters
    out: dict[str, float] = {}
    for name, value in names.items():
        if name in params:
            out[name] = value
        elif name == "rtol" and "tol" in params:
            out["tol"] = value
    return out


def _fast_matvec(A):
    """CuPy's own cuSPARSE SpMV closure for CSR ``A`` (private API), or None."""
    try:
        from cupyx.scipy.sparse.linalg._iterative import _make_fast_matvec
    except ImportError:
        return None
    try:
        return _make_fast_matvec(A)
    except Exception:  # signature or internals changed: use the public path
        return None


def counting_operator(A, AT=None):
    """``A`` (cupyx CSR) as a cupyx LinearOperator that counts A and A^T applications.

    Built in setup. ``AT`` is A^T as its own CSR matrix (for lsmr), so the adjoint is a plain
    SpMV too. With an adjoint, both use the public ``csr.dot``: on an H200 (CuPy 14.2) lsmr
    through two of CuPy's fast SpMV closures failed with cudaErrorInvalidAddressSpace.
    """
    from cupyx.scipy.sparse.linalg import LinearOperator

    fast = _fast_matvec(A) if AT is None else None
    apply = fast or A.dot
    apply_t = AT.dot if AT is not None else None

    class CountingOperator(LinearOperator):
        def __init__(self):
            super().__init__(dtype=A.dtype, shape=A.shape)
            self.count = 0
            self.path = "cusparse-spmv (CuPy's CSR fast path)" if fast else "csr.dot (public API)"

        def _matvec(self, x):
            self.count += 1
            return apply(x)

        def _rmatvec(self, x):
            if apply_t is None:
                raise NotImplementedError("A^T was not uploaded for this method")
            self.count += 1
            return apply_t(x)

    return CountingOperator()


class CupyKrylov(Solver):
    """``method`` in cg, minres, gmres, lsmr from cupyx.scipy.sparse.linalg, on the GPU."""

    family = "krylov"
    backend = "cupy"
    bytes_per_node = 100  # host side: the assembly and the metrics, as the SciPy twins

    def __init__(self, name: str, method: str = "cg", restart: int = 20, count_matvecs: bool = True,
                 device: str = "cuda", **params: Any):
        if method not in METHODS:
            raise ValueError(f"unknown CuPy Krylov method {method!r}; valid: {', '.join(METHODS)}")
        if not (isinstance(restart, int) and restart >= 1):
            raise ValueError(f"solver.restart must be a positive integer (got {restart!r})")
        if device != "cuda":
            raise ValueError(f"CuPy solvers run on the current CUDA device: set solver.device=cuda "
                             f"(got {device!r}; pick a GPU with CUDA_VISIBLE_DEVICES)")
        super().__init__(name, device=device, method=method, restart=restart, count_matvecs=count_matvecs,
                         **params)
        self.method, self.restart, self.count_matvecs = method, restart, bool(count_matvecs)
        self.callbacks = method != "lsmr"  # CuPy's lsmr has no callback: re-run strategy
        self.matvec_path: str | None = None
        self._cp = None
        self._sync = None

    # --- availability -------------------------------------------------------------
    def available(self) -> str | None:
        return cupy_unavailable_reason()

    # --- setup (off the solve clock) ----------------------------------------------
    def setup(self, problem) -> None:
        import cupy
        import cupyx.scipy.sparse as csp
        import cupyx.scipy.sparse.linalg as cla

        self._cp, self._la = cupy, cla
        self._sync = cupy.cuda.runtime.deviceSynchronize
        system = problem.linear_system()
        self.A = csp.csr_matrix(system.A)  # host -> device upload
        self.b = cupy.asarray(system.b, dtype=cupy.float64)
        AT = csp.csr_matrix(system.A.T.tocsr()) if self.method == "lsmr" else None
        if self.count_matvecs:
            self.op = counting_operator(self.A, AT)
            self.matvec_path = self.op.path
        else:
            self.op = None
            self.matvec_path = "CuPy's own (matrix passed directly; matvecs not counted)"
        self.matvecs = 0 if self.count_matvecs else None
        self._operator = self.op if self.op is not None else self.A
        self.sync()  # the upload above created the CUDA context: charged to setup
        log.debug("%s: matvec path %s", self.name, self.matvec_path)

    # --- solve (timed) ------------------------------------------------------------
    def sync(self) -> None:
        if self._sync is not None:  # the whole device: cuBLAS/cuSPARSE may use their own streams
            self._sync()

    def _count(self) -> None:
        if self.op is not None:
            self.matvecs = self.op.count

    def solve(self, problem, monitor):
        if self.op is not None:
            self.op.count = 0
        return self._solve_iters(monitor.max_iters, monitor)

    def _solve_iters(self, maxiter: int, monitor):
        cp, la, A = self._cp, self._la, self._operator
        x0 = cp.zeros_like(self.b)
        k = 0

        def callback(xk):
            nonlocal k
            k += 1
            self._count()
            monitor(k, xk)

        m = self.method
        if m == "lsmr":
            kw = tolerance_kwargs(la.lsmr, atol=0.0, btol=0.0, conlim=0.0)
            out = la.lsmr(A, self.b, x0=x0, maxiter=maxiter, **kw)
            istop, itn = int(out[1]), int(out[2])
            if itn < maxiter:
                self.exit_message = (f"CuPy lsmr stopped by itself after {itn} of {maxiter} iterations "
                                     f"(istop={istop}: {LSMR_ISTOP.get(istop, 'unknown reason')})")
            self._count()
            monitor(itn, out[0])
            return out[0]
        if m == "gmres":
            return self._gmres(maxiter, monitor, x0)
        fn = la.cg if m == "cg" else la.minres
        # The same negligible atol as SciPy's CG twin: it stops CG cleanly after convergence
        # instead of dividing 0 by 0 once the recursive residual underflows (see solvers.krylov).
        kw = tolerance_kwargs(fn, rtol=0.0, atol=ATOL if m == "cg" else 0.0)
        x, info = fn(A, self.b, x0=x0, maxiter=maxiter, callback=callback, **kw)
        if k < maxiter:
            self.exit_message = f"CuPy {m} stopped by itself after {k} iterations (info={info})" + (
                f": its recursive residual fell below atol={ATOL:g}" if m == "cg" else
                ": its own convergence tests at zero tolerance")
        self._count()
        return x

    def _gmres(self, maxiter: int, monitor, x):
        """Restarted GMRES(restart); rows count inner iterations, like every other Krylov solver.

        CuPy's ``maxiter`` counts inner iterations; it runs whole cycles and calls back with x
        before the first cycle (x0: skipped) and after each one. If ``maxiter`` is not a
        multiple of ``restart``, a second call runs one shortened cycle from the last x, so the
        last row is exactly ``maxiter`` inner iterations (as in SciPy's twin, solvers.krylov).
        """
        kw = tolerance_kwargs(self._la.gmres, rtol=0.0, atol=0.0)
        state = {"k": 0, "length": self.restart, "fresh": True}

        def cycle_callback(xk):
            if state["fresh"]:  # this call's x0
                state["fresh"] = False
                return
            state["k"] += state["length"]
            self._count()
            monitor(state["k"], xk)

        full, rest = divmod(maxiter, self.restart)
        for cycles, length in ((full, self.restart), (1 if rest else 0, rest)):
            if cycles:
                state.update(length=length, fresh=True)
                x, _ = self._la.gmres(self._operator, self.b, x0=x, restart=length, maxiter=cycles * length,
                                      callback=cycle_callback, callback_type="x", **kw)
        if state["k"] < maxiter:
            self.exit_message = f"CuPy gmres stopped by itself after {state['k']} inner iterations"
        self._count()
        return x

    # --- teardown -----------------------------------------------------------------
    def teardown(self) -> None:
        cp = self._cp
        for attr in ("op", "_operator", "A", "b"):
            if hasattr(self, attr):
                setattr(self, attr, None)
        if cp is not None:
            try:
                cp.cuda.Device().synchronize()
                cp.get_default_memory_pool().free_all_blocks()
            except Exception as exc:  # never let cleanup end a sweep
                log.warning("%s: releasing GPU memory failed: %s", self.name, exc)

    def describe(self) -> dict[str, Any]:
        return {**self.params, "matvec_path": self.matvec_path}
