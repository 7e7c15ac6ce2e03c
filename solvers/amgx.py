"""NVIDIA AMGX through pyamgx: algebraic multigrid (and AMG-preconditioned Krylov) on the GPU.
Over 300 lines: the AMGX ctypes binding, its resource lifetime and the solver that uses them belong together.

The AMGX JSON configuration is the solver parameter ``config`` (a dict with
``config_version: 2`` and a ``solver`` dict), one YAML per named AMGX config
(conf/solver/amgx_*.yaml). pyamgx is not on PyPI: install AMGX and pyamgx by
their own projects' instructions (docs/GPU.md says what the harness needs from
them); without them ``available()`` says so and the job is recorded as
``unavailable``.

Re-run strategy (``callbacks = False``). AMGX keeps a residual history but has
no per-iteration callback and no per-iteration timestamps, and ``max_iters``
is read once, when an AMGX solver object is created (the C API cannot change
it afterwards). So each checkpoint k is a fresh solve by its own AMGX solver
object configured with ``max_iters = k``, from a zero initial guess. To keep
solver creation and hierarchy setup off the solve clock, ``setup`` builds one
solver (config + ``solver.setup(A)``) for every re-run of this job's plan,
which the harness hands over before setup (``Solver.set_rerun_plan``; about 20
hierarchies for a cap of a few hundred). The cost is documented, not hidden:
``setup_s`` holds all of them; the log line and ``describe()`` give the count
and the time of the first (one hierarchy). A solve with an iteration count
outside the plan (only when ``solve`` is driven without the harness) builds its
solver inside the timed solve, with a warning.

Never stopping early: every scope's ``monitor_residual`` (and so AMGX's
convergence test) is off, ``tolerance`` is 0, so a solve runs exactly
``max_iters`` iterations; printing and timing options are off so AMGX writes
nothing to stdout.

Resources, matrix and vectors are created once per job in ``setup`` and always
released in ``teardown`` in the order of AMGX's own C example (amgx_capi.c):
solvers (they hold A), x, b, A, resources, configs. ``AMGX_initialize`` and
``AMGX_finalize`` are process-global: the first AMGX job of a process
initialises the library once and ``atexit`` finalises it, after every job's
teardown; jobs in between (a sweep runs in one process) reuse it.
"""

from __future__ import annotations

import atexit
import copy
import ctypes
import logging
import time
from typing import Any

import numpy as np

from solvers.base import Solver

log = logging.getLogger("harness")

INSTALL_HINT = "install AMGX and pyamgx by their own projects' instructions, see docs/GPU.md"
MODE = "dDDI"  # device, double matrix, double vectors, int32 indices
# Per-scope keys forced so that a solve runs exactly max_iters and prints nothing.
QUIET = {"monitor_residual": 0, "store_res_history": 0, "print_solve_stats": 0, "print_grid_stats": 0,
         "print_vis_data": 0, "obtain_timings": 0, "solver_verbose": 0}

_LIBRARY = {"initialized": False}  # AMGX_initialize is global to the process (see module docstring)


def _import_pyamgx():
    import numpy  # noqa: F401  (pyamgx's extension expects NumPy loaded first)
    import pyamgx

    return pyamgx


def amgx_unavailable_reason() -> str | None:
    """None if pyamgx imports and a CUDA device is visible, else one line with the fix."""
    try:
        _import_pyamgx()
    except ModuleNotFoundError as exc:
        if exc.name == "pyamgx":
            return f"pyamgx not installed: {INSTALL_HINT}"
        return f"pyamgx cannot be imported ({exc}): {INSTALL_HINT}"
    except (ImportError, OSError) as exc:  # the extension is there, libamgxsh.so is not found
        return (f"pyamgx installed but AMGX's library cannot be loaded ({exc}): add AMGX's lib folder to "
                f"LD_LIBRARY_PATH, see docs/GPU.md")
    count = cuda_device_count()
    if count is None:
        return "cannot query CUDA devices (libcudart not loaded and cupy missing); run on a GPU machine"
    if count < 1:
        return "no CUDA device visible (CUDA_VISIBLE_DEVICES empty, or no GPU); run on a GPU machine"
    return None


# --- the CUDA runtime, without requiring CuPy -----------------------------------------
def _loaded_cudart():
    """The CUDA runtime library (the one mapped into this process if any), or None."""
    try:
        with open("/proc/self/maps") as fh:
            paths = {line.split()[-1] for line in fh if "libcudart" in line}
    except OSError:
        return None
    # AMGX may link the runtime statically; then try the shared runtime by name (any copy of the
    # runtime synchronises the same primary context).
    for path in [*sorted(paths), "libcudart.so", "libcudart.so.12", "libcudart.so.13"]:
        try:
            return ctypes.CDLL(path)
        except OSError:
            continue
    return None


def cuda_device_count() -> int | None:
    try:
        import cupy

        return int(cupy.cuda.runtime.getDeviceCount())
    except ImportError:
        pass
    except Exception:
        return 0
    lib = _loaded_cudart()
    if lib is None:
        return None
    n = ctypes.c_int(0)
    return n.value if lib.cudaGetDeviceCount(ctypes.byref(n)) == 0 else 0


def device_synchronizer():
    """A function that blocks until the current CUDA device is idle."""
    try:
        import cupy

        return cupy.cuda.runtime.deviceSynchronize
    except ImportError:
        pass
    lib = _loaded_cudart()
    if lib is None:
        raise RuntimeError("cannot synchronise the GPU: neither cupy nor a loaded libcudart found")
    return lib.cudaDeviceSynchronize


# --- configuration ----------------------------------------------------------------------
def _scopes(d: dict):
    """Every solver scope in an AMGX config-version-2 solver dict (nested solver dicts)."""
    yield d
    for v in d.values():
        if isinstance(v, dict) and "solver" in v:
            yield from _scopes(v)


def amgx_config(config: dict, max_iters: int) -> dict:
    """The user's AMGX config with max_iters=k at the outer scope, tolerance 0 and no
    convergence monitoring or printing anywhere (runs exactly k iterations, silently)."""
    cfg = copy.deepcopy(config)
    cfg.setdefault("config_version", 2)
    for key, value in QUIET.items():  # keys at the root apply to the default scope
        if key in cfg:
            cfg[key] = value
    outer = cfg["solver"]
    for scope in _scopes(outer):
        for key, value in QUIET.items():
            if key in scope or scope is outer:
                scope[key] = value
    outer["max_iters"] = int(max_iters)
    outer["tolerance"] = 0.0
    return cfg


def check_config(config: Any) -> dict:
    if not isinstance(config, dict) or not isinstance(config.get("solver"), dict):
        raise ValueError("solver.config must be an AMGX JSON config: a mapping with config_version: 2 "
                         "and a 'solver' mapping (see conf/solver/amgx_pcg_aggregation_jacobi.yaml)")
    if config.get("config_version", 2) != 2:
        raise ValueError(f"solver.config.config_version must be 2 (got {config.get('config_version')!r})")
    return config


class _DeviceField:
    """The AMGX solution vector as seen by the monitor: downloaded only when ``get()``
    is called, i.e. at checkpoints, with the solve clock stopped."""

    def __init__(self, vec, n: int):
        self.vec, self.n = vec, n

    def get(self) -> np.ndarray:
        out = np.empty(self.n, dtype=np.float64)
        self.vec.download(out)
        return out


class AMGX(Solver):
    """One named AMGX configuration (``config``), re-run per checkpoint."""

    family = "multigrid"
    bytes_per_node = 150  # host side: as PyAMG's hierarchy (the GPU's memory is not estimated)
    backend = "amgx"
    callbacks = False

    def __init__(self, name: str, config: dict | None = None, iteration_cap: int = 200, device: str = "cuda",
                 **params: Any):
        config = check_config(config)
        if isinstance(iteration_cap, bool) or not isinstance(iteration_cap, int) or iteration_cap < 1:
            raise ValueError(f"solver.iteration_cap must be a positive integer (got {iteration_cap!r})")
        if device != "cuda":
            raise ValueError(f"AMGX runs on the current CUDA device: set solver.device=cuda (got {device!r})")
        super().__init__(name, device=device, config=config, iteration_cap=iteration_cap, **params)
        self.config = config
        # The runner re-runs at checkpoints(min(max_iterations, budget.max_iters)).
        self.max_iterations = iteration_cap
        self.iteration_cap = iteration_cap
        self._handles: dict[str, Any] = {}
        self._solvers: dict[int, tuple[Any, Any]] = {}  # k -> (pyamgx.Solver, pyamgx.Config)
        self._sync = None
        self._zero_guess = True
        self.built_on_clock: list[int] = []
        self.hierarchy_setup_s: float | None = None

    def available(self) -> str | None:
        return amgx_unavailable_reason()

    # --- setup (off the solve clock) ---------------------------------------------------
    def setup(self, problem) -> None:
        pyamgx = _import_pyamgx()
        self._pyamgx = pyamgx
        if not _LIBRARY["initialized"]:
            pyamgx.initialize()
            _LIBRARY["initialized"] = True
            atexit.register(_finalize, pyamgx)
        self._sync = device_synchronizer()
        system = problem.linear_system()
        A = system.A.tocsr()
        self.n = A.shape[0]
        h = self._handles
        h["config"] = pyamgx.Config().create_from_dict(amgx_config(self.config, self.iteration_cap))
        rsc = pyamgx.Resources().create_simple(h["config"])
        h["resources"] = rsc
        err = getattr(rsc, "_err", 0)
        if err:
            raise RuntimeError(f"AMGX_resources_create_simple failed: {pyamgx.get_error_string(err)}")
        h["A"] = pyamgx.Matrix().create(rsc, mode=MODE)
        h["b"] = pyamgx.Vector().create(rsc, mode=MODE)
        h["x"] = pyamgx.Vector().create(rsc, mode=MODE)
        h["A"].upload(np.ascontiguousarray(A.indptr, dtype=np.int32),
                      np.ascontiguousarray(A.indices, dtype=np.int32),
                      np.ascontiguousarray(A.data, dtype=np.float64))
        h["b"].upload(np.ascontiguousarray(system.b, dtype=np.float64))
        self._zeros = np.zeros(self.n)
        h["x"].upload(self._zeros)
        self.field = _DeviceField(h["x"], self.n)
        # Exactly this job's re-runs (the harness's plan); without a plan, the cap only.
        ks = sorted(set(self.rerun_plan or [self.iteration_cap]))
        t0 = time.perf_counter()
        for i, k in enumerate(ks):
            self._build(k)
            if i == 0:
                self._sync()
                self.hierarchy_setup_s = time.perf_counter() - t0
                # Warm-up: one solve runs every kernel once (off the clock), and tells
                # whether this pyamgx has solve(..., zero_initial_guess=).
                try:
                    self._solvers[k][0].solve(h["b"], h["x"], zero_initial_guess=True)
                except TypeError:
                    self._zero_guess = False
                    self._solve_from_zero(self._solvers[k][0])
        self._sync()
        log.info("%s: built %d AMGX solvers (one per planned re-run, up to %d iterations) in %.2f s; "
                 "one solver + hierarchy setup: %.3f s", self.name, len(ks), ks[-1],
                 time.perf_counter() - t0, self.hierarchy_setup_s or float("nan"))

    def _build(self, k: int) -> None:
        pyamgx = self._pyamgx
        cfg = pyamgx.Config().create_from_dict(amgx_config(self.config, k))
        solver = pyamgx.Solver()
        try:
            solver.create(self._handles["resources"], cfg, mode=MODE)
        except Exception:
            cfg.destroy()
            raise
        self._solvers[k] = (solver, cfg)  # registered before setup so teardown releases it on failure
        solver.setup(self._handles["A"])

    # --- solve (timed) -----------------------------------------------------------------
    def sync(self) -> None:
        if self._sync is not None:
            self._sync()

    def solve(self, problem, monitor):
        k = monitor.max_iters
        if k not in self._solvers:  # not prebuilt: built on the clock (see module docstring)
            log.warning("%s: no prebuilt AMGX solver for %d iterations (not in the re-run plan); "
                        "building it inside the timed solve", self.name, k)
            self.built_on_clock.append(k)
            self._build(k)
        self._solve_from_zero(self._solvers[k][0])
        monitor(k, self.field)
        return self.field

    def _solve_from_zero(self, solver) -> None:
        """Every solve starts from x0 = 0 on the unknowns (the problem's initial field)."""
        h = self._handles
        if self._zero_guess:
            solver.solve(h["b"], h["x"], zero_initial_guess=True)
        else:  # older pyamgx: upload zeros (an H2D copy of n doubles, on the clock)
            h["x"].upload(self._zeros)
            solver.solve(h["b"], h["x"])

    # --- teardown (always) ---------------------------------------------------------------
    def teardown(self) -> None:
        h = self._handles
        order = [(f"solver(max_iters={k})", s) for k, (s, _) in self._solvers.items()]
        order += [(name, h.get(name)) for name in ("x", "b", "A", "resources")]
        order += [(f"config(max_iters={k})", c) for k, (_, c) in self._solvers.items()]
        order += [("config", h.get("config"))]
        failed = []
        for label, obj in order:
            if obj is None:
                continue
            try:
                obj.destroy()
            except Exception as exc:  # keep releasing the rest; never end a sweep here
                failed.append(f"{label}: {type(exc).__name__}: {exc}")
        self._solvers.clear()
        h.clear()
        self.field = None
        if failed:
            log.warning("%s: AMGX teardown: %s", self.name, "; ".join(failed))

    def describe(self) -> dict[str, Any]:
        return {"prebuilt_solvers": len(self._solvers),
                "hierarchy_setup_s": self.hierarchy_setup_s, "built_on_clock": list(self.built_on_clock)}


def _finalize(pyamgx) -> None:
    """atexit: finalise AMGX once, after every job of the process has released its handles."""
    if _LIBRARY["initialized"]:
        try:
            pyamgx.finalize()
        finally:
            _LIBRARY["initialized"] = False
