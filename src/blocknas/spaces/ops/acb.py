"""ACNet's asymmetric convolution block (Ding et al., ICCV 2019).

Training: three conv-BN branches, k×k + k×1 + 1×k, summed. Deploy: one k×k conv with bias,
because convolution is additive in the kernel: each branch's BN is folded into its kernel and the
k×1 / 1×k kernels are added into the centre column / row of the k×k kernel.
"""

from __future__ import annotations

import functools

import torch
from torch import nn

from blocknas.spaces.layers import ConvBN, conv_like, same_padding
from blocknas.spaces.ops.base import OPS, Op, OpArgs


@OPS.register("acb")
class ACBlock(Op):
    """Asymmetric convolution block; fusable into one k×k conv.

    >>> op = ACBlock(OpArgs(8, 8, kernel=3)).eval()
    >>> x = torch.randn(1, 8, 6, 6)
    >>> bool(torch.allclose(op(x), op.deploy_form()(x), atol=1e-5))
    True
    """

    def __init__(self, args: OpArgs) -> None:
        super().__init__(args)
        k, p = args.kernel, same_padding(args.kernel, args.dilation)
        branch = functools.partial(
            ConvBN,
            args.in_ch,
            args.out_ch,
            stride=args.stride,
            dilation=args.dilation,
            groups=args.groups,
            norm=args.norm,
        )
        self.square = branch(k, padding=p)
        # With 'same' padding p = d·(k//2), the asymmetric padding (p, p − d·(k//2)) is (p, 0):
        # the k×1 kernel then reads exactly the square kernel's centre column (and 1×k the row).
        self.ver = branch((k, 1), padding=(p, 0))
        self.hor = branch((1, k), padding=(0, p))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.square(x) + self.ver(x) + self.hor(x)

    def deploy_form(self) -> nn.Module:
        """One k×k conv with bias; valid in eval mode (uses the BN running statistics)."""
        k = self.args.kernel
        c = k // 2
        w, b = self.square.fused_weight_bias()
        wv, bv = self.ver.fused_weight_bias()
        wh, bh = self.hor.fused_weight_bias()
        w = w.clone()
        w[:, :, :, c] += wv[:, :, :, 0]
        w[:, :, c, :] += wh[:, :, 0, :]
        fused = conv_like(self.square.conv, bias=True)
        with torch.no_grad():
            fused.weight.copy_(w)
            assert fused.bias is not None
            fused.bias.copy_(b + bv + bh)
        return fused
