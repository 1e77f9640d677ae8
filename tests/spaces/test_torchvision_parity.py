"""Block structures match torchvision exactly: classic networks written as specs have
torchvision's parameter counts and output shapes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch
import torchvision

from blocknas import ArchSpec, build


def _spec(stem: dict[str, Any], layers: list[dict[str, Any]], head: dict[str, Any]) -> ArchSpec:
    return ArchSpec.from_dict(
        {
            "version": 1,
            "input": [3, 224, 224],
            "num_classes": 1000,
            "stem": stem,
            "layers": layers,
            "head": head,
        }
    )


def _resnet(block: str, depths: list[int], widths: list[int], **extra: Any) -> ArchSpec:
    layers = []
    for stage, (n, out) in enumerate(zip(depths, widths, strict=True)):
        for i in range(n):
            layer = {"block": block, "out": out, "stride": 2 if stage and i == 0 else 1}
            layer.update({k: (v[stage] if isinstance(v, list) else v) for k, v in extra.items()})
            layers.append(layer)
    return _spec({"out": 64, "kernel": 7, "stride": 2, "pool": "max"}, layers, {})


def resnet18() -> ArchSpec:
    return _resnet("basic", [2, 2, 2, 2], [64, 128, 256, 512])


def resnet50() -> ArchSpec:
    return _resnet("bottleneck", [3, 4, 6, 3], [256, 512, 1024, 2048])


def resnext50_32x4d() -> ArchSpec:
    return _resnet(
        "bottleneck", [3, 4, 6, 3], [256, 512, 1024, 2048], mid=[128, 256, 512, 1024], groups=32
    )


def mobilenet_v2() -> ArchSpec:
    layers, ch = [], 32
    for t, c, n, s in [
        (1, 16, 1, 1),
        (6, 24, 2, 2),
        (6, 32, 3, 2),
        (6, 64, 4, 2),
        (6, 96, 3, 1),
        (6, 160, 3, 2),
        (6, 320, 1, 1),
    ]:
        for i in range(n):
            layers.append(
                {"block": "inverted", "out": c, "stride": s if i == 0 else 1, "mid": ch * t}
            )
            ch = c
    return _spec(
        {"out": 32, "stride": 2, "act": "relu6"},
        layers,
        {"conv": 1280, "act": "relu6", "dropout": 0.2},
    )


def shufflenet_v2_x1_0() -> ArchSpec:
    layers = [
        {"block": "shuffle", "out": out, "stride": 2 if i == 0 else 1}
        for out, n in [(116, 4), (232, 8), (464, 4)]
        for i in range(n)
    ]
    return _spec({"out": 24, "stride": 2, "pool": "max"}, layers, {"conv": 1024})


CASES: list[tuple[Callable[[], ArchSpec], Callable[..., torch.nn.Module]]] = [
    (resnet18, torchvision.models.resnet18),
    (resnet50, torchvision.models.resnet50),
    (resnext50_32x4d, torchvision.models.resnext50_32x4d),
    (mobilenet_v2, torchvision.models.mobilenet_v2),
    (shufflenet_v2_x1_0, torchvision.models.shufflenet_v2_x1_0),
]


@pytest.mark.parametrize(("make_spec", "make_tv"), CASES, ids=[c[0].__name__ for c in CASES])
def test_parameter_count_equals_torchvision(
    make_spec: Callable[[], ArchSpec], make_tv: Callable[..., torch.nn.Module]
) -> None:
    with torch.device("meta"):
        ours, theirs = build(make_spec()), make_tv()
        assert ours(torch.empty(1, 3, 224, 224)).shape == (1, 1000)
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(ours) == count(theirs)
    # Same multiset of tensor shapes: the structure matches, not just the total.
    shapes = lambda m: sorted(tuple(p.shape) for p in m.parameters())  # noqa: E731
    assert shapes(ours) == shapes(theirs)
