"""Plain block: op → BN → act (VGG; with op dwsep, MobileNetV1)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from blocknas.spaces.blocks.base import BLOCKS, Block, layer_op_args
from blocknas.spaces.layers import make_act, make_attention
from blocknas.spaces.ops import OpArgs

if TYPE_CHECKING:
    from blocknas.spaces.spec import LayerSpec


@BLOCKS.register("plain")
class Plain(Block):
    """op (conv-BN) → act → optional SE."""

    @classmethod
    def op_args(cls, in_ch: int, layer: LayerSpec) -> list[OpArgs]:
        return [layer_op_args(layer, in_ch, layer.out)]

    def __init__(self, in_ch: int, layer: LayerSpec) -> None:
        super().__init__(in_ch, layer)
        (args,) = self.op_args(in_ch, layer)
        self.op = self.make_op(args)
        self.act = make_act(layer.act)
        self.attn = make_attention(layer.attention, layer.out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.attn(self.act(self.op(x)))
