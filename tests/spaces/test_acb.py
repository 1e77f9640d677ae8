"""ACNet fusion: the fused k×k conv reproduces the three-branch block (issue 2, done-when 3)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from blocknas.spaces import OpArgs, to_deploy
from blocknas.spaces.ops.acb import ACBlock
from blocknas.spaces.selftest import randomize_bn

C = 32


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("dilation", [1, 2])
@pytest.mark.parametrize("groups", [1, 4, C])
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("kernel", [3, 5])
def test_fused_acb_matches_three_branches(
    kernel: int, stride: int, groups: int, dilation: int, dtype: torch.dtype
) -> None:
    torch.manual_seed(kernel * 100 + stride * 10 + groups + dilation)
    acb = ACBlock(OpArgs(C, C, kernel=kernel, stride=stride, groups=groups, dilation=dilation))
    randomize_bn(acb, seed=groups)
    acb = acb.to(dtype).eval()
    fused = to_deploy(acb)
    assert isinstance(fused, nn.Conv2d) and fused.bias is not None
    assert fused.kernel_size == (kernel, kernel) and fused.groups == groups
    x = torch.randn(2, C, 15, 16, dtype=dtype)
    with torch.no_grad():
        ref, out = acb(x), fused(x)
    scale = ref.abs().max().item()
    diff = (ref - out).abs().max().item()
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    assert diff <= tol * scale, f"{diff=} {scale=}"


def test_acb_branches_are_asymmetric_and_cost_k2_plus_2k() -> None:
    acb = ACBlock(OpArgs(8, 8, kernel=3))
    assert acb.ver.conv.kernel_size == (3, 1) and acb.hor.conv.kernel_size == (1, 3)
    conv_params = sum(m.weight.numel() for m in acb.modules() if isinstance(m, nn.Conv2d))
    assert conv_params == 8 * 8 * (9 + 2 * 3)
