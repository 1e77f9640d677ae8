"""ResNeSt split-attention convolution (Zhang et al., 2020), radix 2, cardinality = groups.

As in ResNeSt-D, a stride-2 op runs the split-attention conv at stride 1 and downsamples with a
3×3 average pool afterwards ("avd").
"""

from __future__ import annotations

import torch
from torch import nn

from blocknas.spaces.errors import SpecError
from blocknas.spaces.layers import ConvBN, same_padding
from blocknas.spaces.ops.base import OPS, Op, OpArgs, check_divides

RADIX = 2


@OPS.register("splat")
class SplitAttention(Op):
    """conv C_in → C·R (groups K·R) → BN-act; split R ways, sum, GAP, fc1 (groups K) to
    max(C_in·R/4, 32) → BN-act → fc2 to C·R → softmax over radix per cardinal group → weighted sum.

    >>> SplitAttention(OpArgs(16, 32, groups=2))(torch.zeros(2, 16, 8, 8)).shape
    torch.Size([2, 32, 8, 8])
    """

    depthwise_ok = False

    @classmethod
    def check_groups(cls, args: OpArgs) -> None:
        if args.in_ch % (args.groups * RADIX):
            raise SpecError(
                "groups",
                f"groups={args.groups} × radix {RADIX} must divide the op's input channels "
                f"{args.in_ch}",
            )
        check_divides("groups", args.groups, args.out_ch, "the op's output channels")

    def __init__(self, args: OpArgs) -> None:
        super().__init__(args)
        k, c, card = args.kernel, args.out_ch, args.groups
        self.card = card
        self.conv = ConvBN(
            args.in_ch,
            c * RADIX,
            k,
            1,
            same_padding(k, args.dilation),
            args.dilation,
            card * RADIX,
            act=args.act,
        )
        inter = max(args.in_ch * RADIX // 4, 32)
        inter = -(-inter // card) * card  # fc1 is grouped by cardinality
        self.fc1 = ConvBN(c, inter, 1, groups=card, act="relu")
        self.fc2 = nn.Conv2d(inter, c * RADIX, 1, groups=card)
        self.avd: nn.Module = (
            nn.AvgPool2d(3, args.stride, padding=1) if args.stride > 1 else nn.Identity()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        n, cr, h, w = y.shape
        c = cr // RADIX
        splits = y.reshape(n, RADIX, c, h, w)
        gap = splits.sum(1).mean((2, 3), keepdim=True)
        z = self.fc2(self.fc1(gap))  # (N, C·R, 1, 1), laid out (K, R, C/K) by the grouped fc2
        a = z.reshape(n, self.card, RADIX, -1).transpose(1, 2)
        a = torch.softmax(a, dim=1).reshape(n, RADIX, c, 1, 1)
        return self.avd((splits * a).sum(1))
