"""MobileNetV2 inverted residual: 1×1 expand → depthwise op → linear 1×1 projection."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from blocknas.spaces.blocks.base import BLOCKS, Block, check_mid, layer_op_args
from blocknas.spaces.layers import ConvBN, make_act, make_attention
from blocknas.spaces.ops import OpArgs

if TYPE_CHECKING:
    from blocknas.spaces.spec import LayerSpec

EXPANSION = 6


@BLOCKS.register("inverted")
class InvertedResidual(Block):
    """Expand to ``mid`` (default in·6; omitted when mid == in) → depthwise op-BN-act → (SE) →
    1×1-BN (linear); residual when stride 1 and in == out. Default activation ReLU6."""

    uses = frozenset({"mid"})
    depthwise_op = True
    default_act = "relu6"

    @classmethod
    def mid(cls, in_ch: int, layer: LayerSpec) -> int:
        return check_mid(layer, in_ch * EXPANSION, f"in·{EXPANSION}")

    @classmethod
    def derived_fields(cls, in_ch: int, choose: Callable[[str], Any]) -> dict[str, Any]:
        """A space gives the expansion ratio (``expansion``); the spec stores mid = in · ratio."""
        return {"mid": in_ch * choose("expansion")}

    @classmethod
    def op_args(cls, in_ch: int, layer: LayerSpec) -> list[OpArgs]:
        mid = cls.mid(in_ch, layer)
        return [layer_op_args(layer, mid, mid, groups=mid)]

    def __init__(self, in_ch: int, layer: LayerSpec) -> None:
        super().__init__(in_ch, layer)
        mid = self.mid(in_ch, layer)
        self.expand: nn.Module = (
            nn.Identity() if mid == in_ch else ConvBN(in_ch, mid, 1, act=layer.act)
        )
        (args,) = self.op_args(in_ch, layer)
        self.op = self.make_op(args)
        self.act = make_act(layer.act)
        self.attn = make_attention(layer.attention, mid)
        self.project = ConvBN(mid, layer.out, 1)
        self.residual = layer.stride == 1 and in_ch == layer.out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.project(self.attn(self.act(self.op(self.expand(x)))))
        return x + y if self.residual else y
