"""``build(spec)``: the training-form network of an ArchSpec."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

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


@dataclass(frozen=True)
class NetworkPart:
    """One module of a Network, in forward order, not yet built.

    ``key`` holds everything the module depends on besides the shape of its input, so two parts
    with the same key and input shape are the same module up to weights: the cost model counts
    each such part once and reuses the result across specs.
    """

    name: str  # "stem", "adaptors.3", "layers.3", "final" or "head"
    key: str
    make: Callable[[], nn.Module]


def _key(kind: str, **fields: Any) -> str:
    return json.dumps({"part": kind, **fields}, sort_keys=True)


def network_parts(spec: ArchSpec) -> list[NetworkPart]:
    """The parts :class:`Network` is made of, in forward order (``final`` only for pre-act nets).

    >>> spec = ArchSpec.from_dict({"version": 1, "input": [1, 8, 8], "num_classes": 10,
    ...     "stem": {"out": 8}, "layers": [{"block": "basic", "out": 16, "adaptor": True}]})
    >>> [part.name for part in network_parts(spec)]
    ['stem', 'adaptors.0', 'layers.0', 'head']
    """
    adaptors = spec.adaptors
    count = sum(layer.adaptor for layer in spec.layers)
    alpha0 = (
        adaptors.alpha_init
        if adaptors.alpha_init is not None
        else initial_alpha(min(spec.input[1:]), count, adaptors.r1, adaptors.r2)
    )
    learned = {a.layer: a.sigma for a in adaptors.learned}
    stem = spec.stem
    in_ch = spec.input[0]
    parts = [
        NetworkPart(
            "stem",
            _key("stem", in_ch=in_ch, **stem.model_dump()),
            lambda: STEMS.get(stem.type)(in_ch, stem),
        )
    ]
    ch = stem.out
    for i, layer in enumerate(spec.layers):
        if layer.adaptor:
            a0 = math.log(learned[i] / (1 - learned[i])) if i in learned else alpha0
            parts.append(
                NetworkPart(
                    f"adaptors.{i}",
                    _key("adaptor", r1=adaptors.r1, r2=adaptors.r2, alpha=a0),
                    partial(ShapeAdaptor, adaptors.r1, adaptors.r2, a0),
                )
            )
        parts.append(
            NetworkPart(
                f"layers.{i}",
                _key("block", in_ch=ch, **layer.model_dump(exclude={"adaptor"})),
                partial(BLOCKS.get(layer.block), ch, layer),
            )
        )
        ch = layer.out
    last = spec.layers[-1]
    if BLOCKS.get(last.block).preact:
        parts.append(
            NetworkPart(
                "final",
                _key("final", ch=ch, act=last.act),
                lambda: nn.Sequential(nn.BatchNorm2d(ch), make_act(last.act)),
            )
        )
    head, classes = spec.head, spec.num_classes
    parts.append(
        NetworkPart(
            "head",
            _key("head", in_ch=ch, classes=classes, **head.model_dump()),
            partial(Head, ch, head, classes),
        )
    )
    return parts


class Network(nn.Module):
    """stem → [adaptor] block … → (final BN-act for pre-activation nets) → head."""

    def __init__(self, spec: ArchSpec) -> None:
        super().__init__()
        self.spec = spec
        self.input_shape: tuple[int, int, int] = spec.input
        built = {part.name: part.make() for part in network_parts(spec)}
        self.stem = built["stem"]
        self.adaptors = nn.ModuleDict(
            {n.split(".")[1]: m for n, m in built.items() if n.startswith("adaptors.")}
        )
        self.layers = nn.ModuleList(m for n, m in built.items() if n.startswith("layers."))
        self.final: nn.Module = built.get("final", nn.Identity())
        self.head = built["head"]

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
