"""Stems: ``conv`` (k×k conv-BN-act) and ``deep`` (ResNet-C: three 3×3), optional max-pool."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import torch
from torch import nn

from blocknas.spaces.errors import SpecError
from blocknas.spaces.layers import ConvBN
from blocknas.spaces.registry import Registry

if TYPE_CHECKING:
    from blocknas.spaces.spec import StemSpec


class Stem(nn.Module):
    """Base of registered stems: ``Stem(in_ch, stem_spec)``."""

    registry_name: ClassVar[str]

    def __init__(self, in_ch: int, stem: StemSpec) -> None:
        super().__init__()
        type(self).check(in_ch, stem)
        self.pool: nn.Module = nn.MaxPool2d(3, 2, 1) if stem.pool == "max" else nn.Identity()

    @classmethod
    def check(cls, in_ch: int, stem: StemSpec) -> None:
        if stem.kernel % 2 == 0:
            raise SpecError("kernel", f"kernel={stem.kernel} must be odd and ≥ 1")

    def body(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.body(x))


STEMS: Registry[type[Stem]] = Registry("stem")


@STEMS.register("conv")
class ConvStem(Stem):
    """k×k conv-BN-act with the stem's stride (ResNet: 7×7 stride 2 + max-pool)."""

    def __init__(self, in_ch: int, stem: StemSpec) -> None:
        super().__init__(in_ch, stem)
        self.conv = ConvBN(in_ch, stem.out, stem.kernel, stem.stride, act=stem.act)

    def body(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


@STEMS.register("deep")
class DeepStem(Stem):
    """Three 3×3 conv-BN-act of widths out/2, out/2, out; the first takes the stride."""

    @classmethod
    def check(cls, in_ch: int, stem: StemSpec) -> None:
        if stem.kernel != 3:
            raise SpecError(
                "kernel",
                f"kernel={stem.kernel} is not used by stem deep (three 3×3); leave it at 3",
            )
        if stem.out < 2 or stem.out % 2:
            raise SpecError("out", f"out={stem.out} must be even for stem deep (out/2 widths)")

    def __init__(self, in_ch: int, stem: StemSpec) -> None:
        super().__init__(in_ch, stem)
        half = stem.out // 2
        self.convs = nn.Sequential(
            ConvBN(in_ch, half, 3, stem.stride, act=stem.act),
            ConvBN(half, half, 3, act=stem.act),
            ConvBN(half, stem.out, 3, act=stem.act),
        )

    def body(self, x: torch.Tensor) -> torch.Tensor:
        return self.convs(x)
