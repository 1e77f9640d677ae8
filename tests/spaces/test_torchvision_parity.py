"""The torchvision presets are torchvision's networks: the same multiset of parameter shapes (so
exactly the same parameter count), and MACs within 0.5% of torchvision's counted the same way and
of the published totals in the reference sheet (shared/reference/blocks.md).

Both networks are built and counted on the meta device, so the test needs no memory or compute.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import pytest
import torch
import torchvision
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from blocknas import build, presets


class Case(NamedTuple):
    """A preset's torchvision twin and the reference sheet's params and MACs (if listed)."""

    make: Callable[..., nn.Module]
    params: int | None = None
    macs: float | None = None


tv = torchvision.models
CASES: dict[str, Case] = {
    # the reference sheet's table (torchvision 0.29, 224×224, 1000 classes)
    "resnet18": Case(tv.resnet18, 11_689_512, 1.814e9),
    "resnet50": Case(tv.resnet50, 25_557_032, 4.089e9),
    "resnext50_32x4d": Case(tv.resnext50_32x4d, 25_028_904, 4.230e9),
    "mobilenet_v2": Case(tv.mobilenet_v2, 3_504_872, 0.301e9),
    "shufflenet_v2": Case(tv.shufflenet_v2_x1_0, 2_278_604, 0.145e9),
    "shufflenet_v2_x1_0": Case(tv.shufflenet_v2_x1_0, 2_278_604, 0.145e9),
    # not in the table, but torchvision has it too
    "resnet34": Case(tv.resnet34),
}


def macs(model: nn.Module) -> int:
    """Conv and linear multiply-accumulates of one 224×224 image (FlopCounterMode ÷ 2)."""
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.empty(1, 3, 224, 224))
    return counter.get_total_flops() // 2


def count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def shapes(model: nn.Module) -> list[tuple[int, ...]]:
    return sorted(tuple(p.shape) for p in model.parameters())


def pair(name: str) -> tuple[nn.Module, nn.Module]:
    """(ours, torchvision's), both in eval mode on the meta device."""
    with torch.device("meta"):
        return build(presets.get(name)).eval(), CASES[name].make().eval()


@pytest.mark.parametrize("name", list(CASES))
def test_parameters_match_torchvision_exactly(name: str) -> None:
    ours, theirs = pair(name)
    assert shapes(ours) == shapes(theirs)
    assert count(ours) == count(theirs)
    if CASES[name].params is not None:
        assert count(ours) == CASES[name].params


@pytest.mark.parametrize("name", list(CASES))
def test_macs_match_torchvision_within_half_a_percent(name: str) -> None:
    ours, theirs = pair(name)
    with torch.device("meta"):
        ours_macs, their_macs = macs(ours), macs(theirs)
    assert ours_macs > 0
    assert 0.995 <= ours_macs / their_macs <= 1.005, (ours_macs, their_macs)
    published = CASES[name].macs
    if published is not None:
        assert 0.995 <= ours_macs / published <= 1.005, (ours_macs, published)


def test_vgg16_cifar_has_torchvision_vgg16_bn_convolutions() -> None:
    """Strided convs in place of the max-pools keep VGG-16's conv params and MACs exactly."""
    with torch.device("meta"):
        ours = build(presets.get("vgg16_cifar", num_classes=10, input=(3, 32, 32))).eval()
        theirs = tv.vgg16_bn().features.eval()
        x = torch.empty(1, 3, 32, 32)
        with FlopCounterMode(display=False) as ours_counter, torch.no_grad():
            ours.features(x)
        with FlopCounterMode(display=False) as their_counter, torch.no_grad():
            assert theirs(x).shape == (1, 512, 1, 1)
    # torchvision's convs also carry a bias, redundant before BN; compare the kernels
    kernels = lambda m: sorted(s for s in shapes(m) if len(s) == 4)  # noqa: E731
    assert sorted(kernels(ours.stem) + kernels(ours.layers)) == kernels(theirs)
    assert ours_counter.get_total_flops() == their_counter.get_total_flops() > 0
