"""The forward path of the Metamizer network for a grid, chosen in setup.

Paths: ``eager`` (contiguous NCHW) and ``channels_last`` (NHWC memory format for
weights and activations, which oneDNN/cuDNN convolutions often run faster).
Modes (``solver.fast_path``):

- ``auto`` (default): channels_last when the network's work per forward,
  hidden^2 x H x W, is at least ``CL_MIN_WORK``, else eager; channels_last is then
  kept only if its output on the problem's real first input equals eager's within
  float32 rounding. A fixed rule rather than a timing race on purpose: the two
  paths round differently, and near machine precision the MSR trajectories part by
  decades (measured: laplace_bilinear n=32, iteration 40: 1.3e-28 eager vs 7.5e-25
  channels_last), so a choice by noisy timings would make reruns of one sweep, and
  the regression check, differ. The threshold comes from CPU measurements in
  MODEL_CARD.md (channels_last ~1.5-2.7x faster for hidden 20 at 64-256 and hidden
  10 at 256, even for hidden 10 at 64-128).
- ``timed``: time both on the first input (best of 3 after a warm-up) and take
  channels_last when it needs <= ``MARGIN`` of eager's time (fastest on this machine,
  not reproducible run to run).
- ``eager`` | ``channels_last``: forced.

``torch.compile`` is not offered: on the CPU its compile time (117 s for one grid
size here, MODEL_CARD.md) dwarfs any solve it could speed up.
"""

from __future__ import annotations

import time

import torch

PATHS = ("eager", "channels_last")
MODES = ("auto", "timed", *PATHS)
RTOL = 1e-4  # float32 rounding through ~20 layers (observed differences ~1e-6)
CL_MIN_WORK = 2.0e6  # hidden^2 * H * W from which auto uses channels_last
MARGIN = 0.8  # timed: switch away from eager only for a clear gain


def tf32_off() -> None:
    """Full float32 on CUDA (the network was trained and is evaluated without TF32)."""
    set_cuda_numerics(tf32=False, cudnn_benchmark=False)


def set_cuda_numerics(tf32: bool, cudnn_benchmark: bool) -> None:
    """TF32 for matmuls and cuDNN convolutions, and cuDNN's algorithm benchmarking.

    ``tf32=True, cudnn_benchmark=True`` are the authors' GPU settings (their scripts call
    ``torch.set_float32_matmul_precision('high')``, keep cuDNN's default TF32 convolutions
    and set ``cudnn.benchmark = True``). Process-wide flags: the harness runs every job in
    its own child process, so they never leak into another job."""
    torch.set_float32_matmul_precision("high" if tf32 else "highest")
    torch.backends.cuda.matmul.allow_tf32 = bool(tf32)
    torch.backends.cudnn.allow_tf32 = bool(tf32)
    torch.backends.cudnn.benchmark = bool(cudnn_benchmark)


def apply_path(model, path: str) -> None:
    if path not in PATHS:
        raise ValueError(f"unknown fast path {path!r}; valid: {', '.join(PATHS)}")
    fmt = torch.channels_last if path == "channels_last" else torch.contiguous_format
    model.nn.to(memory_format=fmt)
    model.nn.memory_format = fmt


def _time(model, x, device, reps: int = 3) -> float:
    best = float("inf")
    for _ in range(reps + 1):  # the first run is a warm-up
        if str(device).startswith("cuda"):
            torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        model.nn(x)
        if str(device).startswith("cuda"):
            torch.cuda.synchronize(device)
        best = min(best, time.perf_counter() - t0)
    return best


def _same(a, b) -> bool:
    tol = RTOL * float(a[0].abs().max()) + 1e-6
    return bool((a[0] - b[0]).abs().max() <= tol) and torch.allclose(a[1], b[1], rtol=RTOL, atol=1e-5)


@torch.inference_mode()
def choose_path(model, x: torch.Tensor, mode: str = "auto", device="cpu") -> str:
    """Set and return the forward path for input ``x`` (B, 3, H, W) per ``mode``."""
    if mode in PATHS:
        apply_path(model, mode)
        return mode
    if mode not in MODES:
        raise ValueError(f"unknown fast_path {mode!r}; valid: {', '.join(MODES)}")
    apply_path(model, "eager")
    ref = model.nn(x)
    t_eager = _time(model, x, device) if mode == "timed" else None
    want = model.hidden ** 2 * x.shape[-2] * x.shape[-1] >= CL_MIN_WORK if mode == "auto" else True
    if want:
        apply_path(model, "channels_last")
        if _same(ref, model.nn(x)) and (mode == "auto" or _time(model, x, device) <= MARGIN * t_eager):
            return "channels_last"
    apply_path(model, "eager")
    return "eager"
