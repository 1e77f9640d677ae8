"""Check every block × op combination end to end: build, one training step, deploy form with the
same outputs. Used by ``blocknas blocks --verify`` (e.g. after registering a custom block) and by
the conformance tests, which reuse its spec factory."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from blocknas.spaces.blocks import BLOCKS
from blocknas.spaces.builder import build
from blocknas.spaces.deploy import to_deploy
from blocknas.spaces.errors import SpecError
from blocknas.spaces.ops import OPS
from blocknas.spaces.spec import ArchSpec


def is_forbidden(block: str, op: str) -> bool:
    """The contracts forbid a depthwise block (inverted, shuffle) with an op that cannot run
    depthwise (spconv, dwsep, splat)."""
    return BLOCKS.get(block).depthwise_op and not OPS.get(op).depthwise_ok


def combination_layer(
    block: str, op: str, *, width: int, stride: int = 1, kernel: int = 3, rich: bool = False
) -> dict[str, Any]:
    """A layer dict using ``block`` with ``op`` after a stem of ``width`` channels, with an adaptor
    in front. ``rich`` adds SE, groups 2, α ¼ and shortcut d wherever the block/op reads them."""
    bcls, ocls = BLOCKS.get(block), OPS.get(op)
    layer: dict[str, Any] = {
        "block": block,
        "op": op,
        "out": 2 * width if stride == 2 else width,
        "stride": stride,
        "kernel": kernel,
        "adaptor": True,
    }
    if rich:
        layer["attention"] = "se"
        if "groups" in bcls.uses and "groups" in ocls.uses:
            layer["groups"] = 2
        if "alpha" in ocls.uses:
            layer["alpha"] = 0.25
        if "shortcut" in bcls.uses:
            layer["shortcut"] = "d"
    return layer


def combination_spec(
    layer: dict[str, Any], *, size: int, width: int, in_ch: int = 3, num_classes: int = 5
) -> ArchSpec:
    """stem (width) → adaptor → the layer → head, on ``size``×``size`` inputs."""
    return ArchSpec.from_dict(
        {
            "version": 1,
            "input": [in_ch, size, size],
            "num_classes": num_classes,
            "stem": {"out": width},
            "layers": [layer],
            "adaptors": {"alpha_init": 1.0},
        }
    )


def randomize_bn(module: nn.Module, seed: int = 0) -> None:
    """Give every BN non-trivial statistics and affine parameters, so BN folding is exercised."""
    g = torch.Generator().manual_seed(seed)
    for m in module.modules():
        if isinstance(m, nn.BatchNorm2d):
            assert m.running_mean is not None and m.running_var is not None
            n = m.num_features
            with torch.no_grad():
                m.running_mean.copy_(torch.randn(n, generator=g) * 0.5)
                m.running_var.copy_(torch.rand(n, generator=g) * 1.5 + 0.5)
                m.weight.copy_(torch.rand(n, generator=g) + 0.5)
                m.bias.copy_(torch.randn(n, generator=g) * 0.5)


@dataclass
class Check:
    """The outcome for one block × op combination."""

    block: str
    op: str
    status: str  # ok | forbidden | failed
    train_params: int = 0  # the training form's parameters
    params: int = 0  # the deploy form's (contracts §5)
    rel_diff: float = math.nan  # max |train − deploy| / max |train|, eval mode
    message: str = ""


def verify_combination(
    block: str, op: str, *, size: int = 12, width: int = 32, stride: int = 2, kernel: int = 3
) -> Check:
    """Build, train one step, randomise BN statistics, compare with the deploy form."""
    try:
        layer = combination_layer(block, op, width=width, stride=stride, kernel=kernel)
        spec = combination_spec(layer, size=size, width=width)
    except SpecError as e:
        status = "forbidden" if is_forbidden(block, op) else "failed"
        return Check(block, op, status, message=str(e))
    try:
        torch.manual_seed(0)
        net = build(spec)
        x = torch.randn(4, 3, size, size)
        loss = nn.functional.cross_entropy(net(x), torch.tensor([0, 1, 2, 3]))
        loss.backward()
        torch.optim.SGD(net.parameters(), lr=0.01).step()
        randomize_bn(net)
        net.eval()
        deployed = to_deploy(net)
        with torch.no_grad():
            ref, out = net(x), deployed(x)
        rel = ((ref - out).abs().max() / ref.abs().max().clamp_min(1e-12)).item()
        count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
        return Check(block, op, "ok", count(net), count(deployed), rel)
    except Exception as e:  # a self-test reports failures instead of stopping at the first
        return Check(block, op, "failed", message=f"{type(e).__name__}: {e}".splitlines()[0])


def verify_all(**kwargs: Any) -> Iterator[Check]:
    """:func:`verify_combination` for every registered block × op."""
    for block in BLOCKS.names():
        for op in OPS.names():
            yield verify_combination(block, op, **kwargs)
