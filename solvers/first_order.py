"""First-order optimisers from torch.optim on the MSR loss, fields in float64.

Each iteration computes the gradient with stencils (``problems.torch_ops``, no
autograd graph), hands it to the optimiser, steps, and resets the Dirichlet
nodes. ``gradient: detach`` is the paper's gradient (what its baselines saw);
``exact`` is the true gradient of the MSR.
"""

from __future__ import annotations

import torch

from problems.torch_ops import GRADIENT_MODES, TorchPhysics
from solvers.base import Solver, cuda_unavailable_reason, torch_sync

OPTIMIZERS = {
    "sgd": torch.optim.SGD,
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "rmsprop": torch.optim.RMSprop,
    "adagrad": torch.optim.Adagrad,
    "adadelta": torch.optim.Adadelta,
}


class TorchOptimizer(Solver):
    family = "first_order"
    bytes_per_node = 100  # torch fields, autograd buffers
    backend = "torch"

    def __init__(self, name: str, optimizer: str = "adam", lr: float = 0.01, gradient: str = "detach",
                 device: str = "cpu", options: dict | None = None, **params):
        if optimizer not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {optimizer!r}; valid: {', '.join(OPTIMIZERS)}")
        if gradient not in GRADIENT_MODES:
            raise ValueError(f"unknown gradient mode {gradient!r}; valid: {', '.join(GRADIENT_MODES)}")
        if not lr > 0:
            raise ValueError(f"solver.lr must be positive (got {lr!r})")
        options = dict(options or {})
        super().__init__(name, device=device, optimizer=optimizer, lr=lr, gradient=gradient,
                         options=options, **params)
        self.optimizer, self.lr, self.gradient, self.options = optimizer, lr, gradient, options

    def available(self):
        return cuda_unavailable_reason(self.device)

    def setup(self, problem):
        self.physics = TorchPhysics(problem, self.device)
        self.per_step = TorchPhysics.stencils_per_gradient(self.gradient)
        self.matvecs = 0  # the device and allocator warm up in the harness's untimed warm-up solve

    def _run(self, iters, callback):
        u = self.physics.initial_field()
        opt = OPTIMIZERS[self.optimizer]([u], lr=self.lr, **self.options)
        with torch.no_grad():
            for k in range(1, iters + 1):
                u.grad = self.physics.gradient(u, self.gradient)
                opt.step()
                self.physics.apply_dirichlet(u)
                self.matvecs += self.per_step
                callback(k, u)
        return u

    def solve(self, problem, monitor):
        self.matvecs = 0
        return self._run(monitor.max_iters, monitor)

    def sync(self):
        torch_sync(self.device)

    def teardown(self):
        self.physics = None
        if str(self.device).startswith("cuda"):
            torch.cuda.empty_cache()  # leave the GPU memory to the next job (CuPy, AMGX)
