"""SPConv's parameter count is C_in·C_out·(1 + α·k²/g) plus its BNs (issue 2, done-when 4)."""

from __future__ import annotations

import pytest
from torch import nn

from blocknas.spaces import OpArgs, SpecError
from blocknas.spaces.ops.spconv import SPConv


@pytest.mark.parametrize(
    ("c_in", "c_out", "alpha", "kernel", "groups"),
    [
        (64, 64, 0.5, 3, 2),
        (32, 64, 0.25, 3, 2),
        (64, 128, 0.5, 5, 4),
        (16, 16, 1.0, 3, 1),
        (128, 64, 0.75, 3, 8),
    ],
)
def test_parameter_count_matches_formula(
    c_in: int, c_out: int, alpha: float, kernel: int, groups: int
) -> None:
    op = SPConv(OpArgs(c_in, c_out, kernel=kernel, groups=groups, alpha=alpha))
    conv = sum(p.numel() for m in op.modules() if isinstance(m, nn.Conv2d) for p in m.parameters())
    bns = [m for m in op.modules() if isinstance(m, nn.BatchNorm2d)]
    bn = sum(p.numel() for m in bns for p in m.parameters())
    total = sum(p.numel() for p in op.parameters())
    assert conv == c_in * c_out * (1 + alpha * kernel**2 / groups)
    assert len(bns) == (1 if alpha == 1.0 else 2)  # one BN per branch
    assert bn == 2 * c_out * len(bns)
    assert total == conv + bn


def test_paper_ratio_to_plain_conv() -> None:
    # α = ½, g = 2, k = 3: α/g + 1/k² = 0.361 of a plain 3×3 conv.
    op = SPConv(OpArgs(64, 64, kernel=3, groups=2, alpha=0.5))
    conv = sum(m.weight.numel() for m in op.modules() if isinstance(m, nn.Conv2d))
    assert conv / (64 * 64 * 9) == pytest.approx(0.5 / 2 + 1 / 9)


def test_alpha_leaving_no_channels_is_rejected() -> None:
    with pytest.raises(SpecError, match=r"^alpha: alpha=0.1 leaves zero representative channels"):
        SPConv(OpArgs(8, 8, alpha=0.1))
