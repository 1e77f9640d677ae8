"""Depthwise-separable convolution (MobileNetV1): depthwise k×k-BN-act, then pointwise 1×1-BN."""

from __future__ import annotations

import torch

from blocknas.spaces.layers import ConvBN, same_padding
from blocknas.spaces.ops.base import OPS, Op, OpArgs


@OPS.register("dwsep")
class DepthwiseSeparable(Op):
    """Params C_in·k² + C_in·C_out (plus BNs): 1/C_out + 1/k² of a full conv.

    >>> DepthwiseSeparable(OpArgs(32, 64))(torch.zeros(1, 32, 8, 8)).shape
    torch.Size([1, 64, 8, 8])
    """

    uses = frozenset({"dilation"})
    depthwise_ok = False

    def __init__(self, args: OpArgs) -> None:
        super().__init__(args)
        k, d = args.kernel, args.dilation
        self.dw = ConvBN(
            args.in_ch, args.in_ch, k, args.stride, same_padding(k, d), d, args.in_ch, act=args.act
        )
        self.pw = ConvBN(args.in_ch, args.out_ch, 1, norm=args.norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pw(self.dw(x))
