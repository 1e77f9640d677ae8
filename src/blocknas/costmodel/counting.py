"""Params and MACs of a spec's training and deploy forms, counted without computing anything.

The network is built on the meta device and run once under ``FlopCounterMode``; MACs are its
flops ÷ 2 (conv and linear multiply-accumulates, torch's convention). ``deform_conv2d`` is not
counted by FlopCounterMode, so each deformable conv adds C_out·(C_in/g)·k²·H_out·W_out by formula
(its offset conv is an ordinary conv and is counted). Shape Adaptors on the meta device use the
spec's σ (the learned one when the spec carries it), so learned sizes are what gets counted.

A spec is counted part by part (stem, adaptors, blocks, head: :func:`network_parts`), each part
in its training and its deploy form, and the counts are memoised per (part, input shape). The
sums equal a count of the whole network (the tests check this on every preset and sampled specs).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from blocknas.spaces import ArchSpec, to_deploy
from blocknas.spaces.builder import NetworkPart, network_parts
from blocknas.spaces.ops.deform import DeformConv


@dataclass(frozen=True)
class Counts:
    params: int
    macs: int


def deform_macs(module: DeformConv, out: torch.Tensor) -> int:
    """MACs of the deformable sampling conv itself: C_out·(C_in/g)·k²·H_out·W_out per image."""
    c_out, c_in_per_group, kh, kw = module.weight.shape
    return int(c_out * c_in_per_group * kh * kw * out.shape[-2] * out.shape[-1])


#: Modules that keep the shape and have no MACs. On the meta device their Python reference
#: kernels cost more than the convs, so they are skipped while counting.
SHAPE_KEEPING: tuple[type[nn.Module], ...] = (
    nn.modules.batchnorm._BatchNorm,
    nn.ReLU,
    nn.ReLU6,
    nn.Hardswish,
    nn.Sigmoid,
    nn.SiLU,
)


@contextmanager
def _bypassed(model: nn.Module) -> Iterator[None]:
    """Replace every :data:`SHAPE_KEEPING` module's forward by the identity while counting."""
    skipped = [m for m in model.modules() if isinstance(m, SHAPE_KEEPING)]
    for m in skipped:
        m.forward = _identity
    try:
        yield
    finally:
        for m in skipped:
            del m.forward


def _identity(x: torch.Tensor) -> torch.Tensor:
    return x


def _counted(model: nn.Module, x: torch.Tensor) -> tuple[Counts, torch.Tensor]:
    """Run ``model`` (on the meta device) once under FlopCounterMode: its counts and output."""
    extra = [0]

    def add_deform(mod: nn.Module, _inputs: object, out: torch.Tensor) -> None:
        assert isinstance(mod, DeformConv)
        extra[0] += deform_macs(mod, out)

    hooks = [
        m.register_forward_hook(add_deform) for m in model.modules() if isinstance(m, DeformConv)
    ]
    try:
        with torch.no_grad(), _bypassed(model), FlopCounterMode(display=False) as counter:
            out = model(x)
    finally:
        for h in hooks:
            h.remove()
    params = sum(p.numel() for p in model.parameters())
    return Counts(params=params, macs=counter.get_total_flops() // 2 + extra[0]), out


def count_module(model: nn.Module, input_shape: tuple[int, ...]) -> Counts:
    """Params and per-image MACs of ``model`` (already on the meta device) at ``input_shape``."""
    return _counted(model, torch.empty(1, *input_shape, device="meta"))[0]


@dataclass(frozen=True)
class PartCounts:
    train: Counts
    deploy: Counts
    out_shape: tuple[int, ...]


#: Counts of every part seen in this process, by (part key, input shape). A pure memo: a part's
#: counts depend on nothing else, and searches meet the same parts again and again.
_PARTS: OrderedDict[tuple[str, tuple[int, ...]], PartCounts] = OrderedDict()
_PARTS_MAX = 20_000


def clear_cache() -> None:
    """Forget the memoised part counts (benchmarks measure a cold start with it)."""
    _PARTS.clear()


def _count_part(part: NetworkPart, shape: tuple[int, ...]) -> PartCounts:
    cached = _PARTS.get((part.key, shape))
    if cached is not None:
        return cached
    with torch.device("meta"):
        module = part.make().eval()  # eval: batch-1 BN on 1×1 attention features is fine
    # The counted passes run outside the device context: its per-op hop costs more than counting.
    x = torch.empty(shape, device="meta")
    train, out = _counted(module, x)
    with torch.device("meta"):  # the deploy form's new convs are created on meta too
        # A throwaway module whose adaptor just recorded its size: no copy, no extra forward.
        deployed = to_deploy(module, inplace=True, reuse_sizes=True)
    deploy, _ = _counted(deployed, x)
    counts = PartCounts(train, deploy, tuple(out.shape))
    _PARTS[(part.key, shape)] = counts
    if len(_PARTS) > _PARTS_MAX:
        _PARTS.popitem(last=False)
    return counts


def count(spec: ArchSpec) -> tuple[Counts, Counts]:
    """(training form, deploy form) counts of ``spec``: the sums over its parts.

    Each distinct part (same fields, same input shape) is built and counted once per process, so
    repeated blocks within a spec, and the blocks specs of one search share, cost nothing more.
    """
    shape: tuple[int, ...] = (1, *spec.input)
    train = deploy = Counts(0, 0)
    for part in network_parts(spec):
        c = _count_part(part, shape)
        train = Counts(train.params + c.train.params, train.macs + c.train.macs)
        deploy = Counts(deploy.params + c.deploy.params, deploy.macs + c.deploy.macs)
        shape = c.out_shape
    return train, deploy
