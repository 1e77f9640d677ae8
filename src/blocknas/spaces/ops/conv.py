"""Standard, group and dilated convolution (one op: ``groups`` and ``dilation`` select the kind)."""

from __future__ import annotations

import torch

from blocknas.spaces.layers import ConvBN, same_padding
from blocknas.spaces.ops.base import OPS, Op, OpArgs


@OPS.register("conv")
class ConvOp(Op):
    """k×k conv → BN. Deploy form: the conv with BN folded (done by :class:`ConvBN`).

    >>> op = ConvOp(OpArgs(16, 32, kernel=3, stride=2, groups=4, dilation=2))
    >>> op(torch.zeros(2, 16, 9, 9)).shape
    torch.Size([2, 32, 5, 5])
    """

    def __init__(self, args: OpArgs) -> None:
        super().__init__(args)
        self.unit = ConvBN(
            args.in_ch,
            args.out_ch,
            args.kernel,
            args.stride,
            same_padding(args.kernel, args.dilation),
            args.dilation,
            args.groups,
            norm=args.norm,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.unit(x)
