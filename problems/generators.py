"""Problem generators (the harness's gallery), each with its ground truth.

Coordinates follow METAMIZER_FACTS.md: x = column index 0..W-1, y = row index
0..H-1. Every generator is a plain function returning an immutable Problem, registered
by ``@generator`` under its name.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.sparse.linalg as spla

from problems.base import Problem, ProblemError, check_grid
from problems.stencil import apply_laplacian

GENERATORS: dict[str, Callable[..., Problem]] = {}  # name -> generator, filled by @generator
DIRECT_SOLVE_BYTES_PER_NODE = 3000  # sparse LU fill of a reference solve (measured; docs/ROBUSTNESS.md)


def generator(fn=None, *, direct_reference: bool = False):
    """Register a problem generator under its function's name (``conf/problem/<name>.yaml`` names it).

    ``direct_reference=True``: its reference solution is a sparse direct solve at build time, whose
    fill counts in the memory guard's estimate (``reference_bytes_per_node``).
    """
    def register(f):
        f.reference_bytes_per_node = DIRECT_SOLVE_BYTES_PER_NODE if direct_reference else 0
        GENERATORS[f.__name__] = f
        return f

    return register(fn) if fn is not None else register


def _grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    y, x = np.meshgrid(np.arange(h, dtype=np.float64), np.arange(w, dtype=np.float64), indexing="ij")
    return x, y


def border_mask(h: int, w: int, width: int = 2) -> np.ndarray:
    """Dirichlet mask of the outer ``width``-node border."""
    m = np.ones((h, w), bool)
    m[width:-width, width:-width] = False
    return m


@generator
def laplace_bilinear(h: int, w: int) -> Problem:
    """The paper's test: 2-node border with g = (x/W)(y/H); exact solution = g."""
    x, y = _grid(h, w)
    g = (x / w) * (y / h)
    return Problem("laplace_bilinear", border_mask(h, w), g, np.zeros((h, w)), exact=g, exact_kind="analytic")


HARMONIC = {
    # Exactly discrete-harmonic for the isotropic 9-point stencil (degree <= 3).
    "x2-y2": lambda x, y: x**2 - y**2,
    "x3-3xy2": lambda x, y: x**3 - 3 * x * y**2,
}


@generator
def laplace_harmonic(h: int, w: int, variant: str = "x2-y2") -> Problem:
    """Laplace with a harmonic polynomial as border data; exact solution = the polynomial.

    Coordinates are scaled to [0, 1] (x/W, y/H) so the values stay O(1);
    Scaling keeps these polynomials harmonic only for H = W, which we require.
    """
    if variant not in HARMONIC:
        raise ProblemError(f"unknown laplace_harmonic variant {variant!r}; valid: {', '.join(HARMONIC)}")
    if h != w:
        raise ProblemError("laplace_harmonic needs a square grid (h == w): x/W and y/H must share one scale")
    x, y = _grid(h, w)
    u = HARMONIC[variant](x / w, y / h)
    return Problem("laplace_harmonic", border_mask(h, w), u, np.zeros((h, w)), exact=u,
                   exact_kind="analytic", params={"variant": variant})


@generator
def poisson_manufactured(h: int, w: int) -> Problem:
    """Poisson with f = -Lap_h(u*) for a smooth u*, so u* is the exact discrete solution."""
    x, y = _grid(h, w)
    X, Y = x / (w - 1), y / (h - 1)
    u = np.sin(np.pi * X) * np.sin(2 * np.pi * Y) + 0.5 * np.exp(X * Y) * np.cos(3 * X)
    f = np.zeros((h, w))
    f[1:-1, 1:-1] = -apply_laplacian(u)
    mask = border_mask(h, w)
    f[mask] = 0.0
    return Problem("poisson_manufactured", mask, u, f, exact=u, exact_kind="analytic")


def obstacle_mask_and_values(h: int, w: int, rng: np.random.Generator, n_boxes: int = 3,
                             max_side: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """The Metamizer training distribution: 2-node border plus random interior boxes,
    boundary values sin(phase + 0.1 (a x + b y)), phase ~ U(0, 2pi), a, b ~ N(0, 1)."""
    mask = border_mask(h, w)
    for _ in range(n_boxes):
        sy, sx = rng.integers(0, max_side + 1, size=2)
        sy, sx = min(sy, h - 6), min(sx, w - 6)
        y0 = rng.integers(2, max(3, h - 2 - sy))
        x0 = rng.integers(2, max(3, w - 2 - sx))
        mask[y0:y0 + sy, x0:x0 + sx] = True
    x, y = _grid(h, w)
    phase = rng.uniform(0, 2 * np.pi)
    a, b = rng.standard_normal(2)
    g = np.sin(phase + 0.1 * (a * x + b * y))
    return mask, g


@generator(direct_reference=True)
def laplace_obstacles(h: int, w: int, seed: int = 0, n_boxes: int = 3) -> Problem:
    """Random interior Dirichlet boxes (seeded); reference solution by a sparse direct solve."""
    mask, g = obstacle_mask_and_values(h, w, np.random.default_rng(seed), n_boxes=n_boxes)
    p = Problem("laplace_obstacles", mask, g, np.zeros((h, w)), params={"seed": seed, "n_boxes": n_boxes})
    system = p.linear_system()
    ref = p.to_full(spla.spsolve(system.A.tocsc(), system.b))
    return Problem(p.name, mask, g, p.f, exact=ref, exact_kind="direct", params=p.params)


def reference_bytes_per_node(name: str) -> int:
    """Bytes per grid node that building problem ``name``'s reference solution needs (0: analytic)."""
    return getattr(GENERATORS.get(name), "reference_bytes_per_node", 0)


def make_problem(name: str, n: int | None = 64, h: int | None = None, w: int | None = None, **params) -> Problem:
    """Build a problem by name on an H x W grid (square n x n unless h/w are given)."""
    if name not in GENERATORS:
        raise ProblemError(f"unknown problem {name!r}; valid: {', '.join(sorted(GENERATORS))}")
    h, w = check_grid(h if h is not None else n, w if w is not None else n)
    return GENERATORS[name](h, w, **params)
