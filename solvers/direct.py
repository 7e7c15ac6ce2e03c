"""Direct solvers: the accuracy and speed limit line of every comparison.

``splu``: sparse LU (SuperLU, COLAMD ordering); factorisation in setup, the two
triangular solves in solve. ``dst``: a fast sine-transform solver for problems
whose Dirichlet set is exactly a rectangular border (any source f): the 9-point
operator is diagonalised by the 2D DST-I.
"""

from __future__ import annotations

import numpy as np
import scipy.fft
import scipy.sparse.linalg as spla

from solvers.base import Solver


class SparseLU(Solver):
    family = "direct"
    bytes_per_node = 3100  # sparse LU fill grows like n log n (measured 2.8-3.4 kB/node)
    backend = "scipy"
    callbacks = False
    max_iterations = 1

    def setup(self, problem):
        system = problem.linear_system()
        self.b = system.b
        self.lu = spla.splu(system.A.tocsc(), permc_spec=self.params.get("permc_spec", "COLAMD"))

    def solve(self, problem, monitor):
        x = self.lu.solve(self.b)
        monitor(1, x)
        return x


def border_width(mask: np.ndarray) -> int | None:
    """w if the Dirichlet set is exactly the outer w-node border, else None."""
    h, w = mask.shape
    width = int(np.argmin(mask[h // 2, : w // 2 + 1])) if not mask[h // 2, : w // 2 + 1].all() else 0
    if width == 0:
        return None
    expected = np.ones_like(mask)
    expected[width:-width, width:-width] = False
    return width if np.array_equal(mask, expected) else None


class FastSine(Solver):
    family = "direct"
    bytes_per_node = 100
    backend = "scipy"
    callbacks = False
    max_iterations = 1

    def supports(self, problem) -> str | None:
        if border_width(problem.mask) is None:
            return "dst needs the Dirichlet set to be a rectangular border (no interior obstacles)"
        return None

    def setup(self, problem):
        width = border_width(problem.mask)
        h, w = problem.shape
        m, n = h - 2 * width, w - 2 * width
        a = np.pi * np.arange(1, m + 1) / (m + 1)
        c = np.pi * np.arange(1, n + 1) / (n + 1)
        ca, cc = np.cos(a)[:, None], np.cos(c)[None, :]
        # Eigenvalues of A = -Lap_h (9-point) on DST-I modes: 3 - cos a - cos c - cos a cos c.
        self.eig = 3.0 - ca - cc - ca * cc
        self.shape = (m, n)
        self.b = problem.linear_system().b.reshape(m, n)
        self.workers = self.params.get("workers", 1)

    def solve(self, problem, monitor):
        coeff = scipy.fft.dstn(self.b, type=1, workers=self.workers) / self.eig
        x = scipy.fft.idstn(coeff, type=1, workers=self.workers).ravel()
        monitor(1, x)
        return x
