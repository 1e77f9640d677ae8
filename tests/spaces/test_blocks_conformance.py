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
from tests.spaces.helpers import (
    assert_close_rel,
    assert_grads_reach_every_parameter,
    assert_traces,
    randomize_bn,
)

STEM = 32


def forbidden(block: str, op: str) -> bool:
    return BLOCKS.get(block).depthwise_op and not OPS.get(op).depthwise_ok


def layer_for(block: str, op: str, stride: int, kernel: int, variant: int) -> dict[str, Any]:
    """A layer exercising the block; ``variant`` 1 adds SE, groups 2 and α ¼ where they apply."""
    bcls, ocls = BLOCKS.get(block), OPS.get(op)
    out = 2 * STEM if stride == 2 else STEM
    layer: dict[str, Any] = {
        "block": block, "op": op, "out": out, "stride": stride, "kernel": kernel, "adaptor": True,
    }
    if variant:
        layer["attention"] = "se"
        if "groups" in bcls.uses and "groups" in ocls.uses:
            layer["groups"] = 2
        if "alpha" in ocls.uses:
            layer["alpha"] = 0.25
        if "shortcut" in bcls.uses:
            layer["shortcut"] = "d"
    return layer


def spec_for(layer: dict[str, Any], size: int) -> ArchSpec:
    return ArchSpec.from_dict(
        {
            "version": 1,
            "input": [3, size, size],
            "num_classes": 5,
            "stem": {"out": STEM},
            "layers": [layer],
            "adaptors": {"alpha_init": 1.0},
        }
    )


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
                                block, op, stride, kernel, size, variant,
                                id=f"{block}-{op}-s{stride}-k{kernel}-{size}px",
                            )
                        )
    return cases


@pytest.mark.parametrize(("block", "op", "stride", "kernel", "size", "variant"), allowed_cases())
def test_block_conformance(
    block: str, op: str, stride: int, kernel: int, size: int, variant: int
) -> None:
    torch.manual_seed(0)
    spec = spec_for(layer_for(block, op, stride, kernel, variant), size)
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
        pytest.param(b, o, id=f"{b}-{o}") for b in BLOCKS.names() for o in OPS.names() if forbidden(b, o)
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
        spec_for(layer_for(block, op, 2, 3, 0), 9)
