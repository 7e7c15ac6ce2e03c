"""GPU backends: CuPy Krylov, AMGX (pyamgx), torch on cuda.

Three kinds of test:
- CPU-only machines: every GPU solver reports why it is unavailable, in one line,
  and the harness records ``unavailable`` (the sweep goes on).
- Everywhere: the harness plumbing of the GPU solvers (tolerance keywords, callbacks,
  matvec counting, AMGX per-checkpoint solvers and teardown order, initialise once)
  run against small NumPy/SciPy stand-ins for ``cupy`` and ``pyamgx``. They check
  our code, not CuPy's or AMGX's behaviour.
- GPU machines only (skipped elsewhere, with the reason): convergence on the real
  libraries, and GPU solvers run through the forked job path every sweep uses.

This process never touches CUDA itself: the skip reasons are asked in a subprocess and
every GPU run, and every CPU reference run beside it, happens in a forked child
(``in_child``; a CPU torch optimiser's step asks torch whether CUDA is available, which
initialises the driver). A CUDA context does not survive ``fork``, so a pytest process
that initialised CUDA could not run later forking tests. The GPU tests run only with
``HARNESS_GPU_TESTS=1`` (tests/conftest.py hides GPUs from the CPU suite otherwise).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import types
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from harness import guard
from harness.guard import run_isolated
from harness.monitor import Budget, checkpoints
from harness.results import load
from harness.runner import RERUN_PER_DECADE, run_solver
from problems import make_problem
from solvers import amgx as amgx_mod
from solvers.amgx import amgx_config
from solvers.gpu_krylov import tolerance_kwargs

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"
CUPY_SOLVERS = ["cupy_cg", "cupy_minres", "cupy_gmres", "cupy_lsmr"]
AMGX_SOLVERS = sorted(p.stem for p in (CONF / "solver").glob("amgx_*.yaml"))
TORCH_CUDA_SOLVERS = sorted(p.stem for p in (CONF / "solver").glob("*_cuda.yaml"))

PROBE = """
import json
from solvers.amgx import amgx_unavailable_reason
from solvers.base import cuda_unavailable_reason
from solvers.gpu_krylov import cupy_unavailable_reason
print(json.dumps([cupy_unavailable_reason(), amgx_unavailable_reason(), cuda_unavailable_reason("cuda")]))
"""


def _unavailable_reasons() -> list[str | None]:
    """Why each GPU backend cannot run here, asked in a subprocess (asking initialises CUDA)."""
    out = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, timeout=300)
    if out.returncode != 0:
        raise RuntimeError(f"probing the GPU backends failed: {out.stderr.strip()[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


NO_CUPY_GPU, NO_AMGX, NO_TORCH_CUDA = _unavailable_reasons()
OPT_IN = ("" if os.environ.get("HARNESS_GPU_TESTS") == "1" or shutil.which("nvidia-smi") is None
          else " (on a GPU machine the GPU tests run only with HARNESS_GPU_TESTS=1)")


def in_child(fn):
    """``fn()``'s (picklable) value, computed in a forked child, so that CUDA lives and dies there."""
    out = run_isolated(lambda emit: fn(), timeout_s=600)
    assert out.kind == "done", out.message
    return out.value


def build(name: str, *overrides: str):
    with initialize_config_dir(version_base="1.3", config_dir=str(CONF)):
        cfg = compose("config", overrides=[f"solver={name}", *overrides])
    return instantiate(cfg.solver, _convert_="all")


def test_gpu_configs_exist():
    assert len(AMGX_SOLVERS) >= 5 and "adam_cuda" in TORCH_CUDA_SOLVERS
    for name in CUPY_SOLVERS + AMGX_SOLVERS + TORCH_CUDA_SOLVERS:
        s = build(name)
        assert s.name == name and s.device == "cuda"


def test_gpu_modules_import_lazily():
    code = ("import sys, solvers.gpu_krylov, solvers.amgx; "
            "assert 'cupy' not in sys.modules and 'pyamgx' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


# --- CPU-only machines ----------------------------------------------------------------
@pytest.mark.skipif(not NO_CUPY_GPU, reason="a GPU with CuPy is present")
@pytest.mark.parametrize("name", CUPY_SOLVERS)
def test_cupy_solvers_unavailable_on_cpu(name):
    _assert_unavailable(name)


@pytest.mark.skipif(not NO_AMGX, reason="pyamgx and a GPU are present")
@pytest.mark.parametrize("name", AMGX_SOLVERS)
def test_amgx_solvers_unavailable_without_pyamgx(name):
    _assert_unavailable(name)


@pytest.mark.skipif(not NO_TORCH_CUDA, reason="torch sees a CUDA device")
@pytest.mark.parametrize("name", TORCH_CUDA_SOLVERS)
def test_torch_cuda_solvers_unavailable_on_cpu(name):
    _assert_unavailable(name)


def _assert_unavailable(name):
    solver = build(name)
    reason = solver.available()
    assert isinstance(reason, str) and reason and "\n" not in reason
    r = run_solver(make_problem("laplace_bilinear", n=16), solver, Budget(max_iters=10, max_seconds=5))
    assert r.status == "unavailable" and r.message == reason and r.trace.empty


def test_unavailable_reasons_name_the_fix():
    if NO_CUPY_GPU and NO_CUPY_GPU.startswith("cupy not installed"):
        assert NO_CUPY_GPU == "cupy not installed: pip install -e '.[gpu]'"
    if NO_AMGX and NO_AMGX.startswith("pyamgx not installed"):
        assert NO_AMGX == ("pyamgx not installed: install AMGX and pyamgx by their own projects' instructions, "
                           "see docs/GPU.md")


# --- plumbing, with NumPy/SciPy stand-ins -------------------------------------------------
def test_tolerance_keywords_follow_the_signature():
    def cupy14_cg(A, b, x0=None, *, rtol=1e-5, atol=0.0, maxiter=None, M=None, callback=None): ...
    def cupy13_cg(A, b, x0=None, tol=1e-5, maxiter=None, M=None, callback=None, atol=None): ...
    def cupy14_minres(A, b, x0=None, shift=0.0, tol=1e-5, maxiter=None, M=None, callback=None): ...
    def lsmr(A, b, x0=None, damp=0.0, atol=1e-6, btol=1e-6, conlim=1e8, maxiter=None): ...

    assert tolerance_kwargs(cupy14_cg, rtol=0.0, atol=0.0) == {"rtol": 0.0, "atol": 0.0}
    assert tolerance_kwargs(cupy13_cg, rtol=0.0, atol=0.0) == {"tol": 0.0, "atol": 0.0}
    assert tolerance_kwargs(cupy14_minres, rtol=0.0, atol=0.0) == {"tol": 0.0}
    assert tolerance_kwargs(lsmr, atol=0.0, btol=0.0, conlim=0.0) == {"atol": 0.0, "btol": 0.0, "conlim": 0.0}


def _fake_cupy(monkeypatch):
    """Just enough of cupy/cupyx, on NumPy/SciPy, with CuPy 14's signatures and callback rules."""
    cupy = types.ModuleType("cupy")
    cupy.float64, cupy.asarray, cupy.zeros_like = np.float64, np.asarray, np.zeros_like
    cupy.ndarray = type("ndarray", (), {})  # SciPy >= 1.18 asks sys.modules["cupy"].ndarray (array API)
    cupy.cuda = SimpleNamespace(runtime=SimpleNamespace(getDeviceCount=lambda: 1, deviceSynchronize=lambda: None),
                                Device=lambda: SimpleNamespace(synchronize=lambda: None))
    cupy.get_default_memory_pool = lambda: SimpleNamespace(free_all_blocks=lambda: None)
    cupyx, scipy_, sparse, linalg = (types.ModuleType(n) for n in
                                     ("cupyx", "cupyx.scipy", "cupyx.scipy.sparse", "cupyx.scipy.sparse.linalg"))
    cupyx.scipy, scipy_.sparse, sparse.linalg = scipy_, sparse, linalg
    sparse.csr_matrix = sp.csr_matrix
    linalg.LinearOperator = spla.LinearOperator
    linalg.cg, linalg.lsmr = spla.cg, spla.lsmr

    def minres(A, b, x0=None, shift=0.0, tol=1e-5, maxiter=None, M=None, callback=None, check=False):
        return spla.minres(A, b, x0=x0, shift=shift, rtol=tol, maxiter=maxiter, M=M, callback=callback)

    def gmres(A, b, x0=None, *, rtol=1e-5, atol=0.0, restart=None, maxiter=None, M=None, callback=None,
              callback_type=None):
        # CuPy: maxiter counts inner iterations; callback with x before every cycle and after the last.
        x, iters, restart = x0.copy(), 0, restart or 20
        while True:
            r = b - A.matvec(x)
            if callback is not None:
                callback(x)
            if np.linalg.norm(r) <= max(atol, rtol * np.linalg.norm(b)) or iters >= maxiter:
                return x, 0
            x, _ = spla.gmres(A, b, x0=x, rtol=0.0, atol=0.0, restart=restart, maxiter=1)
            iters += restart

    linalg.minres, linalg.gmres = minres, gmres
    for name, mod in [("cupy", cupy), ("cupyx", cupyx), ("cupyx.scipy", scipy_), ("cupyx.scipy.sparse", sparse),
                      ("cupyx.scipy.sparse.linalg", linalg)]:
        monkeypatch.setitem(sys.modules, name, mod)


@pytest.mark.parametrize("name,iters", [("cupy_cg", 400), ("cupy_minres", 400), ("cupy_gmres", 2000),
                                        ("cupy_lsmr", 3000)])
def test_cupy_plumbing_with_a_numpy_stand_in(monkeypatch, name, iters):
    _fake_cupy(monkeypatch)
    solver = build(name)
    assert solver.available() is None
    p = make_problem("poisson_manufactured", n=24)
    r = run_solver(p, solver, Budget(max_iters=iters, max_seconds=60, target_msr=1e-24))
    assert r.status == "target", (r.status, r.message, r.trace.msr.min())
    assert r.strategy == ("rerun" if name == "cupy_lsmr" else "callback")
    t = r.trace
    assert t.msr.iloc[-1] <= 1e-24 and t.mse.iloc[-1] < 1e-12
    assert t.matvecs.iloc[-1] >= t.iteration.iloc[-1] > 0  # counted, at least one per iteration
    if name == "cupy_gmres":
        assert (t.iteration % 20 == 0).all()  # one checkpoint per restart cycle, k in inner iterations
    if name == "cupy_cg":  # CG: one matvec per iteration, plus r0 where x0 = 0 is not special-cased
        extra = t.matvecs[t.iteration > 0] - t.iteration[t.iteration > 0]
        assert extra.isin([0, 1]).all() and extra.nunique() == 1


def test_cupy_gmres_rows_count_inner_iterations(monkeypatch):
    """max_iters not a multiple of restart: a shortened last cycle, the last row is exactly max_iters."""
    _fake_cupy(monkeypatch)
    r = run_solver(make_problem("laplace_bilinear", n=24), build("cupy_gmres"), Budget(max_iters=50, max_seconds=60))
    t = r.trace[r.trace.iteration > 0]
    assert r.status == "budget" and list(t.iteration) == [20, 40, 50], (r.status, r.message, list(t.iteration))
    assert t.matvecs.is_monotonic_increasing and t.matvecs.iloc[-1] >= 50  # counted (the stand-in's own count)


def test_cupy_without_counting_records_null_matvecs(monkeypatch):
    _fake_cupy(monkeypatch)
    solver = build("cupy_cg", "solver.count_matvecs=false")
    r = run_solver(make_problem("laplace_bilinear", n=16), solver, Budget(max_iters=20, max_seconds=60))
    assert r.status == "budget" and r.trace.matvecs.isna().all(), (r.status, r.message)


class _FakeAMGX:
    """pyamgx's API on SciPy: the 'solver' runs exactly max_iters CG iterations from x0 = 0."""

    def __init__(self):
        self.events: list[str] = []
        fake = self

        class Handle:
            kind = "handle"

            def destroy(self):
                fake.events.append(f"destroy {self.kind}")

        class Config(Handle):
            kind = "config"

            def create_from_dict(self, d):
                self.d = d
                return self

        class Resources(Handle):
            kind = "resources"

            def create_simple(self, cfg):
                self._err = 0
                return self

        class Matrix(Handle):
            kind = "A"

            def create(self, rsc, mode="dDDI"):
                return self

            def upload(self, indptr, indices, data):
                assert indptr.dtype == np.int32 and indices.dtype == np.int32 and data.dtype == np.float64
                n = len(indptr) - 1
                self.csr = sp.csr_matrix((data, indices, indptr), shape=(n, n))

        class Vector(Handle):
            kind = "vector"

            def create(self, rsc, mode="dDDI"):
                return self

            def upload(self, a):
                self.data = np.array(a, dtype=np.float64)

            def download(self, out):
                out[:] = self.data

        class Solver(Handle):
            kind = "solver"

            def create(self, rsc, cfg, mode="dDDI"):
                self.cfg = cfg.d
                return self

            def setup(self, A):
                self.A = A
                fake.events.append("setup")

            def solve(self, b, x, zero_initial_guess=False):
                s = self.cfg["solver"]
                assert s["tolerance"] == 0.0 and s["monitor_residual"] == 0
                x0 = np.zeros_like(b.data) if zero_initial_guess else x.data
                x.data, _ = spla.cg(self.A.csr, b.data, x0=x0, rtol=0.0, atol=0.0, maxiter=s["max_iters"])

        self.Config, self.Resources, self.Matrix, self.Vector, self.Solver = Config, Resources, Matrix, Vector, Solver

    def initialize(self):
        self.events.append("initialize")

    def finalize(self):
        self.events.append("finalize")

    def get_error_string(self, err):
        return f"error {err}"


def test_amgx_plumbing_with_a_scipy_stand_in(monkeypatch):
    fake = _FakeAMGX()
    monkeypatch.setitem(sys.modules, "pyamgx", fake)
    monkeypatch.setitem(amgx_mod._LIBRARY, "initialized", False)
    monkeypatch.setattr(amgx_mod, "cuda_device_count", lambda: 1)
    monkeypatch.setattr(amgx_mod, "device_synchronizer", lambda: (lambda: None))
    p = make_problem("poisson_manufactured", n=24)
    ks = [k for k in checkpoints(200, RERUN_PER_DECADE) if k > 0]
    for job in range(2):  # two jobs in one process (a sweep): AMGX is initialised once
        fake.events.clear()
        solver = build("amgx_pcg_aggregation_jacobi")
        assert solver.available() is None
        r = run_solver(p, solver, Budget(max_iters=1000, max_seconds=60, target_msr=1e-24))
        assert r.status == "target" and r.strategy == "rerun", (r.status, r.message)
        assert r.trace.msr.iloc[-1] <= 1e-24 and set(r.trace.iteration) <= {0, *ks}
        assert solver.built_on_clock == []
        assert fake.events.count("initialize") == (1 if job == 0 else 0)
        assert fake.events.count("setup") == len(ks)  # one hierarchy per re-run checkpoint, in setup
        released = [e for e in fake.events if e.startswith("destroy")]
        n = len(ks)
        assert released == (["destroy solver"] * n + ["destroy vector"] * 2 + ["destroy A", "destroy resources"]
                            + ["destroy config"] * (n + 1))
    assert "finalize" not in fake.events
    amgx_mod._finalize(fake)
    assert fake.events[-1] == "finalize" and not amgx_mod._LIBRARY["initialized"]


def test_amgx_prebuilds_exactly_the_jobs_checkpoints(monkeypatch):
    fake = _FakeAMGX()
    monkeypatch.setitem(sys.modules, "pyamgx", fake)
    monkeypatch.setitem(amgx_mod._LIBRARY, "initialized", False)
    monkeypatch.setattr(amgx_mod, "cuda_device_count", lambda: 1)
    monkeypatch.setattr(amgx_mod, "device_synchronizer", lambda: (lambda: None))
    solver = build("amgx_pcg_aggregation_jacobi", "solver.iteration_cap=20")
    r = run_solver(make_problem("laplace_bilinear", n=16), solver, Budget(max_iters=15, max_seconds=60))
    assert r.status == "budget" and r.trace.iteration.iloc[-1] == 15
    assert solver.built_on_clock == []  # the runner's plan reached setup: nothing built on the clock
    assert fake.events.count("setup") == len([k for k in checkpoints(15, RERUN_PER_DECADE) if k > 0])
    assert r.solver_info["prebuilt_solvers"] == fake.events.count("setup")


def test_amgx_config_never_stops_early_and_prints_nothing():
    solver = build("amgx_amg_classical_l1_trunc")
    cfg = amgx_config({**solver.config, "store_res_history": 1, "print_grid_stats": 1}, 7)
    outer = cfg["solver"]
    assert cfg["config_version"] == 2 and outer["max_iters"] == 7 and outer["tolerance"] == 0.0
    assert cfg["store_res_history"] == 0 and cfg["print_grid_stats"] == 0
    assert outer["monitor_residual"] == 0 and outer["print_solve_stats"] == 0 and outer["obtain_timings"] == 0
    assert outer["preconditioner"]["max_iters"] == 1  # inner scopes keep their own settings
    assert solver.config["solver"]["max_iters"] == 100  # the user's dict is not modified
    with pytest.raises(Exception, match="config_version must be 2"):
        build("amgx_pbicgstab", "solver.config.config_version=1")


# --- GPU machines only -----------------------------------------------------------------
@pytest.mark.skipif(bool(NO_CUPY_GPU), reason=f"needs CuPy and a CUDA GPU: {NO_CUPY_GPU}{OPT_IN}")
@pytest.mark.parametrize("name,iters,msr", [("cupy_cg", 2000, 1e-20), ("cupy_minres", 2000, 1e-20),
                                            ("cupy_gmres", 20000, 1e-16), ("cupy_lsmr", 20000, 1e-12)])
def test_cupy_solvers_converge_on_gpu(name, iters, msr):
    p = make_problem("laplace_bilinear", n=64)
    r = in_child(lambda: run_solver(p, build(name), Budget(max_iters=iters, max_seconds=60, target_msr=msr)))
    assert r.status == "target", (r.status, r.message, r.trace.msr.min(), r.trace.iteration.iloc[-1])
    assert r.trace.msr.iloc[-1] <= msr and r.setup_s > 0


@pytest.mark.skipif(bool(NO_CUPY_GPU), reason=f"needs CuPy and a CUDA GPU: {NO_CUPY_GPU}{OPT_IN}")
def test_cupy_cg_matches_scipy_cg_iteration_by_iteration():
    p = make_problem("laplace_bilinear", n=64)
    budget = Budget(max_iters=60, max_seconds=60)
    gpu = in_child(lambda: run_solver(p, build("cupy_cg"), budget)).trace.set_index("iteration")
    cpu = in_child(lambda: run_solver(p, build("cg"), budget)).trace.set_index("iteration")
    common = gpu.index.intersection(cpu.index)
    common = common[common > 0]
    assert len(common) > 10
    np.testing.assert_allclose(np.log10(gpu.msr[common]), np.log10(cpu.msr[common]), atol=0.5)
    # CuPy 14's cg always forms r0 = b - A x0 (one mat-vec); SciPy's skips it for x0 = 0.
    assert (gpu.matvecs[common] == cpu.matvecs[common] + 1).all()


@pytest.mark.skipif(bool(NO_AMGX), reason=f"needs pyamgx and a CUDA GPU: {NO_AMGX}{OPT_IN}")
@pytest.mark.parametrize("name", AMGX_SOLVERS)
def test_amgx_converges_in_child(name):
    p = make_problem("laplace_bilinear", n=64)

    def run():
        solver = build(name)
        r = run_solver(p, solver, Budget(max_iters=100000, max_seconds=60, target_msr=1e-20))
        return r, solver.built_on_clock, bool(solver._solvers)

    r, built_on_clock, left = in_child(run)
    assert r.status == "target", (r.status, r.message, r.trace.msr.min())
    assert built_on_clock == [] and not left  # everything released in teardown


@pytest.mark.skipif(bool(NO_TORCH_CUDA), reason=f"needs torch with CUDA: {NO_TORCH_CUDA}{OPT_IN}")
def test_adam_cuda_follows_adam_cpu():
    p = make_problem("laplace_bilinear", n=64)
    budget = Budget(max_iters=200, max_seconds=60)
    gpu = in_child(lambda: run_solver(p, build("adam_cuda"), budget)).trace.set_index("iteration")
    cpu = in_child(lambda: run_solver(p, build("adam"), budget)).trace.set_index("iteration")
    assert gpu.index[-1] == cpu.index[-1] == 200
    # float64 on both; the stencil sums in another order. Adam divides by sqrt(v), so rounding
    # differences at nodes with a near-zero gradient grow: equal to 1e-9 early, within 25 % later
    # (measured on an H200: 3.4 % apart at iteration 200).
    early = gpu.index[gpu.index <= 10]
    np.testing.assert_allclose(gpu.msr[early], cpu.msr[early], rtol=1e-9)
    np.testing.assert_allclose(np.log10(gpu.msr), np.log10(cpu.msr), atol=0.1)


@pytest.mark.skipif(bool(NO_TORCH_CUDA), reason=f"needs torch with CUDA: {NO_TORCH_CUDA}{OPT_IN}")
@pytest.mark.parametrize("name", ["metamizer", "metamizer_paper"])
def test_metamizer_cuda_follows_metamizer_cpu(name):
    """The same checkpoint on CUDA (TF32 off) and on the CPU: the same iterates up to float32 rounding."""
    p = make_problem("laplace_bilinear", n=64)
    budget = Budget(max_iters=30, max_seconds=60)
    gpu = in_child(lambda: run_solver(p, build(f"{name}_cuda"), budget)).trace.set_index("iteration")
    cpu = in_child(lambda: run_solver(p, build(name), budget)).trace.set_index("iteration")
    assert gpu.index[-1] == cpu.index[-1] == 30
    # float32 convolutions in a different order: iterates drift apart slowly, never by decades
    np.testing.assert_allclose(np.log10(gpu.msr), np.log10(cpu.msr), atol=1.0)


@pytest.mark.skipif(bool(NO_TORCH_CUDA), reason=f"needs torch with CUDA: {NO_TORCH_CUDA}{OPT_IN}")
def test_metamizer_paper_with_the_authors_gpu_settings():
    """tf32 + cudnn_benchmark: the settings are applied and recorded, and the iterates stay
    within a decade of full float32 for 30 iterations."""
    p = make_problem("laplace_bilinear", n=64)
    budget = Budget(max_iters=30, max_seconds=60)

    def run_and_describe(name):
        s = build(name)
        r = run_solver(p, s, budget)
        return r, s.describe()

    fast, d_fast = in_child(lambda: run_and_describe("metamizer_paper_cuda_tf32"))
    full, d_full = in_child(lambda: run_and_describe("metamizer_paper_cuda"))
    assert d_fast["tf32"] is True and d_fast["cudnn_benchmark"] is True
    assert d_full["tf32"] is False and d_full["cudnn_benchmark"] is False
    a, b = fast.trace.set_index("iteration"), full.trace.set_index("iteration")
    np.testing.assert_allclose(np.log10(a.msr), np.log10(b.msr), atol=1.0)


# --- the forked job path every sweep uses ---------------------------------------------------
GPU_JOBS = [("cupy_cg", NO_CUPY_GPU), ("cupy_minres", NO_CUPY_GPU), ("adam_cuda", NO_TORCH_CUDA),
            ("metamizer_cuda", NO_TORCH_CUDA), ("metamizer_paper_cuda", NO_TORCH_CUDA),
            ("metamizer_paper_cuda_tf32", NO_TORCH_CUDA)]


@pytest.mark.parametrize("name,reason", GPU_JOBS)
def test_gpu_solver_through_the_forked_job_path(tmp_path, name, reason):
    """A two-repeat job from the command line: the job process forks, the child owns CUDA."""
    if reason:
        pytest.skip(f"needs a GPU backend: {reason}{OPT_IN}")
    out = subprocess.run([sys.executable, "-m", "harness.run", f"solver={name}", "problem.n=48", "repeats=2",
                          "budget.max_iters=400", "budget.target_msr=1e-20", "budget.max_seconds=20",
                          "progress=false",
                          f"hydra.run.dir={tmp_path}"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    df = load(tmp_path)
    assert set(df.repeat) == {0, 1} and (df.device == "cuda").all()
    last = df.sort_values("iteration").groupby("repeat").tail(1)
    assert set(last.status) <= {"budget", "target"}, last[["status", "message"]]
    assert (last.setup_s > 0).all() and (last.time_s > 0).all()


def test_forking_is_refused_once_cuda_is_initialised(monkeypatch):
    """What a parent that touched CUDA gets: one line, no child that could hang on a dead context."""
    monkeypatch.setattr(guard, "cuda_initialised", lambda: True)
    with pytest.raises(RuntimeError, match="refused to fork: this process has already initialised CUDA"):
        run_isolated(lambda emit: 1, timeout_s=10)
    assert guard.fork_refusal() == guard.FORK_REFUSED


@pytest.mark.skipif(bool(NO_TORCH_CUDA), reason=f"needs torch with CUDA: {NO_TORCH_CUDA}{OPT_IN}")
def test_a_job_after_cuda_in_the_parent_is_recorded_as_refused(tmp_path):
    code = ("import torch; torch.zeros(1, device='cuda'); "
            "from harness.guard import cuda_initialised; assert cuda_initialised(); "
            "from hydra import compose, initialize_config_dir; from harness.job import run_job; "
            f"initialize_config_dir(version_base='1.3', config_dir={str(CONF)!r}); "
            "cfg = compose('config', overrides=['solver=cg', 'problem.n=16', 'budget.max_iters=5']); "
            f"run_job(cfg, {str(tmp_path)!r})")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=300)
    df = load(tmp_path)
    assert (df.status == "error").all() and df.message.str.startswith("refused to fork").all()


def test_no_cuda_in_this_process():
    """Nothing above initialised CUDA here (the later forking tests depend on it)."""
    assert not guard.cuda_initialised()
