"""Shape Adaptor (Liu et al., ECCV 2020): a resizing layer whose scale is learned.

σ = sigmoid(α), s = r1 + (r2 − r1)·σ. The output is (1 − σ)·resize(maxpool2×2(x)) + σ·resize(x),
both bilinear (align_corners=True) to floor(s·H) × floor(s·W) (at least 1). The size is an integer
read from a detached σ, so α learns only through the mixing weights, as in the paper.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

#: initial σ is kept inside this range so that α stays finite
SIGMA_INIT_RANGE = (0.05, 0.95)
#: the paper's target: the image shrinks to about 8 pixels after all adaptors
TARGET_SIZE = 8


def initial_alpha(input_size: int, count: int, r1: float = 0.5, r2: float = 1.0) -> float:
    """The paper's α₀: chosen so that input·s₀^N = 8 (CIFAR 32, N = 4: s₀ = 0.7071, α₀ = −0.3466,
    quoted as −0.346), with σ₀ clipped to [0.05, 0.95] when that target is out of reach.

    >>> round(initial_alpha(32, 4), 4)
    -0.3466
    """
    s0 = (TARGET_SIZE / input_size) ** (1.0 / max(count, 1))
    sigma = (s0 - r1) / (r2 - r1) if r2 > r1 else 0.5
    sigma = min(max(sigma, SIGMA_INIT_RANGE[0]), SIGMA_INIT_RANGE[1])
    return math.log(sigma / (1.0 - sigma))


def _mix(x: torch.Tensor, sigma: torch.Tensor | float, size: tuple[int, int]) -> torch.Tensor:
    low = F.max_pool2d(x, 2, 2, ceil_mode=True)  # the r1 branch; ceil mode handles 1-pixel inputs
    low = F.interpolate(low, size=size, mode="bilinear", align_corners=True)
    high = F.interpolate(x, size=size, mode="bilinear", align_corners=True)
    return (1 - sigma) * low + sigma * high


class ShapeAdaptor(nn.Module):
    """Learnable resizing; ``alpha`` is its only parameter (trained by its own optimizer).

    >>> sa = ShapeAdaptor(alpha_init=0.0)  # σ = 0.5, s = 0.75
    >>> sa(torch.zeros(1, 3, 32, 32)).shape
    torch.Size([1, 3, 24, 24])
    """

    def __init__(self, r1: float = 0.5, r2: float = 1.0, alpha_init: float = 0.0) -> None:
        super().__init__()
        self.r1, self.r2 = r1, r2
        self.alpha_init = float(alpha_init)
        self.alpha = nn.Parameter(torch.tensor(self.alpha_init))
        #: the output size of the latest forward pass (what the deploy form freezes)
        self.last_size: tuple[int, int] | None = None

    @property
    def sigma(self) -> float:
        if self.alpha.is_meta:  # built on the meta device (cost counting): the spec's σ
            return 1.0 / (1.0 + math.exp(-self.alpha_init))
        return float(torch.sigmoid(self.alpha.detach()))

    def scale(self) -> float:
        return self.r1 + (self.r2 - self.r1) * self.sigma

    def output_size(self, h: int, w: int) -> tuple[int, int]:
        s = self.scale()
        return max(1, math.floor(s * h)), max(1, math.floor(s * w))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = self.output_size(int(x.shape[-2]), int(x.shape[-1]))
        self.last_size = size
        return _mix(x, torch.sigmoid(self.alpha), size)

    def deploy_form(self) -> nn.Module:
        if self.last_size is None:
            raise RuntimeError("ShapeAdaptor.deploy_form needs one forward pass to know its size")
        return FrozenShapeAdaptor(self.sigma, self.last_size)


class FrozenShapeAdaptor(nn.Module):
    """The deploy form: σ and the output size fixed (traceable, exportable)."""

    def __init__(self, sigma: float, size: tuple[int, int]) -> None:
        super().__init__()
        self.sigma = float(sigma)
        self.size = (int(size[0]), int(size[1]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _mix(x, self.sigma, self.size)

    def extra_repr(self) -> str:
        return f"sigma={self.sigma:.4f}, size={self.size}"
