"""``build(spec)``: the training-form network of an ArchSpec."""

from __future__ import annotations

import math

import torch
from torch import nn

from blocknas.spaces.adaptor import ShapeAdaptor, initial_alpha
from blocknas.spaces.blocks import BLOCKS
from blocknas.spaces.layers import ConvBN, make_act
from blocknas.spaces.spec import ArchSpec, HeadSpec, LearnedAdaptor
from blocknas.spaces.stems import STEMS


class Head(nn.Module):
    """Optional 1×1 conv-BN-act, global pooling, dropout, linear classifier."""

    def __init__(self, in_ch: int, head: HeadSpec, num_classes: int) -> None:
        super().__init__()
        self.conv: nn.Module = nn.Identity()
        if head.conv is not None:
            self.conv = ConvBN(in_ch, head.conv, 1, act=head.act)
            in_ch = head.conv
        self.pool = nn.AdaptiveAvgPool2d(1) if head.pool == "avg" else nn.AdaptiveMaxPool2d(1)
        self.dropout = nn.Dropout(head.dropout) if head.dropout > 0 else nn.Identity()
        self.fc = nn.Linear(in_ch, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(torch.flatten(self.pool(self.conv(x)), 1)))


class Network(nn.Module):
    """stem → [adaptor] block … → (final BN-act for pre-activation nets) → head."""

    def __init__(self, spec: ArchSpec) -> None:
        super().__init__()
        self.spec = spec
        self.input_shape: tuple[int, int, int] = spec.input
        self.stem = STEMS.get(spec.stem.type)(spec.input[0], spec.stem)
        adaptors = spec.adaptors
        count = sum(layer.adaptor for layer in spec.layers)
        alpha0 = (
            adaptors.alpha_init
            if adaptors.alpha_init is not None
            else initial_alpha(min(spec.input[1:]), count, adaptors.r1, adaptors.r2)
        )
        learned = {a.layer: a.sigma for a in adaptors.learned}
        ch = spec.stem.out
        blocks: list[nn.Module] = []
        self.adaptors = nn.ModuleDict()
        for i, layer in enumerate(spec.layers):
            if layer.adaptor:
                a0 = math.log(learned[i] / (1 - learned[i])) if i in learned else alpha0
                self.adaptors[str(i)] = ShapeAdaptor(adaptors.r1, adaptors.r2, a0)
            blocks.append(BLOCKS.get(layer.block)(ch, layer))
            ch = layer.out
        self.layers = nn.ModuleList(blocks)
        last = spec.layers[-1]
        self.final: nn.Module = (
            nn.Sequential(nn.BatchNorm2d(ch), make_act(last.act))
            if BLOCKS.get(last.block).preact
            else nn.Identity()
        )
        self.head = Head(ch, spec.head, spec.num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for i, block in enumerate(self.layers):
            key = str(i)
            if key in self.adaptors:
                x = self.adaptors[key](x)
            x = block(x)
        return self.final(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))

    def adaptor_parameters(self) -> list[nn.Parameter]:
        """The Shape Adaptors' α (they get their own optimizer)."""
        return [m.alpha for m in self.adaptors.values() if isinstance(m, ShapeAdaptor)]

    @torch.no_grad()
    def learned_adaptors(self) -> list[LearnedAdaptor]:
        """Each adaptor's current σ and the size it produces on the spec's input size."""
        if not len(self.adaptors):
            return []
        p = next(self.parameters())
        training = self.training
        self.eval()
        try:
            self(torch.zeros(1, *self.input_shape, device=p.device, dtype=p.dtype))
        finally:
            self.train(training)
        out = []
        for key, m in self.adaptors.items():
            assert isinstance(m, ShapeAdaptor) and m.last_size is not None
            out.append(LearnedAdaptor(layer=int(key), sigma=m.sigma, size=m.last_size))
        return out


def build(spec: ArchSpec) -> Network:
    """The training-form network of ``spec``.

    >>> spec = ArchSpec.from_dict({"version": 1, "input": [1, 8, 8], "num_classes": 10,
    ...     "stem": {"out": 8}, "layers": [{"block": "basic", "out": 16, "stride": 2}]})
    >>> build(spec)(torch.zeros(2, 1, 8, 8)).shape
    torch.Size([2, 10])
    """
    if not isinstance(spec, ArchSpec):
        raise TypeError(f"build() takes an ArchSpec, got {type(spec).__name__}")
    return Network(spec)
