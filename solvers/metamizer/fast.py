"""The fastest forward path of the Metamizer network for a grid, chosen in setup.

Candidates: ``eager`` (contiguous NCHW) and ``channels_last`` (NHWC memory
format for weights and activations, which oneDNN/cuDNN convolutions often
prefer). ``choose_path(..., "auto")`` times each on the real first input of
the problem (best of 3 forwards, after one warm-up), keeps a candidate only
if its output equals eager's within float32 rounding, and picks it over eager
only if it takes <= MARGIN of eager's time.
``torch.compile`` is not a candidate: on the CPU its compile time (tens of
seconds per grid size, measured in MODEL_CARD.md) dwarfs any solve it could speed up.
"""

from __future__ import annotations

import time

import torch

PATHS = ("eager", "channels_last")
RTOL = 1e-4  # float32 rounding through ~20 layers (observed differences ~1e-6)
MARGIN = 0.8  # switch away from eager only for a clear gain (<= 80 % of eager's time): the
# trajectories of two paths part at the rounding level and can differ by decades in the
# MSR tail near machine precision, so a coin-flip choice would make reruns differ


def tf32_off() -> None:
    """Full float32 on CUDA (the network was trained and is evaluated without TF32)."""
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False


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


@torch.inference_mode()
def choose_path(model, x: torch.Tensor, mode: str = "auto", device="cpu") -> str:
    """Set and return the forward path: ``mode`` itself, or the fastest of PATHS that
    reproduces eager within float32 rounding and beats it by a clear margin when
    ``mode == "auto"``."""
    if mode != "auto":
        apply_path(model, mode)
        return mode
    apply_path(model, "eager")
    ref_field, ref_scalar = model.nn(x)
    times = {"eager": _time(model, x, device)}
    for path in PATHS[1:]:
        apply_path(model, path)
        field, scalar = model.nn(x)
        tol = RTOL * float(ref_field.abs().max()) + 1e-6
        if (field - ref_field).abs().max() <= tol and torch.allclose(scalar, ref_scalar, rtol=RTOL, atol=1e-5):
            times[path] = _time(model, x, device)
    best = min(times, key=times.get)
    if times[best] > MARGIN * times["eager"]:
        best = "eager"
    apply_path(model, best)
    return best
