"""ShuffleNetV2 unit: channel split, one branch 1×1 → depthwise op → 1×1, concat, shuffle (g=2)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from blocknas.spaces.blocks.base import BLOCKS, Block, check_mid, layer_op_args
from blocknas.spaces.errors import SpecError
from blocknas.spaces.layers import ConvBN, channel_shuffle, make_attention
from blocknas.spaces.ops import OpArgs

if TYPE_CHECKING:
    from blocknas.spaces.spec import LayerSpec


@BLOCKS.register("shuffle")
class ShuffleUnit(Block):
    """Stride 1: split in half, the right half through 1×1-BN-act → depthwise op-BN → 1×1-BN-act.
    Stride 2: no split; the left branch is depthwise op-BN → 1×1-BN-act, both downsample and the
    channels double. ``mid`` is the right branch's inner width (default out/2). (SE) on the right
    branch before the concatenation."""

    uses = frozenset({"mid"})
    depthwise_op = True

    @classmethod
    def check_layer(cls, in_ch: int, layer: LayerSpec) -> None:
        if layer.out % 2:
            raise SpecError("out", f"out={layer.out} must be even (two halves)")
        if layer.stride == 1 and in_ch != layer.out:
            raise SpecError(
                "out",
                f"out={layer.out} must equal the input channels {in_ch} at stride 1 "
                "(the unit splits its input in half); use stride 2 to change width",
            )

    @classmethod
    def op_args(cls, in_ch: int, layer: LayerSpec) -> list[OpArgs]:
        cls.check_layer(in_ch, layer)
        half = layer.out // 2
        mid = check_mid(layer, half, f"out/2 = {half}")
        args = [layer_op_args(layer, mid, mid, groups=mid)]
        if layer.stride == 2:
            args.append(layer_op_args(layer, in_ch, in_ch, groups=in_ch))
        return args

    def __init__(self, in_ch: int, layer: LayerSpec) -> None:
        super().__init__(in_ch, layer)
        half, act = layer.out // 2, layer.act
        args = self.op_args(in_ch, layer)
        mid = args[0].in_ch
        branch_in = in_ch if layer.stride == 2 else in_ch // 2
        self.left: nn.Module | None = None
        if layer.stride == 2:
            self.left = nn.Sequential(self.make_op(args[1]), ConvBN(in_ch, half, 1, act=act))
        self.right = nn.Sequential(
            ConvBN(branch_in, mid, 1, act=act),
            self.make_op(args[0]),
            ConvBN(mid, half, 1, act=act),
            make_attention(layer.attention, half),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.left is None:
            x1, x2 = x.chunk(2, dim=1)
            y = torch.cat([x1, self.right(x2)], 1)
        else:
            y = torch.cat([self.left(x), self.right(x)], 1)
        return channel_shuffle(y, 2)
