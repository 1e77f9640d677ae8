"""Inception block: four parallel branches of out/4 channels, concatenated."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from blocknas.spaces.blocks.base import BLOCKS, Block, check_mid, layer_op_args
from blocknas.spaces.errors import SpecError
from blocknas.spaces.layers import ConvBN, make_act, make_attention
from blocknas.spaces.ops import OpArgs

if TYPE_CHECKING:
    from blocknas.spaces.spec import LayerSpec

BRANCHES = 4


@BLOCKS.register("inception")
class Inception(Block):
    """Branches: 1×1; 1×1 → op; 1×1 → op → op (two k×k instead of one 2k−1); 3×3 max-pool → 1×1.
    Each conv is followed by BN-act; ``mid`` is the 1×1 reduction width (default out/4); the
    stride is taken by the first strided layer of each branch. (SE) on the concatenation."""

    uses = frozenset({"groups", "mid"})

    @classmethod
    def check_layer(cls, in_ch: int, layer: LayerSpec) -> None:
        if layer.out % BRANCHES:
            raise SpecError(
                "out", f"out={layer.out} must be divisible by {BRANCHES} (branches of out/4)"
            )

    @classmethod
    def op_args(cls, in_ch: int, layer: LayerSpec) -> list[OpArgs]:
        cls.check_layer(in_ch, layer)
        b = layer.out // BRANCHES
        r = check_mid(layer, b, f"out/4 = {b}")
        return [layer_op_args(layer, r, b), layer_op_args(layer, b, b, stride=1)]

    def __init__(self, in_ch: int, layer: LayerSpec) -> None:
        super().__init__(in_ch, layer)
        b, s, act = layer.out // BRANCHES, layer.stride, layer.act
        reduce_args, same_args = self.op_args(in_ch, layer)
        r = reduce_args.in_ch
        self.b1 = ConvBN(in_ch, b, 1, s, act=act)
        self.b2 = nn.Sequential(
            ConvBN(in_ch, r, 1, act=act), self.make_op(reduce_args), make_act(act)
        )
        self.b3 = nn.Sequential(
            ConvBN(in_ch, r, 1, act=act),
            self.make_op(reduce_args),
            make_act(act),
            self.make_op(same_args),
            make_act(act),
        )
        self.b4 = nn.Sequential(nn.MaxPool2d(3, s, 1), ConvBN(in_ch, b, 1, act=act))
        self.attn = make_attention(layer.attention, layer.out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.attn(torch.cat([self.b1(x), self.b2(x), self.b3(x), self.b4(x)], 1))
