"""Every registered block × every registered op, inside a small network with a Shape Adaptor.

A combination the contracts forbid (a depthwise block with an op that cannot run depthwise) must
be rejected with a SpecError; every other one must build, train a step, convert to deploy form
with the same outputs, and trace.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch
from torch import nn

from blocknas import ArchSpec, SpecError, build, to_deploy
from blocknas.spaces import BLOCKS, OPS, FrozenShapeAdaptor
from blocknas.spaces.ops.acb import ACBlock
from blocknas.spaces.selftest import (
    combination_layer,
    combination_spec,
    is_forbidden,
    randomize_bn,
)
from tests.spaces.helpers import (
    assert_close_rel,
    assert_grads_reach_every_parameter,
    assert_traces,
)

STEM = 32


def forbidden(block: str, op: str) -> bool:
    return is_forbidden(block, op)


def spec_of(block: str, op: str, stride: int, kernel: int, size: int, rich: bool) -> ArchSpec:
    layer = combination_layer(block, op, width=STEM, stride=stride, kernel=kernel, rich=rich)
    return combination_spec(layer, size=size, width=STEM)


def allowed_cases() -> list[Any]:
    cases = []
    for block in BLOCKS.names():
        for op in OPS.names():
            if forbidden(block, op):
                continue
            for stride in (1, 2):
                for kernel in (3, 5):
                    for size in (9, 12):
                        variant = int(kernel == 5)
                        cases.append(
                            pytest.param(
                                block,
                                op,
                                stride,
                                kernel,
                                size,
                                variant,
                                id=f"{block}-{op}-s{stride}-k{kernel}-{size}px",
                            )
                        )
    return cases


@pytest.mark.parametrize(("block", "op", "stride", "kernel", "size", "variant"), allowed_cases())
def test_block_conformance(
    block: str, op: str, stride: int, kernel: int, size: int, variant: int
) -> None:
    torch.manual_seed(0)
    spec = spec_of(block, op, stride, kernel, size, rich=bool(variant))
    net = build(spec)
    x = torch.randn(4, 3, size, size)
    y = torch.tensor([0, 3, 1, 4])

    # One training step: finite loss, every parameter (the adaptor's α too) gets a gradient.
    opt = torch.optim.SGD(net.parameters(), lr=0.01)
    out = net(x)
    assert out.shape == (4, 5)
    loss = nn.functional.cross_entropy(out, y)
    assert torch.isfinite(loss)
    assert_grads_reach_every_parameter(net, out)
    assert net.adaptors["0"].alpha.grad is not None
    opt.step()

    # The adaptor resizes the stem's output: floor(s·H) with s = 0.5 + 0.5·sigmoid(1).
    sizes = net.learned_adaptors()
    s = 0.5 + 0.5 * torch.sigmoid(net.adaptors["0"].alpha).item()
    assert sizes[0].size == (math.floor(s * size), math.floor(s * size))

    randomize_bn(net)
    net.eval()
    deployed = to_deploy(net)
    assert not any(isinstance(m, ACBlock) for m in deployed.modules())
    assert any(isinstance(m, FrozenShapeAdaptor) for m in deployed.modules())
    if not BLOCKS.get(block).preact:  # pre-activation BNs precede a ReLU: nothing to fold into
        assert not any(isinstance(m, nn.BatchNorm2d) for m in deployed.modules())
    with torch.no_grad():
        assert_close_rel(net(x), deployed(x))
    assert_traces(deployed, x)


def forbidden_cases() -> list[Any]:
    return [
        pytest.param(b, o, id=f"{b}-{o}")
        for b in BLOCKS.names()
        for o in OPS.names()
        if forbidden(b, o)
    ]


def test_some_combinations_are_forbidden() -> None:
    # The contracts make inverted and shuffle run their op depthwise; spconv, dwsep and splat
    # cannot, so the forbidden list below must not be empty.
    assert {("inverted", "spconv"), ("shuffle", "dwsep"), ("inverted", "splat")} <= {
        tuple(p.values) for p in forbidden_cases()
    }


@pytest.mark.parametrize(("block", "op"), forbidden_cases())
def test_forbidden_combination_raises_spec_error(block: str, op: str) -> None:
    with pytest.raises(SpecError, match=r"layers\[0\]\.op: op \w+ cannot run depthwise"):
        spec_of(block, op, 2, 3, 9, rich=False)
