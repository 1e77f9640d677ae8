"""The torchvision presets match torchvision: parameters exactly (same multiset of tensor
shapes), MACs within 0.5% of torchvision counted the same way and of the published totals."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
import torchvision
from torch.utils.flop_counter import FlopCounterMode

from blocknas import build, presets
from blocknas.cost import cost

# name → (torchvision constructor, published MACs from blocks.md)
CASES: dict[str, tuple[Callable[..., torch.nn.Module], float]] = {
    "resnet18": (torchvision.models.resnet18, 1.814e9),
    "resnet50": (torchvision.models.resnet50, 4.089e9),
    "resnext50_32x4d": (torchvision.models.resnext50_32x4d, 4.230e9),
    "mobilenet_v2": (torchvision.models.mobilenet_v2, 0.301e9),
    "shufflenet_v2": (torchvision.models.shufflenet_v2_x1_0, 0.145e9),
}


def torchvision_macs(model: torch.nn.Module) -> int:
    with FlopCounterMode(display=False) as counter:
        model(torch.empty(1, 3, 224, 224, device="meta"))
    return counter.get_total_flops() // 2


@pytest.mark.parametrize("name", list(CASES))
def test_preset_matches_torchvision(name: str) -> None:
    make_tv, published = CASES[name]
    spec = presets.get(name)
    with torch.device("meta"):
        ours, theirs = build(spec).eval(), make_tv().eval()
        tv_macs = torchvision_macs(theirs)
    shapes = lambda m: sorted(tuple(p.shape) for p in m.parameters())  # noqa: E731
    assert shapes(ours) == shapes(theirs)
    c = cost(spec)
    assert c.params == sum(p.numel() for p in theirs.parameters())
    assert abs(c.macs / tv_macs - 1) <= 0.005
    assert abs(c.macs / published - 1) <= 0.005
