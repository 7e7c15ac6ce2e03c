"""The isotropic 9-point Laplacian of the Metamizer paper, in one place.

``apply_laplacian`` works unchanged on NumPy, CuPy and torch arrays (it only
slices and adds), so every backend evaluates exactly the same stencil.
"""

from __future__ import annotations

import numpy as np

# 0.25 * [[1, 2, 1], [2, -12, 2], [1, 2, 1]]  (METAMIZER_FACTS.md)
STENCIL = 0.25 * np.array([[1.0, 2.0, 1.0], [2.0, -12.0, 2.0], [1.0, 2.0, 1.0]])
CENTRE = STENCIL[1, 1]  # -3


def apply_laplacian(u):
    """Lap_h(u) on the inner nodes ``[1:-1, 1:-1]`` of a full-grid field.

    The outer ring has no full neighbourhood; it is always Dirichlet, so the
    caller never needs its Laplacian. Leading batch dimensions are kept:
    (..., H, W) -> (..., H-2, W-2).
    """
    c = u[..., 1:-1, 1:-1]
    edges = u[..., :-2, 1:-1] + u[..., 2:, 1:-1] + u[..., 1:-1, :-2] + u[..., 1:-1, 2:]
    corners = u[..., :-2, :-2] + u[..., :-2, 2:] + u[..., 2:, :-2] + u[..., 2:, 2:]
    return 0.25 * corners + 0.5 * edges - 3.0 * c
