"""Pre-activation ResNet (v2): BN-act before each conv, identity shortcut, and a network that
ends with BN-act before pooling (the builder adds it after the last preact block)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from blocknas.spaces.blocks.base import BLOCKS, Block, bottleneck_mid, layer_op_args
from blocknas.spaces.layers import ConvBN, make_act, make_attention, make_shortcut
from blocknas.spaces.ops import OpArgs

if TYPE_CHECKING:
    from blocknas.spaces.spec import LayerSpec


class _PreAct(Block):
    preact = True

    def _pre(self, in_ch: int, layer: LayerSpec) -> None:
        self.pre_bn = nn.BatchNorm2d(in_ch)
        self.pre_act = make_act(layer.act)
        self.shortcut = make_shortcut(layer.shortcut, in_ch, layer.out, layer.stride)
        self.attn = make_attention(layer.attention, layer.out)

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pre = self.pre_act(self.pre_bn(x))
        # v2: a projection shortcut sees the pre-activated input; the identity sees x itself.
        short = x if isinstance(self.shortcut, nn.Identity) else self.shortcut(pre)
        return self.attn(self.residual(pre)) + short


@BLOCKS.register("preact_basic")
class PreActBasic(_PreAct):
    """BN-act → op (stride) → BN-act → op (no BN), + shortcut."""

    uses = frozenset({"groups", "shortcut"})

    @classmethod
    def op_args(cls, in_ch: int, layer: LayerSpec) -> list[OpArgs]:
        # The first op's BN is the second pre-activation BN; the second op ends bare.
        return [
            layer_op_args(layer, in_ch, layer.out),
            layer_op_args(layer, layer.out, layer.out, stride=1, norm=False),
        ]

    def __init__(self, in_ch: int, layer: LayerSpec) -> None:
        super().__init__(in_ch, layer)
        self._pre(in_ch, layer)
        a1, a2 = self.op_args(in_ch, layer)
        self.op1 = self.make_op(a1)
        self.act1 = make_act(layer.act)
        self.op2 = self.make_op(a2)

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        return self.op2(self.act1(self.op1(x)))


@BLOCKS.register("preact_bottleneck")
class PreActBottleneck(_PreAct):
    """BN-act → 1×1 → BN-act → op (stride, groups) → BN-act → 1×1, + shortcut."""

    uses = frozenset({"groups", "mid", "shortcut"})

    mid = staticmethod(bottleneck_mid)

    @classmethod
    def op_args(cls, in_ch: int, layer: LayerSpec) -> list[OpArgs]:
        mid = cls.mid(layer)
        return [layer_op_args(layer, mid, mid)]

    def __init__(self, in_ch: int, layer: LayerSpec) -> None:
        super().__init__(in_ch, layer)
        self._pre(in_ch, layer)
        mid = self.mid(layer)
        self.conv1 = ConvBN(in_ch, mid, 1, act=layer.act)
        (args,) = self.op_args(in_ch, layer)
        self.op = self.make_op(args)
        self.act2 = make_act(layer.act)
        self.conv3 = ConvBN(mid, layer.out, 1, norm=False)

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv3(self.act2(self.op(self.conv1(x))))
