"""The Metamizer network and its update rule (Wandel et al., ICLR 2025).

Rebuilt from the paper and the facts of the authors' public code:

- inputs: current gradient g_t, previous gradient g_{t-1}, previous step d_{t-1},
  the gradients divided by the RMS of g_t, the step by its own RMS, each soft
  clamped as ``10 tanh(x / 10)``, then cast to float32 for the network;
- a 4-level U-Net (bilinear upsampling, pad-to-skip) whose 1x1 output gives the
  step direction ``tanh(field)`` and whose bottleneck (channel-wise max over
  space) feeds a scalar head giving the scale multiplier
  ``m = exp(2 tanh(s / 2) - 1)``;
- the scale c_t = c_{t-1} m (c_0 = 0.05), the step d_t = direction * c_t, all in
  float64.

Module attribute names follow the authors' checkpoint layout (``nn.inc.double_conv.*``,
``nn.down1.maxpool_conv.1.double_conv.*``, ``nn.up1.conv.double_conv.*``,
``nn.outc.conv.*``, ``nn.out_scalar.*``).

Example
-------
>>> import torch
>>> m = MetamizerNet(hidden=4).eval()
>>> st = m.initial_state(torch.zeros(1, 20, 20, dtype=torch.float64))
>>> d, st = m.step(torch.randn(1, 20, 20, dtype=torch.float64), st)
>>> d.shape
torch.Size([1, 20, 20])
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

C0 = 0.05  # initial step scale (small first steps avoid early divergence)
EPS_RMS = 1e-40  # lower clamp of the RMS normalisers (float64)
SOFT_CLAMP = 10.0
MIN_SIZE = 16  # 4 poolings need >= 16 nodes per side; smaller grids are zero-padded
NORMS = ("batch", "group")

# The network variants the harness knows, by name. ``bias``: Conv2d biases inside
# DoubleConv; ``raw_step``: d_{t-1} fed back is the raw network step (the authors'
# choice; Dirichlet nodes keep it) instead of the step actually applied (zero there).
VARIANTS = {
    "paper": {"norm": "batch", "bias": True, "raw_step": True},   # the authors' network
    "batch": {"norm": "batch", "bias": False, "raw_step": False},  # our earlier BatchNorm build
    "group": {"norm": "group", "bias": False, "raw_step": False},  # GroupNorm (improved) build
}


def variant_of(norm: str, bias: bool, raw_step: bool) -> str | None:
    for name, v in VARIANTS.items():
        if v == {"norm": norm, "bias": bool(bias), "raw_step": bool(raw_step)}:
            return name
    return None


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "group":
        # per-sample statistics: identical in training and inference, batch-size free
        groups = 2 if channels % 2 == 0 else 1
        return nn.GroupNorm(groups, channels)
    raise ValueError(f"unknown norm {kind!r}; valid: {', '.join(NORMS)}")


class DoubleConv(nn.Module):
    """(3x3 conv, norm, ReLU) x 2, padding 1."""

    def __init__(self, cin: int, cout: int, mid: int | None = None, norm: str = "batch", bias: bool = False):
        super().__init__()
        mid = mid or cout
        self.double_conv = nn.Sequential(
            nn.Conv2d(cin, mid, kernel_size=3, padding=1, bias=bias),
            _norm(norm, mid),
            nn.ReLU(inplace=True),
            nn.Conv2d(mid, cout, kernel_size=3, padding=1, bias=bias),
            _norm(norm, cout),
            nn.ReLU(inplace=True),
        )

    def forward(self, x):
        return self.double_conv(x)


class Down(nn.Module):
    def __init__(self, cin: int, cout: int, norm: str = "batch", bias: bool = False):
        super().__init__()
        self.maxpool_conv = nn.Sequential(nn.MaxPool2d(2), DoubleConv(cin, cout, norm=norm, bias=bias))

    def forward(self, x):
        return self.maxpool_conv(x)


class Up(nn.Module):
    """Bilinear x2 upsampling, pad to the skip's size, concatenate, DoubleConv."""

    def __init__(self, cin: int, cout: int, norm: str = "batch", bias: bool = False):
        super().__init__()
        self.up = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True)
        self.conv = DoubleConv(cin, cout, cin // 2, norm=norm, bias=bias)

    def forward(self, x, skip):
        x = self.up(x)
        dy = skip.shape[-2] - x.shape[-2]
        dx = skip.shape[-1] - x.shape[-1]
        if dy or dx:  # odd sizes: floor pooling lost a row/column
            x = F.pad(x, [dx // 2, dx - dx // 2, dy // 2, dy - dy // 2])
        return self.conv(torch.cat([skip, x], dim=1))


class OutConv(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel_size=1)

    def forward(self, x):
        return self.conv(x)


class UNet(nn.Module):
    """4-level U-Net, channels h, 2h, 4h, 8h, 8h (bilinear variant), plus the
    scalar head ``out_scalar`` = Linear(8h -> 1) on the spatial amax of the bottleneck."""

    def __init__(self, hidden: int = 10, cin: int = 3, norm: str = "batch", bias: bool = False):
        super().__init__()
        h, b = hidden, bias
        self.inc = DoubleConv(cin, h, norm=norm, bias=b)
        self.down1 = Down(h, 2 * h, norm, b)
        self.down2 = Down(2 * h, 4 * h, norm, b)
        self.down3 = Down(4 * h, 8 * h, norm, b)
        self.down4 = Down(8 * h, 8 * h, norm, b)
        self.up1 = Up(16 * h, 4 * h, norm, b)
        self.up2 = Up(8 * h, 2 * h, norm, b)
        self.up3 = Up(4 * h, h, norm, b)
        self.up4 = Up(2 * h, h, norm, b)
        self.outc = OutConv(h, 1)
        self.out_scalar = nn.Linear(8 * h, 1)
        self.memory_format = torch.contiguous_format  # fast.apply_path may pick channels_last

    def forward(self, x):
        """(B, 3, H, W) float32 -> field (B, H, W), scalar (B,)."""
        H, W = x.shape[-2:]
        if H < MIN_SIZE or W < MIN_SIZE:
            x = F.pad(x, [0, max(0, MIN_SIZE - W), 0, max(0, MIN_SIZE - H)])
        if self.memory_format is not torch.contiguous_format:
            x = x.contiguous(memory_format=self.memory_format)
        x1 = self.inc(x)
        x2 = self.down1(x1)
        x3 = self.down2(x2)
        x4 = self.down3(x3)
        x5 = self.down4(x4)
        scalar = self.out_scalar(torch.amax(x5, dim=(-2, -1)))[:, 0]
        y = self.up1(x5, x4)
        y = self.up2(y, x3)
        y = self.up3(y, x2)
        y = self.up4(y, x1)
        field = self.outc(y)[:, 0, :H, :W]
        return field, scalar


class _GradNorm(torch.autograd.Function):
    """Identity forward; backward rescales the gradient per sample to unit L2 norm
    (then clamps to [-10, 10] and zeroes non-finite values)."""

    @staticmethod
    def forward(ctx, x):
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        flat = grad.reshape(grad.shape[0], -1)
        norm = flat.norm(dim=1).clamp_min(1e-40)  # torch.nn.functional.normalize(eps=1e-40), as the authors
        out = (flat / norm[:, None]).clamp(-10.0, 10.0)
        return torch.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0).view_as(grad)


def grad_norm(x: torch.Tensor) -> torch.Tensor:
    return _GradNorm.apply(x)


@dataclass
class State:
    """Per-sample optimiser state: previous gradient, previous step, scale c."""

    grad: torch.Tensor  # (B, H, W) float64
    step: torch.Tensor  # (B, H, W) float64
    scale: torch.Tensor  # (B,) float64


def _rms(x: torch.Tensor) -> torch.Tensor:
    """RMS over the field, (B, H, W) -> (B, 1, 1), clamped below by EPS_RMS."""
    return torch.sqrt(torch.mean(x * x, dim=(-2, -1), keepdim=True)).clamp_min(EPS_RMS)


def _rms_authors(x: torch.Tensor) -> torch.Tensor:
    """The authors' order: the L2 norm clamped below by EPS_RMS, then / sqrt(H W)."""
    n = x.shape[-2] * x.shape[-1]
    return torch.linalg.vector_norm(x, dim=(-2, -1), keepdim=True).clamp_min(EPS_RMS) / n ** 0.5


class MetamizerNet(nn.Module):
    """The neural optimiser: ``step(grad, state) -> (d, new_state)``.

    Parameters
    ----------
    hidden : U-Net base width h (the paper used 20).
    norm : ``"batch"`` (BatchNorm, as the authors) or ``"group"`` (GroupNorm, same
        in training and inference).
    bias : Conv2d biases inside DoubleConv (the authors keep PyTorch's default, True).
    raw_step : feed back the raw network step as d_{t-1} (the authors), rather than
        the applied step that is zero on Dirichlet nodes.
    ``MetamizerNet.from_variant("paper", 20)`` is the authors' network.
    """

    def __init__(self, hidden: int = 10, norm: str = "batch", bias: bool = False, raw_step: bool = False):
        super().__init__()
        self.hidden = hidden
        self.norm = norm
        self.bias = bool(bias)
        self.raw_step = bool(raw_step)
        self.nn = UNet(hidden, 3, norm, self.bias)

    @classmethod
    def from_variant(cls, variant: str, hidden: int) -> MetamizerNet:
        if variant not in VARIANTS:
            raise ValueError(f"unknown Metamizer variant {variant!r}; valid: {', '.join(VARIANTS)}")
        return cls(hidden, **VARIANTS[variant])

    @property
    def variant(self) -> str | None:
        return variant_of(self.norm, self.bias, self.raw_step)

    @staticmethod
    def initial_state(like: torch.Tensor) -> State:
        b = like.shape[0]
        z = torch.zeros_like(like, dtype=torch.float64)
        return State(z, z.clone(), torch.full((b,), C0, dtype=torch.float64, device=like.device))

    def features(self, grad: torch.Tensor, state: State) -> torch.Tensor:
        """The normalised, soft-clamped network input, (B, 3, H, W) float32.

        The ``paper`` variant (``raw_step``) follows the authors' arithmetic: RMS as
        clamped norm / sqrt(HW), soft clamp in float64, then the float32 cast. The
        other variants keep the order they were trained with (cast, then clamp in
        float32); the two agree to float32 rounding."""
        rms = _rms_authors if self.raw_step else _rms
        s_g = rms(grad)
        s_d = rms(state.step)
        scales = torch.stack((s_g, s_g, s_d), dim=1)  # (B, 3, 1, 1)
        x = torch.stack((grad, state.grad, state.step), dim=1) / scales
        if self.raw_step:
            return x.div_(SOFT_CLAMP).tanh_().mul_(SOFT_CLAMP).float()
        return x.float().div_(SOFT_CLAMP).tanh_().mul_(SOFT_CLAMP)  # inf -> +-10

    def step(self, grad: torch.Tensor, state: State, train: bool = False,
             interior: torch.Tensor | None = None) -> tuple[torch.Tensor, State]:
        """One proposed update.

        grad : (B, H, W) float64, dLoss/du (zero on Dirichlet nodes).
        interior : optional (B, H, W) or (H, W) bool; the returned step is zeroed
            elsewhere. The next d_{t-1} is that applied step, or with ``raw_step`` the
            network's step before masking.
        train : apply gradient normalisation on the backward pass.
        Returns the float64 step d_t and the new state.
        """
        field, scalar = self.nn(self.features(grad, state))
        direction = torch.tanh(field.double())
        expo = 2.0 * torch.tanh(scalar.double() / 2.0) - 1.0
        if train:
            direction = grad_norm(direction)
            expo = grad_norm(expo[:, None])[:, 0]
        scale = state.scale * torch.exp(expo)
        d = direction * scale[:, None, None]
        raw = d
        if interior is not None:
            d = d * interior
        return d, State(grad, raw if self.raw_step else d, scale)
