"""torch views of a Problem for gradient-based solvers (first-order, Metamizer).

Fields are full (H, W) float64 tensors on the solver's device. Two gradient
modes of the loss MSR(u) = mean over unknowns of r^2, r = Lap_h(u) + f:

- ``detach`` (the paper's, Appendix I): the neighbour terms of the stencil are
  treated as constants, so dMSR/du = 2 r (-3) / N at each unknown.
- ``exact``: the true gradient 2 L^T r / N (L is symmetric, so L^T r = Lap_h(r)
  with r zero on Dirichlet nodes).

Both cost stencil applications only (no autograd graph), on CPU or CUDA.
"""

from __future__ import annotations

import torch

from problems.base import Problem
from problems.stencil import CENTRE, apply_laplacian

GRADIENT_MODES = ("detach", "exact")


class TorchPhysics:
    def __init__(self, problem: Problem, device: str | torch.device = "cpu"):
        kw = {"dtype": torch.float64, "device": device}
        self.device = torch.device(device)
        self.mask = torch.tensor(problem.mask.copy(), device=device)
        self.interior = ~self.mask
        self.g = torch.tensor(problem.g.copy(), **kw)
        self.f = torch.tensor(problem.f.copy(), **kw)
        self.n_interior = problem.n_interior

    def initial_field(self) -> torch.Tensor:
        return torch.where(self.mask, self.g, torch.zeros_like(self.g))

    def apply_dirichlet(self, u: torch.Tensor) -> torch.Tensor:
        """Reset Dirichlet nodes to g, in place; returns u."""
        return u.copy_(torch.where(self.mask, self.g, u))

    def residual(self, u: torch.Tensor) -> torch.Tensor:
        """r = Lap_h(u) + f on the unknowns, zero on Dirichlet nodes; shape (H, W)."""
        r = torch.zeros_like(u)
        r[..., 1:-1, 1:-1] = apply_laplacian(u) + self.f[1:-1, 1:-1]
        return r.masked_fill_(self.mask, 0.0)

    def msr(self, u: torch.Tensor) -> torch.Tensor:
        r = self.residual(u)
        return (r * r).sum() / self.n_interior

    def gradient(self, u: torch.Tensor, mode: str = "detach") -> torch.Tensor:
        """dMSR/du in the given mode, zero on Dirichlet nodes. Stencil applications:
        1 (detach) or 2 (exact)."""
        r = self.residual(u)
        if mode == "detach":
            return r.mul_(2.0 * CENTRE / self.n_interior)
        if mode == "exact":
            grad = torch.zeros_like(u)
            grad[..., 1:-1, 1:-1] = apply_laplacian(r)
            return grad.masked_fill_(self.mask, 0.0).mul_(2.0 / self.n_interior)
        raise ValueError(f"unknown gradient mode {mode!r}; valid: {', '.join(GRADIENT_MODES)}")

    @staticmethod
    def stencils_per_gradient(mode: str) -> int:
        return 1 if mode == "detach" else 2
