"""SPConv: split-based convolution (Zhang et al., 2020, arXiv 2006.12085).

The first ``int(α·C_in)`` input channels (representative) go through a k×k group conv *plus* a
1×1 conv; the rest (uncertain, redundant features) through a cheap 1×1 conv. The two outputs are
fused without parameters: a softmax over their global averages, per channel.
Params = C_in·C_out·(1 + α·k²/g) plus the BNs.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from blocknas.spaces.errors import SpecError
from blocknas.spaces.layers import conv_like, fold_bn, same_padding
from blocknas.spaces.ops.base import OPS, Op, OpArgs, check_divides


def _down(stride: int) -> nn.Module:
    # 2×2 avg-pool in ceil mode keeps the op's ceil(H / 2) output size for odd inputs too.
    if stride == 1:
        return nn.Identity()
    return nn.AvgPool2d(2, stride, ceil_mode=True, count_include_pad=False)


@OPS.register("spconv")
class SPConv(Op):
    """Split-based conv with split ratio ``alpha`` (paper: ½, group conv groups 2).

    >>> op = SPConv(OpArgs(32, 64, kernel=3, groups=2, alpha=0.5))
    >>> convs = sum(p.numel() for n, p in op.named_parameters() if "bn" not in n)
    >>> convs == 32 * 64 * (1 + 0.5 * 9 / 2)
    True
    """

    uses = frozenset({"groups", "dilation", "alpha"})
    depthwise_ok = False
    groups_of = "SPConv's representative"

    @staticmethod
    def split(args: OpArgs) -> tuple[int, int]:
        """(representative, uncertain) input channels."""
        rep = int(args.alpha * args.in_ch)
        return rep, args.in_ch - rep

    @classmethod
    def check_groups(cls, args: OpArgs) -> None:
        if not 0.0 < args.alpha <= 1.0:
            raise SpecError("alpha", f"alpha={args.alpha} must be in (0, 1]")
        rep, _ = cls.split(args)
        if rep < 1:
            raise SpecError(
                "alpha",
                f"alpha={args.alpha} leaves zero representative channels of {args.in_ch} "
                f"input channels; need alpha·{args.in_ch} ≥ 1",
            )
        check_divides("groups", args.groups, rep, "SPConv's representative input channels")
        check_divides("groups", args.groups, args.out_ch, "the op's output channels")

    def __init__(self, args: OpArgs) -> None:
        super().__init__(args)
        rep, unc = self.split(args)
        self.rep = rep
        k, d = args.kernel, args.dilation
        self.rep_gconv = nn.Conv2d(
            rep, args.out_ch, k, args.stride, same_padding(k, d), d, args.groups, bias=False
        )
        self.rep_down = _down(args.stride)
        self.rep_pw = nn.Conv2d(rep, args.out_ch, 1, bias=False)
        self.rep_bn: nn.Module = nn.BatchNorm2d(args.out_ch) if args.norm else nn.Identity()
        self.unc_down: nn.Module | None = None
        self.unc_pw: nn.Conv2d | None = None
        self.unc_bn: nn.Module | None = None
        if unc:
            self.unc_down = _down(args.stride)
            self.unc_pw = nn.Conv2d(unc, args.out_ch, 1, bias=False)
            self.unc_bn = nn.BatchNorm2d(args.out_ch) if args.norm else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x_rep, x_unc = x[:, : self.rep], x[:, self.rep :]
        y_rep = self.rep_bn(self.rep_gconv(x_rep) + self.rep_pw(self.rep_down(x_rep)))
        if self.unc_pw is None or self.unc_down is None or self.unc_bn is None:
            return y_rep
        y_unc = self.unc_bn(self.unc_pw(self.unc_down(x_unc)))
        # Parameter-free fusion: softmax over the two branches' channel means.
        w = torch.softmax(torch.stack([y_rep.mean((2, 3)), y_unc.mean((2, 3))], 0), dim=0)
        return y_rep * w[0, :, :, None, None] + y_unc * w[1, :, :, None, None]

    def deploy_form(self) -> nn.Module:
        """The same module with each BN folded into the convs that feed it."""
        out = copy.deepcopy(self)
        if isinstance(self.rep_bn, nn.BatchNorm2d):
            w, b = fold_bn(self.rep_gconv.weight, None, self.rep_bn)
            out.rep_gconv = _with(self.rep_gconv, w, b)
            w_pw, _ = fold_bn(self.rep_pw.weight, None, self.rep_bn)
            out.rep_pw = _with(self.rep_pw, w_pw, None)
            out.rep_bn = nn.Identity()
        if self.unc_pw is not None and isinstance(self.unc_bn, nn.BatchNorm2d):
            w, b = fold_bn(self.unc_pw.weight, None, self.unc_bn)
            out.unc_pw = _with(self.unc_pw, w, b)
            out.unc_bn = nn.Identity()
        return out


def _with(conv: nn.Conv2d, weight: torch.Tensor, bias: torch.Tensor | None) -> nn.Conv2d:
    new = conv_like(conv, bias=bias is not None)
    with torch.no_grad():
        new.weight.copy_(weight)
        if bias is not None and new.bias is not None:
            new.bias.copy_(bias)
    return new
