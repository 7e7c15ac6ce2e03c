"""Problems: exact ground truth, the assembled system, metrics, bad sizes."""

import numpy as np
import pytest
import scipy.sparse.linalg as spla

from problems import GENERATORS, ProblemError, make_problem
from problems.stencil import apply_laplacian
from problems.torch_ops import TorchPhysics


@pytest.mark.parametrize("name", ["laplace_bilinear", "laplace_harmonic", "poisson_manufactured"])
@pytest.mark.parametrize("n", [8, 33, 64])
def test_analytic_solution_is_exact_discrete_solution(name, n):
    p = make_problem(name, n=n)
    assert p.exact_kind == "analytic"
    assert p.msr(p.exact) < 1e-28
    system = p.linear_system()
    x = spla.spsolve(system.A.tocsc(), system.b)
    assert p.mse(p.to_full(x)) < 1e-24


def test_harmonic_variants_and_degree_four_is_not_harmonic():
    for variant in ("x2-y2", "x3-3xy2"):
        p = make_problem("laplace_harmonic", n=40, variant=variant)
        assert p.msr(p.exact) < 1e-28
    y, x = np.meshgrid(np.arange(40.0), np.arange(40.0), indexing="ij")
    quartic = (x / 40) ** 4 - 6 * (x / 40) ** 2 * (y / 40) ** 2 + (y / 40) ** 4
    assert np.abs(apply_laplacian(quartic)).max() > 1e-8  # the stencil is exact only up to degree 3


def test_rectangular_grid():
    p = make_problem("laplace_bilinear", h=24, w=40)
    assert p.shape == (24, 40)
    assert p.n_interior == 20 * 36
    assert p.msr(p.exact) < 1e-30


def test_system_is_spd_and_residual_matches():
    p = make_problem("laplace_obstacles", n=48, seed=3)
    A, b = p.linear_system().A, p.linear_system().b
    assert abs(A - A.T).max() == 0
    assert np.all(A.diagonal() == 3.0)
    x = np.random.default_rng(0).standard_normal(p.n_interior)
    u = p.to_full(x)
    # MSR is ||b - A x||^2 / N: the harness metric and the linear system agree.
    assert p.msr(u) == pytest.approx(np.mean((b - A @ x) ** 2), rel=1e-12)
    assert p.rel_res(u) == pytest.approx(np.linalg.norm(b - A @ x) / np.linalg.norm(b), rel=1e-12)
    assert np.linalg.eigvalsh(A[:200, :200].toarray()).min() > 0


def test_obstacles_reference_is_direct_solve_and_seeded():
    a, b = make_problem("laplace_obstacles", n=48, seed=1), make_problem("laplace_obstacles", n=48, seed=1)
    c = make_problem("laplace_obstacles", n=48, seed=2)
    assert a.exact_kind == "direct"
    assert np.array_equal(a.mask, b.mask) and not np.array_equal(a.mask, c.mask)
    assert a.msr(a.exact) < 1e-26
    assert a.mask.sum() > make_problem("laplace_bilinear", n=48).mask.sum()  # boxes were added


def test_metrics_ignore_dirichlet_values_of_u():
    p = make_problem("laplace_bilinear", n=16)
    u = p.exact.copy()
    u[p.mask] = 123.0  # a solver that scribbles on the border is still scored against g
    assert p.msr(u) < 1e-30


def test_torch_gradients():
    torch = pytest.importorskip("torch")
    p = make_problem("poisson_manufactured", n=20)
    tp = TorchPhysics(p)
    u = tp.initial_field() + 0.1 * torch.randn(20, 20, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    tp.apply_dirichlet(u)
    assert float(tp.msr(u)) == pytest.approx(p.msr(u.numpy()), rel=1e-12)
    leaf = u.clone().requires_grad_(True)
    tp.msr(leaf).backward()
    exact = tp.gradient(u, "exact")
    assert torch.allclose(exact, leaf.grad.masked_fill(tp.mask, 0.0), atol=1e-15)
    detach = tp.gradient(u, "detach")  # the paper's: 2 r (-3) / N
    r = tp.residual(u)
    assert torch.allclose(detach, -6.0 * r / p.n_interior)


@pytest.mark.parametrize("bad", [4, 7, 0, -3, 12.5, "64", None])
def test_bad_grid_size_is_a_clear_error(bad):
    with pytest.raises(ProblemError, match=r"integer >= 8"):
        make_problem("laplace_bilinear", n=bad)


def test_unknown_problem_lists_valid_names():
    with pytest.raises(ProblemError, match="valid: " + ", ".join(sorted(GENERATORS))):
        make_problem("heat")


@pytest.mark.parametrize("name,kw", [("laplace_bilinear", {"n": 33}), ("laplace_bilinear", {"h": 20, "w": 36}),
                                     ("poisson_manufactured", {"n": 40}), ("laplace_harmonic", {"n": 24}),
                                     ("laplace_obstacles", {"n": 48, "seed": 3}),
                                     ("laplace_obstacles", {"n": 64, "seed": 7, "n_boxes": 6})])
def test_library_assembly_equals_the_former_coo_assembly(name, kw):
    from tests.reference_assembly import coo_assembly

    p = make_problem(name, **kw)
    A_ref, b_ref = coo_assembly(p)
    system = p.linear_system()
    assert system.A.shape == A_ref.shape
    assert (system.A != A_ref).nnz == 0  # the same entries, exactly
    np.testing.assert_allclose(system.b, b_ref, rtol=1e-14, atol=1e-14 * np.abs(b_ref).max())


def test_fresh_copy_assembles_again():
    p = make_problem("laplace_bilinear", n=16)
    q = p.fresh()
    assert q.linear_system() is not p.linear_system()
    assert q.msr(q.exact) == p.msr(p.exact)
