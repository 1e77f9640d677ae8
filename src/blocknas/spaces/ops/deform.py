"""Deformable convolution v1 (Dai et al., ICCV 2017) via ``torchvision.ops.deform_conv2d``.

A regular conv predicts 2·k² sampling offsets per position (zero-initialised, so training starts
from the plain k×k conv). FlopCounterMode does not count ``deform_conv2d``, so the op reports its
C_out·(C_in/g)·k²·H_out·W_out MACs itself (:meth:`DeformConv.uncounted_macs`).
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn

from blocknas.spaces.layers import fold_bn, same_padding
from blocknas.spaces.ops.base import OPS, Op, OpArgs


@OPS.register("deform")
class DeformConv(Op):
    """Offset conv → deform_conv2d → BN. Deploy form: the same op with BN folded.

    >>> DeformConv(OpArgs(8, 16, stride=2))(torch.zeros(1, 8, 7, 7)).shape
    torch.Size([1, 16, 4, 4])
    """

    def __init__(self, args: OpArgs) -> None:
        super().__init__(args)
        k, d = args.kernel, args.dilation
        self.stride, self.padding, self.dilation = args.stride, same_padding(k, d), d
        self.offset = nn.Conv2d(args.in_ch, 2 * k * k, k, args.stride, self.padding, d)
        nn.init.zeros_(self.offset.weight)
        assert self.offset.bias is not None
        nn.init.zeros_(self.offset.bias)
        self.weight = nn.Parameter(torch.empty(args.out_ch, args.in_ch // args.groups, k, k))
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        self.bias: nn.Parameter | None = None
        self.bn: nn.Module = nn.BatchNorm2d(args.out_ch) if args.norm else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # imported here, not with the module: torchvision takes about a second to import, which
        # every blocknas process (each CLI command, each Ray worker) paid for this one op
        from torchvision.ops import deform_conv2d

        y = deform_conv2d(
            x,
            self.offset(x),
            self.weight,
            self.bias,
            stride=self.stride,
            padding=self.padding,
            dilation=self.dilation,
        )
        return self.bn(y)

    def uncounted_macs(self, out: torch.Tensor) -> int:
        """The sampling conv itself: C_out·(C_in/g)·k²·H_out·W_out per image (its offset conv is
        an ordinary conv, which FlopCounterMode counts)."""
        c_out, c_in_per_group, kh, kw = self.weight.shape
        return int(c_out * c_in_per_group * kh * kw * out.shape[-2] * out.shape[-1])

    def deploy_form(self) -> nn.Module:
        out = copy.deepcopy(self)
        if isinstance(self.bn, nn.BatchNorm2d):
            w, b = fold_bn(self.weight, self.bias, self.bn)
            out.weight = nn.Parameter(w.detach().clone())
            out.bias = nn.Parameter(b.detach().clone())
            out.bn = nn.Identity()
        return out
