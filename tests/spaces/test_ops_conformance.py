"""Every registered op, across kernels, strides, groups, dilations, α and odd/even sizes.

The grid is derived from each op's declared capabilities (``uses``, ``depthwise_ok``), so an op
added to the registry is covered here without editing this file.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch
from torch import nn

from blocknas.spaces import OPS, OpArgs, to_deploy
from blocknas.spaces.selftest import randomize_bn
from tests.spaces.helpers import (
    assert_close_rel,
    assert_grads_reach_every_parameter,
    assert_traces,
)

C = 16


def op_cases() -> list[Any]:
    cases = []
    for name in OPS.names():
        cls = OPS.get(name)
        groups: list[int | str] = [1]
        if "groups" in cls.uses:
            groups.append(4)
            if cls.depthwise_ok:
                groups.append("dw")
        alphas = [0.25, 0.5, 1.0] if "alpha" in cls.uses else [0.5]
        dilations = [1, 2] if "dilation" in cls.uses else [1]
        for kernel in (3, 5):
            for stride in (1, 2):
                for g in groups:
                    for alpha in alphas:
                        for dilation in dilations:
                            for size in (7, 8):
                                cases.append(
                                    pytest.param(
                                        name,
                                        kernel,
                                        stride,
                                        g,
                                        alpha,
                                        dilation,
                                        size,
                                        id=f"{name}-k{kernel}-s{stride}-g{g}-a{alpha}-d{dilation}-{size}px",
                                    )
                                )
    return cases


@pytest.mark.parametrize(
    ("name", "kernel", "stride", "groups", "alpha", "dilation", "size"), op_cases()
)
def test_op_conformance(
    name: str, kernel: int, stride: int, groups: int | str, alpha: float, dilation: int, size: int
) -> None:
    torch.manual_seed(0)
    out_ch = C if groups == "dw" else 2 * C
    g = C if groups == "dw" else int(groups)
    args = OpArgs(C, out_ch, kernel=kernel, stride=stride, groups=g, dilation=dilation, alpha=alpha)
    op = OPS.get(name)(args)
    x = torch.randn(2, C, size, size)

    out = op(x)
    expect = math.ceil(size / stride)
    assert out.shape == (2, out_ch, expect, expect)
    assert_grads_reach_every_parameter(op, out)

    randomize_bn(op)
    op.eval()
    deployed = to_deploy(op)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in deployed.modules()), "a BN was not folded"
    with torch.no_grad():
        assert_close_rel(op(x), deployed(x))
    assert_traces(deployed, x)
    assert_traces(op, x)
