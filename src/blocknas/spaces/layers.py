"""Small building pieces shared by ops and blocks: activations, conv-BN, SE, shortcuts.

Every "conv followed by BN" in the library is a :class:`ConvBN`, so folding BN for the deploy
form happens in exactly one place (:func:`fold_bn`).
"""

from __future__ import annotations

import copy
from typing import Literal

import torch
from torch import nn

ActName = Literal["relu", "relu6", "hswish"]
ACTS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "relu6": nn.ReLU6, "hswish": nn.Hardswish}


def make_act(name: str) -> nn.Module:
    """A fresh activation module. Not in-place: multi-branch blocks reuse their inputs."""
    try:
        return ACTS[name]()
    except KeyError:
        raise ValueError(f"unknown activation {name=}; valid: {', '.join(ACTS)}") from None


def same_padding(kernel: int, dilation: int = 1) -> int:
    """Padding that keeps the size at stride 1 and gives ceil(H / s) at stride s (odd kernels)."""
    return dilation * (kernel - 1) // 2


def fold_bn(
    weight: torch.Tensor, bias: torch.Tensor | None, bn: nn.BatchNorm2d
) -> tuple[torch.Tensor, torch.Tensor]:
    """Fold an eval-mode BN into the preceding conv: W·t per output channel, β + (b − μ)·t.

    On the meta device only the shapes exist; the arithmetic is skipped, since meta's Python
    reference kernels would make it the slowest part of costing a network.
    """
    assert bn.running_var is not None and bn.running_mean is not None  # internal invariant
    if weight.is_meta:
        return torch.empty_like(weight), torch.empty_like(bn.running_mean)
    t = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    b = bias if bias is not None else torch.zeros_like(bn.running_mean)
    shape = (-1,) + (1,) * (weight.dim() - 1)
    return weight * t.reshape(shape), bn.bias + (b - bn.running_mean) * t


class ConvBN(nn.Module):
    """k×k conv (no bias) → BN → optional activation; with ``norm=False`` a bare conv.

    Deploy form: one conv with bias (BN folded), followed by the activation.
    """

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        kernel: int | tuple[int, int] = 1,
        stride: int = 1,
        padding: int | tuple[int, int] | None = None,
        dilation: int = 1,
        groups: int = 1,
        *,
        norm: bool = True,
        act: str | None = None,
    ) -> None:
        super().__init__()
        if padding is None:
            k = kernel if isinstance(kernel, int) else max(kernel)
            padding = same_padding(k, dilation)
        self.conv = nn.Conv2d(in_ch, out_ch, kernel, stride, padding, dilation, groups, bias=False)
        self.bn = nn.BatchNorm2d(out_ch) if norm else None
        self.act = make_act(act) if act else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        if self.bn is not None:
            x = self.bn(x)
        if self.act is not None:
            x = self.act(x)
        return x

    def fused_weight_bias(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The conv's kernel and bias with the BN folded in (eval-mode statistics)."""
        w = self.conv.weight
        if self.bn is None:
            return w, torch.zeros(w.shape[0], dtype=w.dtype, device=w.device)
        return fold_bn(w, None, self.bn)

    def deploy_form(self) -> nn.Module:
        conv = conv_like(self.conv, bias=True)
        w, b = self.fused_weight_bias()
        with torch.no_grad():
            conv.weight.copy_(w)
            assert conv.bias is not None
            conv.bias.copy_(b)
        return conv if self.act is None else nn.Sequential(conv, self.act)


def conv_like(conv: nn.Conv2d, *, bias: bool) -> nn.Conv2d:
    """A conv with the same geometry as ``conv`` whose weights the caller overwrites.

    A copy rather than a fresh ``nn.Conv2d``: it skips the random initialisation, which is most
    of the cost of building a deploy form on the meta device.
    """
    new = copy.deepcopy(conv)
    w = conv.weight
    new.bias = nn.Parameter(w.new_empty(w.shape[0])) if bias else None
    return new


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """ShuffleNet's shuffle: (N, g·c, H, W) → view (N, g, c, H, W) → swap g and c."""
    n, c, h, w = x.shape
    return x.reshape(n, groups, c // groups, h, w).transpose(1, 2).reshape(n, c, h, w)


class SqueezeExcite(nn.Module):
    """SE attention: GAP → FC C→C/16 → ReLU → FC → sigmoid → channel scale.

    The hidden width is at least 8 (as in timm): with 1–2 hidden units a small net's SE is often
    dead at initialisation. From 128 channels up this is exactly the paper's C/16.
    """

    def __init__(self, channels: int, reduction: int = 16, min_hidden: int = 8) -> None:
        super().__init__()
        hidden = max(min_hidden, channels // reduction)
        self.fc1 = nn.Conv2d(channels, hidden, 1)
        self.act = nn.ReLU()
        self.fc2 = nn.Conv2d(hidden, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.mean((2, 3), keepdim=True)
        return x * torch.sigmoid(self.fc2(self.act(self.fc1(s))))


def make_attention(kind: str, channels: int) -> nn.Module:
    """``none`` → identity, ``se`` → :class:`SqueezeExcite`."""
    if kind == "se":
        return SqueezeExcite(channels)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown attention {kind=}; valid: none, se")


def make_shortcut(kind: str, in_ch: int, out_ch: int, stride: int) -> nn.Module:
    """Identity when the shape is kept, else a projection.

    ``b``: 1×1 conv with the stride + BN (ResNet-B). ``d``: 2×2 avg-pool (ceil mode, padding
    not counted) then 1×1 conv + BN (ResNet-D); both give ceil(H / stride).
    """
    if stride == 1 and in_ch == out_ch:
        return nn.Identity()
    if kind == "b":
        return ConvBN(in_ch, out_ch, 1, stride)
    if kind == "d":
        pool: nn.Module = (
            nn.AvgPool2d(2, stride, ceil_mode=True, count_include_pad=False)
            if stride > 1
            else nn.Identity()
        )
        return nn.Sequential(pool, ConvBN(in_ch, out_ch, 1))
    raise ValueError(f"unknown shortcut {kind=}; valid: b, d")
