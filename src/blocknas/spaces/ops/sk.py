"""Selective Kernel convolution (Li et al., CVPR 2019): two grouped paths with different receptive
fields (dilation d and 2d, i.e. 3×3 and an effective 5×5), fused by a softmax attention over paths.
"""

from __future__ import annotations

import torch
from torch import nn

from blocknas.spaces.layers import ConvBN, same_padding
from blocknas.spaces.ops.base import OPS, Op, OpArgs

PATHS = 2


@OPS.register("sk")
class SKConv(Op):
    """SK unit: paths conv-BN-act; sum → GAP → FC to max(C/16, 32) → BN-act → FC to 2·C →
    softmax over paths → weighted sum. Its output is already activated (no output BN).

    >>> SKConv(OpArgs(32, 32, groups=8, stride=2))(torch.zeros(2, 32, 9, 9)).shape
    torch.Size([2, 32, 5, 5])
    """

    def __init__(self, args: OpArgs) -> None:
        super().__init__(args)
        k, c = args.kernel, args.out_ch
        self.paths = nn.ModuleList(
            ConvBN(
                args.in_ch,
                c,
                k,
                args.stride,
                same_padding(k, args.dilation * (i + 1)),
                args.dilation * (i + 1),
                args.groups,
                act=args.act,
            )
            for i in range(PATHS)
        )
        hidden = max(c // 16, 32)
        self.fc1 = ConvBN(c, hidden, 1, act="relu")
        self.fc2 = nn.Conv2d(hidden, PATHS * c, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = torch.stack([p(x) for p in self.paths], 1)  # (N, M, C, H, W)
        s = feats.sum(1).mean((2, 3), keepdim=True)
        z = self.fc2(self.fc1(s))  # (N, M·C, 1, 1)
        a = torch.softmax(z.reshape(z.shape[0], PATHS, -1), dim=1)
        return (feats * a[:, :, :, None, None]).sum(1)
