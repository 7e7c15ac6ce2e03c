"""Metamizer as a harness Solver (family ``neural``).

Each iteration: the detached gradient of the MSR at u (one stencil application,
``TorchPhysics.gradient(u, "detach")``), one network step in float32 on
normalised inputs, the float64 update ``u <- u + d`` and the Dirichlet reset.
The network runs in eval mode under ``torch.inference_mode``.

``available()`` only checks cheap facts (device, file present, the layout in a
safetensors header). Everything that costs time happens in ``setup`` and is
reported as setup_s: the model load, the move to the device (CUDA context,
weight upload), the choice of the forward path for this grid (``fast.py``) and
a warm-up iteration.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch

from solvers.base import Solver, cuda_unavailable_reason, torch_sync

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_DIR.parent.parent
DEFAULT_CHECKPOINT = "solvers/metamizer/checkpoints/metamizer_groupnorm_h10.safetensors"
# The authors' published hidden-20 file (19.state) was saved after about 19 epochs of 5,000 batches: the
# length a model of their recipe is compared with, wherever it is compared (MODEL_CARD.md).
AUTHORS_STEPS = 95_000


def resolve_checkpoint(path: str | Path) -> Path:
    """An absolute path as is; a relative one against the repo root, then this package."""
    p = Path(path).expanduser()
    if p.is_absolute():
        return p
    for base in (REPO_ROOT, PACKAGE_DIR, Path.cwd()):
        if (base / p).is_file():
            return base / p
    return REPO_ROOT / p


def sha256_prefix(path: Path, n: int = 12) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:n]


class Metamizer(Solver):
    """Parameters (``conf/solver/metamizer*.yaml``): ``checkpoint`` (path, relative to
    the repo root or this package; ours .safetensors or the authors' .state),
    ``hidden`` and ``variant`` (``paper`` | ``batch`` | ``group``, see
    ``model.VARIANTS``; checked against the file), ``gradient`` (``detach``, the
    paper's, or ``exact``), ``fast_path`` (``auto``: channels_last for large
    grids, checked against eager in setup; ``timed``; ``eager`` | ``channels_last``;
    see ``fast.py``), and on CUDA ``tf32`` and ``cudnn_benchmark`` (both false: full
    float32, fixed algorithms; both true: the authors' GPU settings; cuDNN's benchmarking
    happens in setup's warm-up iteration, off the clock)."""

    family = "neural"
    bytes_per_node = 150  # U-Net activations in float32 (inference mode), measured (docs/ROBUSTNESS.md)
    backend = "torch"

    def __init__(self, name: str = "metamizer", device: str = "cpu", **params: Any):
        params.setdefault("checkpoint", DEFAULT_CHECKPOINT)
        params.setdefault("gradient", "detach")
        params.setdefault("fast_path", "auto")
        params.setdefault("tf32", False)
        params.setdefault("cudnn_benchmark", False)
        super().__init__(name, device, **params)
        self.model = None
        self.meta: dict[str, str] = {}
        self.physics = None
        self.forward_path = None  # the chosen fast path (set in setup)
        self._describe_cache: dict[str, Any] | None = None

    @property
    def checkpoint_path(self) -> Path:
        return resolve_checkpoint(self.params["checkpoint"])

    def available(self) -> str | None:
        """Cheap: no model load, no CUDA context (see the module docstring)."""
        from solvers.metamizer.fast import MODES

        reason = cuda_unavailable_reason(self.device)
        if reason:
            return reason
        if self.params["gradient"] not in ("detach", "exact"):
            return f"unknown gradient mode {self.params['gradient']!r} (set solver.gradient=detach or exact)"
        for key in ("tf32", "cudnn_benchmark"):
            if not isinstance(self.params[key], bool):
                return f"solver.{key}={self.params[key]!r} must be true or false"
        if self.params["fast_path"] not in MODES:
            return (f"unknown fast_path {self.params['fast_path']!r} "
                    f"(set solver.fast_path to one of {', '.join(MODES)})")
        path = self.checkpoint_path
        if not path.is_file():
            return (f"checkpoint {path} not found: train one with python -m solvers.metamizer.train "
                    f"or set solver.checkpoint=PATH")
        if path.suffix == ".safetensors":  # the header only (no tensors read)
            from solvers.metamizer.checkpoint import CheckpointError, read_metadata

            try:
                meta = read_metadata(path)
            except CheckpointError as exc:
                return str(exc)
            want = self.params.get("hidden")
            if want is not None and "hidden" in meta and int(meta["hidden"]) != int(want):
                return (f"checkpoint {path} has hidden={meta['hidden']}, the config asks for hidden={want}"
                        f" (set solver.hidden={meta['hidden']})")
            var = self.params.get("variant")
            if var is not None and meta.get("variant") not in (None, "None", var):
                return (f"checkpoint {path} holds variant {meta['variant']}, the config asks for "
                        f"variant={var} (set solver.variant={meta['variant']})")
        return None

    def _load(self):
        from solvers.metamizer.checkpoint import load

        self.model, self.meta = load(self.checkpoint_path, hidden=self.params.get("hidden"),
                                     variant=self.params.get("variant"), device=self.device)
        return self.model

    def setup(self, problem) -> None:
        from problems.torch_ops import TorchPhysics
        from solvers.metamizer.fast import choose_path, set_cuda_numerics

        if str(self.device).startswith("cuda"):
            set_cuda_numerics(bool(self.params["tf32"]), bool(self.params["cudnn_benchmark"]))
        model = self._load().eval()  # model load and weight upload: part of setup_s
        self.physics = TorchPhysics(problem, self.device)
        self._interior = self.physics.interior[None]
        with torch.inference_mode():
            u = self.physics.initial_field()[None]
            state = model.initial_state(u)
            grad = self.physics.gradient(u[0], self.params["gradient"])[None]
            x = model.features(grad, state)
            self.forward_path = choose_path(model, x, self.params["fast_path"], self.device)
            model.step(grad, state, interior=self._interior)  # warm-up of the whole iteration
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
        """Parameters plus the checkpoint's provenance and training cost (flat keys),
        read from the file's header: the report can weigh training against solves."""
        if self._describe_cache is None:
            out = {k: (str(v) if k == "checkpoint" else v) for k, v in self.params.items()}
            path = self.checkpoint_path
            meta: dict[str, str] = {}
            if path.is_file():
                out["checkpoint_sha256"] = sha256_prefix(path)
                if path.suffix == ".safetensors":
                    from solvers.metamizer.checkpoint import CheckpointError, read_metadata

                    try:
                        meta = read_metadata(path)
                    except CheckpointError:
                        meta = {}
            out["checkpoint"] = path.name
            out["training_wall_s"] = _num(meta.get("training_wall_s", meta.get("wall_s")))
            out["training_steps"] = _num(meta.get("training_steps", meta.get("step")))
            out["training_hardware"] = meta.get("training_hardware")
            out["training_recipe"] = meta.get("recipe")
            if meta.get("recipe") == "paper":
                out["training_authors_steps"] = AUTHORS_STEPS
            self._describe_cache = out
        out = dict(self._describe_cache)
        if self.forward_path is not None:
            out["forward_path"] = self.forward_path
        if str(self.device).startswith("cuda"):  # what the process actually ran with
            out["tf32"] = bool(torch.backends.cuda.matmul.allow_tf32 or torch.backends.cudnn.allow_tf32)
            out["cudnn_benchmark"] = bool(torch.backends.cudnn.benchmark)
        return out


def _num(v: str | None) -> float | int | None:
    if v is None:
        return None
    try:
        x = json.loads(v)
    except ValueError:
        return None
    return x if isinstance(x, (int, float)) else None
