"""The Problem: a Dirichlet/Poisson problem on a regular grid and its metrics.

The metrics defined here (``residual``, ``msr``, ``mse``, ``rel_res``) are the
only ones the harness uses: every solver's output is scored by this code, in
float64, never by the solver itself.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import scipy.sparse as sp
from pyamg.gallery import stencil_grid  # imported here, not in _system: a forked child must not pay it

from problems.stencil import STENCIL, apply_laplacian

MIN_GRID = 8


class ProblemError(ValueError):
    """A problem that cannot be built from the given parameters (user error)."""


def check_grid(h: Any, w: Any) -> tuple[int, int]:
    """Validate a grid shape; return it as ints or raise ProblemError naming the fix."""
    out = []
    for name, v in (("h", h), ("w", w)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            if isinstance(v, float) and v.is_integer():
                v = int(v)
            else:
                raise ProblemError(f"grid size {name}={v!r} must be an integer >= {MIN_GRID} (e.g. problem.n=64)")
        if v < MIN_GRID:
            raise ProblemError(f"grid size {name}={v} is too small: use an integer >= {MIN_GRID} (e.g. problem.n=64)")
        out.append(int(v))
    return out[0], out[1]


@dataclass(frozen=True, eq=False)
class Problem:
    """Find u with u = g on ``mask`` and Lap_h(u) + f = 0 elsewhere.

    Parameters
    ----------
    name : generator name, e.g. ``laplace_bilinear``.
    mask : (H, W) bool, True on Dirichlet nodes. The outer ring must be Dirichlet.
    g : (H, W) float64, Dirichlet values (ignored off the mask).
    f : (H, W) float64, source term (ignored on the mask).
    exact : (H, W) discrete solution, or None.
    exact_kind : ``"analytic"`` (exact by construction) or ``"direct"``
        (a sparse direct solve, accurate to ~1e-13) or ``"none"``.
    params : the generator parameters, for the record.

    Examples
    --------
    >>> from problems import make_problem
    >>> p = make_problem("laplace_bilinear", n=16)
    >>> float(p.msr(p.exact)) < 1e-30
    True
    """

    name: str
    mask: np.ndarray
    g: np.ndarray
    f: np.ndarray
    exact: np.ndarray | None = None
    exact_kind: str = "none"
    params: dict = field(default_factory=dict)

    def __post_init__(self):
        h, w = self.mask.shape
        check_grid(h, w)
        ring = np.ones((h, w), bool)
        ring[1:-1, 1:-1] = False
        if not self.mask[ring].all():
            raise ProblemError("the outer ring of the grid must be Dirichlet (mask True)")
        if self.mask.all():
            raise ProblemError("the problem has no unknowns (every node is Dirichlet)")
        for a in (self.mask, self.g, self.f):
            a.setflags(write=False)

    # --- shape and index maps -------------------------------------------------
    @property
    def shape(self) -> tuple[int, int]:
        return self.mask.shape

    @cached_property
    def interior(self) -> np.ndarray:
        """Bool (H, W): the unknowns (non-Dirichlet nodes)."""
        out = ~self.mask
        out.setflags(write=False)
        return out

    @cached_property
    def n_interior(self) -> int:
        return int(self.interior.sum())

    @cached_property
    def _inner_interior(self) -> np.ndarray:
        return self.interior[1:-1, 1:-1]

    def to_full(self, x: np.ndarray) -> np.ndarray:
        """Interior vector -> full grid field (Dirichlet nodes set to g)."""
        u = np.array(self.g, dtype=np.float64, copy=True)
        u[self.interior] = x
        return u

    def initial_field(self) -> np.ndarray:
        """The starting point of every solver: zeros on the unknowns, g on the border."""
        return self.to_full(np.zeros(self.n_interior))

    # --- metrics (the single definition) ---------------------------------------
    def residual(self, u: np.ndarray) -> np.ndarray:
        """r = Lap_h(u) + f on the unknowns (u's Dirichlet nodes are taken from g)."""
        u = np.where(self.mask, self.g, np.asarray(u, dtype=np.float64))
        r = apply_laplacian(u) + self.f[1:-1, 1:-1]
        return r[self._inner_interior]

    def msr(self, u: np.ndarray) -> float:
        """Mean squared residual over the unknowns (the paper's loss)."""
        r = self.residual(u)
        return float(np.mean(r * r))

    def mse(self, u: np.ndarray) -> float:
        """Mean squared error to ``exact`` over the unknowns (NaN when unknown)."""
        if self.exact is None:
            return float("nan")
        e = np.asarray(u, dtype=np.float64)[self.interior] - self.exact[self.interior]
        return float(np.mean(e * e))

    def rel_res(self, u: np.ndarray) -> float:
        """||b - A x|| / ||b|| for the interior system (equals ||r|| / ||b||)."""
        b_norm = self._rhs_norm
        r_norm = float(np.linalg.norm(self.residual(u)))
        return r_norm / b_norm if b_norm > 0 else r_norm

    def metrics(self, u: np.ndarray) -> dict[str, float]:
        r = self.residual(u)
        r_norm2 = float(r @ r)
        b = self._rhs_norm
        return {
            "msr": r_norm2 / r.size,
            "mse": self.mse(u),
            "rel_res": (r_norm2**0.5) / b if b > 0 else r_norm2**0.5,
        }

    @cached_property
    def _rhs_norm(self) -> float:
        return float(np.linalg.norm(self._rhs))

    # --- the SPD interior system -------------------------------------------------
    def linear_system(self) -> LinearSystem:
        """A x = b on the unknowns, A = -Lap_h restricted (SPD). Cached on this object.

        The harness times assembly as part of every repeat's setup by handing each
        repeat a ``fresh()`` copy, whose cache is empty.
        """
        return self._system

    def fresh(self) -> Problem:
        """The same problem without any cached assembly (each repeat's setup pays for it)."""
        return dataclasses.replace(self)

    @cached_property
    def _rhs(self) -> np.ndarray:
        # A Dirichlet neighbour moves to the right-hand side: b = f + Lap_h(g on the mask, 0 elsewhere).
        g_known = np.where(self.mask, self.g, 0.0)
        return self.f[1:-1, 1:-1][self._inner_interior] + apply_laplacian(g_known)[self._inner_interior]

    @cached_property
    def _system(self) -> LinearSystem:
        # PyAMG's stencil_grid builds the 9-point matrix on a rectangle in one vectorised call
        # (20-30x faster than our former hand-written COO assembly). Unknowns live inside the
        # bounding box of the interior; when obstacles punch holes in it, the matrix is the
        # box matrix restricted to the interior rows and columns (Dirichlet neighbours dropped).
        inner = self._inner_interior
        rows, cols = np.nonzero(inner)
        box = inner[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
        A = stencil_grid(-STENCIL, box.shape, dtype=np.float64, format="csr")
        if not box.all():
            keep = np.flatnonzero(box.ravel())
            A = A[keep][:, keep]
        A = sp.csr_matrix(A)
        if not A.has_sorted_indices:
            A.sort_indices()
        return LinearSystem(A=A, b=self._rhs)


@dataclass(frozen=True, eq=False)
class LinearSystem:
    """The assembled interior system: ``A`` (CSR, SPD) and ``b``."""

    A: sp.csr_matrix
    b: np.ndarray
