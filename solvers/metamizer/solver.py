"""Metamizer as a harness Solver (family ``neural``).

Each iteration: the detached gradient of the MSR at u (one stencil application,
``TorchPhysics.gradient(u, "detach")``), one network step in float32 on
normalised inputs, the float64 update ``u <- u + d`` and the Dirichlet reset.
The network runs in eval mode under ``torch.inference_mode``; the model load,
the physics tensors and one warm-up forward pass happen in ``setup`` (untimed).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from solvers.base import Solver, cuda_unavailable_reason, torch_sync

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_DIR.parent.parent
DEFAULT_CHECKPOINT = "solvers/metamizer/checkpoints/metamizer_h10.safetensors"


def resolve_checkpoint(path: str | Path) -> Path:
    """An absolute path as is; a relative one against the repo root, then this package."""
    p = Path(path).expanduser()
    if p.is_absolute():
        return p
    for base in (REPO_ROOT, PACKAGE_DIR, Path.cwd()):
        if (base / p).is_file():
            return base / p
    return REPO_ROOT / p


class Metamizer(Solver):
    """Parameters (``conf/solver/metamizer.yaml``): ``checkpoint`` (path, relative to
    the repo root or this package), ``hidden`` and ``variant`` (``batch`` | ``group``;
    checked against the file), ``gradient`` (``detach``, the paper's, or ``exact``)."""

    family = "neural"
    backend = "torch"

    def __init__(self, name: str = "metamizer", device: str = "cpu", **params: Any):
        params.setdefault("checkpoint", DEFAULT_CHECKPOINT)
        params.setdefault("gradient", "detach")
        super().__init__(name, device, **params)
        self.model = None
        self.physics = None

    @property
    def checkpoint_path(self) -> Path:
        return resolve_checkpoint(self.params["checkpoint"])

    def available(self) -> str | None:
        reason = cuda_unavailable_reason(self.device)
        if reason:
            return reason
        if self.params["gradient"] not in ("detach", "exact"):
            return f"unknown gradient mode {self.params['gradient']!r} (set solver.gradient=detach or exact)"
        path = self.checkpoint_path
        if not path.is_file():
            return (f"checkpoint {path} not found: train one with python -m solvers.metamizer.train "
                    f"or set solver.checkpoint=PATH")
        from solvers.metamizer.checkpoint import CheckpointError

        try:
            self._load()
        except CheckpointError as exc:
            return str(exc)
        return None

    def _load(self):
        from solvers.metamizer.checkpoint import load

        if self.model is None:
            self.model, self.meta = load(self.checkpoint_path, hidden=self.params.get("hidden"),
                                         norm=self.params.get("variant"), device=self.device)
        return self.model

    def setup(self, problem) -> None:
        from problems.torch_ops import TorchPhysics

        model = self._load().eval()
        self.physics = TorchPhysics(problem, self.device)
        self._interior = self.physics.interior[None]
        with torch.inference_mode():  # warm-up: allocator and kernels for this grid size
            u = self.physics.initial_field()[None]
            state = model.initial_state(u)
            grad = self.physics.gradient(u[0], self.params["gradient"])[None]
            model.step(grad, state, interior=self._interior)
        self.sync()

    def solve(self, problem, monitor):
        phys, model, mode = self.physics, self.model, self.params["gradient"]
        per = phys.stencils_per_gradient(mode)
        mask, g, interior = phys.mask, phys.g, self._interior
        self.matvecs = 0
        with torch.inference_mode():
            u = phys.initial_field()
            state = model.initial_state(u[None])
            for k in range(1, monitor.max_iters + 1):
                grad = phys.gradient(u, mode)
                d, state = model.step(grad[None], state, interior=interior)
                u = torch.where(mask, g, u + d[0])
                self.matvecs += per
                monitor(k, u)
        return u

    def sync(self) -> None:
        torch_sync(self.device)

    def describe(self) -> dict[str, Any]:
        out = dict(self.params)
        out["checkpoint"] = str(self.params["checkpoint"])
        return out
