"""The harness's former hand-written COO assembly, kept as an independent reference.

``problems.Problem`` now builds its matrix with ``pyamg.gallery.stencil_grid``;
tests compare the two, and benchmarks/bench_core.py times them side by side.
"""

import numpy as np
import scipy.sparse as sp

from problems.stencil import STENCIL


def coo_assembly(problem) -> tuple[sp.csr_matrix, np.ndarray]:
    """(A, b) for ``problem``: one vectorised pass per stencil entry (9 in all)."""
    num = np.full(problem.shape, -1, dtype=np.int64)
    num[problem.interior] = np.arange(problem.n_interior)
    iy, ix = np.nonzero(problem.interior)
    rows_own = num[iy, ix]
    b = problem.f[iy, ix].astype(np.float64)
    rows, cols, vals = [], [], []
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            weight = STENCIL[dy + 1, dx + 1]
            col = num[iy + dy, ix + dx]
            inside = col >= 0
            rows.append(rows_own[inside])
            cols.append(col[inside])
            vals.append(np.full(int(inside.sum()), -weight))
            outside = ~inside
            b[outside] += weight * problem.g[iy[outside] + dy, ix[outside] + dx]
    n = problem.n_interior
    A = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n))
    A.sort_indices()
    return A, b
