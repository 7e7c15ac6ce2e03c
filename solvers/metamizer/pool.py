"""The training pool: randomised Laplace/Poisson problems with their current
iterate and optimiser state, kept on the training device and updated in place.

Entries follow METAMIZER_FACTS.md: a 2-node Dirichlet border plus ~3 random
interior boxes (sides 0..20; ``problems.generators.obstacle_mask_and_values``,
the same distribution as ``laplace_obstacles`` but drawn from the training
RNG), boundary values ``sin(phase + 0.1 (a x + b y))``. A fraction of entries
has no boxes, another a smooth random source f (Poisson).
"""

from __future__ import annotations

import numpy as np
import torch

from problems.generators import border_mask, obstacle_mask_and_values
from problems.stencil import CENTRE, apply_laplacian
from solvers.metamizer.model import C0


def batched_residual(u: torch.Tensor, f: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """r = Lap_h(u) + f on the unknowns, zero on Dirichlet nodes; (B, H, W)."""
    r = torch.zeros_like(u)
    r[..., 1:-1, 1:-1] = apply_laplacian(u) + f[..., 1:-1, 1:-1]
    return r.masked_fill(mask, 0.0)


def batched_msr(u, f, mask, n_interior) -> torch.Tensor:
    r = batched_residual(u, f, mask)
    return (r * r).sum(dim=(-2, -1)) / n_interior


def batched_gradient(u, f, mask, n_interior) -> torch.Tensor:
    """The paper's detached gradient dMSR/du = 2 r (-3) / N (one stencil application)."""
    return batched_residual(u, f, mask) * (2.0 * CENTRE / n_interior)[:, None, None]


def random_problem(h: int, w: int, rng: np.random.Generator, p_no_boxes: float = 0.2,
                   p_source: float = 0.2, p_freq: float = 0.0,
                   freq_range: tuple[float, float] = (0.005, 0.1)) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mask, g, f) of one random training problem.

    With probability ``p_freq`` the boundary values use a log-uniform spatial
    frequency k in ``freq_range`` instead of the paper's fixed 0.1,
    g = sin(phase + k (a x + b y)): smoother (longer-wave) boundary data.
    """
    n_boxes = 0 if rng.random() < p_no_boxes else 3
    mask, g = obstacle_mask_and_values(h, w, rng, n_boxes=n_boxes)
    if p_freq > 0 and rng.random() < p_freq:
        k = float(np.exp(rng.uniform(np.log(freq_range[0]), np.log(freq_range[1]))))
        y, x = np.meshgrid(np.arange(h, dtype=np.float64), np.arange(w, dtype=np.float64), indexing="ij")
        a, b = rng.standard_normal(2)
        g = np.sin(rng.uniform(0, 2 * np.pi) + k * (a * x + b * y))
    f = np.zeros((h, w))
    if rng.random() < p_source:
        y, x = np.meshgrid(np.arange(h) / h, np.arange(w) / w, indexing="ij")
        kx, ky = rng.integers(1, 5, size=2)
        f = np.sin(np.pi * kx * x + rng.uniform(0, 2 * np.pi)) * np.sin(np.pi * ky * y + rng.uniform(0, 2 * np.pi))
        f *= 10.0 ** rng.uniform(-4, -2) * rng.choice([-1.0, 1.0])
        f[mask] = 0.0
    return mask, g, f


class Pool:
    """``size`` problems on an ``n x n`` grid, with u, previous gradient, previous
    step, scale c and iteration counter per entry."""

    def __init__(self, size: int, n: int, rng: np.random.Generator, device="cpu",
                 p_no_boxes: float = 0.2, p_source: float = 0.2, p_freq: float = 0.0,
                 freq_range: tuple[float, float] = (0.005, 0.1)):
        self.size, self.n, self.rng, self.device = size, n, rng, torch.device(device)
        self.p_no_boxes, self.p_source = p_no_boxes, p_source
        self.p_freq, self.freq_range = p_freq, tuple(freq_range)
        kw = {"dtype": torch.float64, "device": self.device}
        self.mask = torch.tensor(np.broadcast_to(border_mask(n, n), (size, n, n)).copy(), device=self.device)
        self.g = torch.zeros(size, n, n, **kw)
        self.f = torch.zeros(size, n, n, **kw)
        self.n_interior = torch.ones(size, **kw)
        self.u = torch.zeros(size, n, n, **kw)
        self.grad = torch.zeros(size, n, n, **kw)
        self.step = torch.zeros(size, n, n, **kw)
        self.scale = torch.full((size,), C0, **kw)
        self.iters = torch.zeros(size, dtype=torch.long, device=self.device)
        self.reset(torch.arange(size))
        self._rr = 0  # round-robin pointer
        self._acc = 0.0

    def reset(self, idx) -> None:
        """Replace entries ``idx`` by fresh random problems, zero-initialised."""
        for i in torch.as_tensor(idx).tolist():
            mask, g, f = random_problem(self.n, self.n, self.rng, self.p_no_boxes, self.p_source,
                                        self.p_freq, self.freq_range)
            m = torch.tensor(mask, device=self.device)
            self.mask[i] = m
            self.g[i] = torch.tensor(g, dtype=torch.float64, device=self.device)
            self.f[i] = torch.tensor(f, dtype=torch.float64, device=self.device)
            self.n_interior[i] = float((~m).sum())
            self.u[i] = torch.where(m, self.g[i], torch.zeros_like(self.g[i]))
            self.grad[i] = 0.0
            self.step[i] = 0.0
            self.scale[i] = C0
            self.iters[i] = 0

    def round_robin(self, per_step: float) -> None:
        """Reset ``per_step`` entries per call on average (fractions accumulate),
        cycling through the pool so every sequence lives about as long."""
        self._acc += per_step
        k = int(self._acc)
        if k:
            self._acc -= k
            idx = [(self._rr + j) % self.size for j in range(k)]
            self._rr = (self._rr + k) % self.size
            self.reset(idx)

    def sample(self, batch: int) -> torch.Tensor:
        return torch.as_tensor(self.rng.choice(self.size, size=batch, replace=False), device=self.device)
