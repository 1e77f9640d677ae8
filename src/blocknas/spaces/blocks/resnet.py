"""ResNet family: basic and bottleneck blocks (ResNet-B strides; ResNeXt cardinality through
``groups``; ShuffleNet-v1 grouped 1×1 convs with a channel shuffle through ``pw_groups``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from blocknas.spaces.blocks.base import BLOCKS, Block, bottleneck_mid, layer_op_args
from blocknas.spaces.layers import (
    ConvBN,
    channel_shuffle,
    make_act,
    make_attention,
    make_shortcut,
)
from blocknas.spaces.ops import OpArgs, base

if TYPE_CHECKING:
    from blocknas.spaces.spec import LayerSpec


@BLOCKS.register("basic")
class Basic(Block):
    """op-BN-act, op-BN, (SE), + shortcut, act."""

    uses = frozenset({"groups", "shortcut"})

    @classmethod
    def op_args(cls, in_ch: int, layer: LayerSpec) -> list[OpArgs]:
        return [
            layer_op_args(layer, in_ch, layer.out),
            layer_op_args(layer, layer.out, layer.out, stride=1),
        ]

    def __init__(self, in_ch: int, layer: LayerSpec) -> None:
        super().__init__(in_ch, layer)
        a1, a2 = self.op_args(in_ch, layer)
        self.op1 = self.make_op(a1)
        self.act1 = make_act(layer.act)
        self.op2 = self.make_op(a2)
        self.attn = make_attention(layer.attention, layer.out)
        self.shortcut = make_shortcut(layer.shortcut, in_ch, layer.out, layer.stride)
        self.act = make_act(layer.act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.attn(self.op2(self.act1(self.op1(x))))
        return self.act(y + self.shortcut(x))


@BLOCKS.register("bottleneck")
class Bottleneck(Block):
    """1×1 (pw_groups) → [shuffle] → op (stride, groups) → 1×1 (pw_groups), BN after each,
    (SE), + shortcut, act. ``mid`` defaults to out/4."""

    uses = frozenset({"groups", "mid", "pw_groups", "shortcut"})

    mid = staticmethod(bottleneck_mid)

    @classmethod
    def check_layer(cls, in_ch: int, layer: LayerSpec) -> None:
        mid = cls.mid(layer)
        for total, what in ((in_ch, "input"), (mid, "inner (mid)"), (layer.out, "output")):
            base.check_divides("pw_groups", layer.pw_groups, total, f"the block's {what} channels")

    @classmethod
    def op_args(cls, in_ch: int, layer: LayerSpec) -> list[OpArgs]:
        mid = cls.mid(layer)
        return [layer_op_args(layer, mid, mid)]

    def __init__(self, in_ch: int, layer: LayerSpec) -> None:
        super().__init__(in_ch, layer)
        mid, g = self.mid(layer), layer.pw_groups
        self.pw_groups = g
        self.conv1 = ConvBN(in_ch, mid, 1, groups=g, act=layer.act)
        (args,) = self.op_args(in_ch, layer)
        self.op = self.make_op(args)
        self.act2 = make_act(layer.act)
        self.conv3 = ConvBN(mid, layer.out, 1, groups=g)
        self.attn = make_attention(layer.attention, layer.out)
        self.shortcut = make_shortcut(layer.shortcut, in_ch, layer.out, layer.stride)
        self.act = make_act(layer.act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv1(x)
        if self.pw_groups > 1:
            y = channel_shuffle(y, self.pw_groups)
        y = self.attn(self.conv3(self.act2(self.op(y))))
        return self.act(y + self.shortcut(x))
