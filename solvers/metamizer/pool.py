"""The training pool: randomised Laplace/Poisson problems with their current
iterate and optimiser state, kept on the training device and updated in place.

Two kinds of entries:

- ``kind="paper"``, the authors' Laplace pool (Wandel et al., ICLR 2025; their
  public ``dataset_poisson.py``): f = 0, a 2-node Dirichlet border plus always 3
  boxes with corner (x, y) uniform in [10, n-10) and sides uniform in [0, 20)
  (clipped by the grid), boundary values sin(phase + 0.1 (a x + b y)) with phase
  ~ U(0, 6.28) and a, b ~ N(0, 1). Their draws use torch's RNG; ours a NumPy
  generator, so the distribution is the same, the samples are not.
- ``kind="mixed"``, our earlier pool: boxes from ``problems.generators``
  (``laplace_obstacles``' distribution), a fraction of box-free entries, of smooth
  sources f (Poisson) and of random boundary frequencies.

Round-robin refresh: one entry every ``mean_iters / batch`` steps (integer
arithmetic; with batch 10 and 60 iterations, one entry every 6 steps, as the
authors), so sequences last ``mean_iters`` iterations on average.
"""

from __future__ import annotations

import numpy as np
import torch

from problems.generators import border_mask, obstacle_mask_and_values
from problems.stencil import CENTRE, apply_laplacian
from solvers.metamizer.model import C0

KINDS = ("paper", "mixed")
# saved per entry; mask, g, f, n_interior are redrawn from each entry's saved RNG state
FIELDS = ("u", "grad", "step", "scale", "iters")


def batched_residual(u: torch.Tensor, f: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """r = Lap_h(u) + f on the unknowns, zero on Dirichlet nodes; (B, H, W)."""
    r = torch.zeros_like(u)
    r[..., 1:-1, 1:-1] = apply_laplacian(u) + f[..., 1:-1, 1:-1]
    return r.masked_fill(mask, 0.0)


def _laplacian_detached(u: torch.Tensor) -> torch.Tensor:
    """Lap_h(u), same value and operation order as ``apply_laplacian``, but only the
    centre term carries gradient (the authors' ``laplace_detach``)."""
    n = u.detach()
    edges = n[..., :-2, 1:-1] + n[..., 2:, 1:-1] + n[..., 1:-1, :-2] + n[..., 1:-1, 2:]
    corners = n[..., :-2, :-2] + n[..., :-2, 2:] + n[..., 2:, :-2] + n[..., 2:, 2:]
    return 0.25 * corners + 0.5 * edges + CENTRE * u[..., 1:-1, 1:-1]


def batched_msr(u, f, mask, n_interior, detach_neighbours: bool = False) -> torch.Tensor:
    """Per-sample MSR; ``detach_neighbours``: the authors' training loss (the
    gradient flows through the centre term only)."""
    if detach_neighbours:
        r = torch.zeros_like(u)
        r[..., 1:-1, 1:-1] = _laplacian_detached(u) + f[..., 1:-1, 1:-1]
        r = r.masked_fill(mask, 0.0)
    else:
        r = batched_residual(u, f, mask)
    return (r * r).sum(dim=(-2, -1)) / n_interior


def batched_gradient(u, f, mask, n_interior) -> torch.Tensor:
    """The paper's detached gradient dMSR/du = 2 r (-3) / N (one stencil application)."""
    return batched_residual(u, f, mask) * (2.0 * CENTRE / n_interior)[:, None, None]


def paper_problem(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mask, g, f) of one entry of the authors' Laplace pool (see the module doc)."""
    mask = border_mask(n, n)
    for _ in range(3):
        x0, y0 = rng.integers(10, n - 10, size=2)
        w, h = rng.integers(0, 20, size=2)
        mask[y0:y0 + h, x0:x0 + w] = True
    y, x = np.meshgrid(np.arange(n, dtype=np.float64), np.arange(n, dtype=np.float64), indexing="ij")
    phase = rng.uniform(0.0, 2 * 3.14)  # the authors write 2*3.14, not 2*pi
    a, b = rng.standard_normal(2)
    g = np.sin(phase + 0.1 * (a * x + b * y))
    return mask, g, np.zeros((n, n))


def random_problem(h: int, w: int, rng: np.random.Generator, p_no_boxes: float = 0.2,
                   p_source: float = 0.2, p_freq: float = 0.0,
                   freq_range: tuple[float, float] = (0.005, 0.1)) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mask, g, f) of one entry of the ``mixed`` pool.

    With probability ``p_freq`` the boundary values use a log-uniform spatial
    frequency k in ``freq_range`` instead of 0.1, g = sin(phase + k (a x + b y)):
    smoother (longer-wave) boundary data.
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
    step, scale c and iteration counter per entry. ``rng`` (a NumPy Generator)
    draws the problems and the batches; ``state_dict``/``load_state_dict`` save
    and restore the pool exactly, except ``rng`` itself (the trainer saves that).
    The problem data (mask, g, f) are not stored: each entry keeps the RNG state
    it was drawn from and is redrawn bit for bit on load (keeps the files small)."""

    def __init__(self, size: int, n: int, rng: np.random.Generator, device="cpu", kind: str = "mixed",
                 p_no_boxes: float = 0.2, p_source: float = 0.2, p_freq: float = 0.0,
                 freq_range: tuple[float, float] = (0.005, 0.1), replace: bool = False):
        if kind not in KINDS:
            raise ValueError(f"unknown pool kind {kind!r}; valid: {', '.join(KINDS)}")
        self.size, self.n, self.rng, self.device, self.kind = size, n, rng, torch.device(device), kind
        self.p_no_boxes, self.p_source = p_no_boxes, p_source
        self.p_freq, self.freq_range = p_freq, tuple(freq_range)
        self.replace = replace
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
        self.entry_rng: list[dict | None] = [None] * size
        self.reset(range(size))
        self._rr = 0  # round-robin pointer
        self._acc = 0  # batch-iterations accumulated towards the next refresh

    def _draw(self, rng: np.random.Generator):
        if self.kind == "paper":
            return paper_problem(self.n, rng)
        return random_problem(self.n, self.n, rng, self.p_no_boxes, self.p_source, self.p_freq, self.freq_range)

    def _set_problem(self, i: int, rng: np.random.Generator) -> torch.Tensor:
        mask, g, f = self._draw(rng)
        m = torch.tensor(mask, device=self.device)
        self.mask[i] = m
        self.g[i] = torch.tensor(g, dtype=torch.float64, device=self.device)
        self.f[i] = torch.tensor(f, dtype=torch.float64, device=self.device)
        self.n_interior[i] = float((~mask).sum())
        return m

    def reset(self, idx) -> None:
        """Replace entries ``idx`` by fresh random problems, zero-initialised."""
        for i in (idx.tolist() if torch.is_tensor(idx) else list(idx)):
            self.entry_rng[i] = self.rng.bit_generator.state
            m = self._set_problem(i, self.rng)
            self.u[i] = torch.where(m, self.g[i], torch.zeros_like(self.g[i]))
            self.grad[i] = 0.0
            self.step[i] = 0.0
            self.scale[i] = C0
            self.iters[i] = 0

    def round_robin(self, batch: int, mean_iters: int) -> None:
        """After a step of ``batch`` iterations: refresh the next entries in turn, one
        per ``mean_iters`` iterations done (so sequences average ``mean_iters``)."""
        self._acc += int(batch)
        while self._acc >= int(mean_iters):
            self._acc -= int(mean_iters)
            self.reset([self._rr])
            self._rr = (self._rr + 1) % self.size

    def sample(self, batch: int) -> np.ndarray:
        """Batch indices (with replacement when ``replace``, as the authors' np.random.choice)."""
        return self.rng.choice(self.size, size=batch, replace=self.replace)

    def state_dict(self) -> dict:
        return {**{k: getattr(self, k) for k in FIELDS}, "rr": self._rr, "acc": self._acc,
                "entry_rng": list(self.entry_rng)}

    def load_state_dict(self, st: dict) -> None:
        for i, rs in enumerate(st["entry_rng"]):
            rng = np.random.Generator(type(self.rng.bit_generator)())
            rng.bit_generator.state = rs
            self._set_problem(i, rng)
        self.entry_rng = list(st["entry_rng"])
        for k in FIELDS:
            getattr(self, k).copy_(st[k])
        self._rr, self._acc = int(st["rr"]), int(st["acc"])
