"""Params and MACs of a spec's training and deploy forms, counted without computing anything.

The network is built on the meta device and run once under ``FlopCounterMode``; MACs are its
flops ÷ 2 (conv and linear multiply-accumulates, torch's convention). ``deform_conv2d`` is not
counted by FlopCounterMode, so each deformable conv adds C_out·(C_in/g)·k²·H_out·W_out by formula
(its offset conv is an ordinary conv and is counted). Shape Adaptors on the meta device use the
spec's σ (the learned one when the spec carries it), so learned sizes are what gets counted.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from blocknas.spaces import ArchSpec, build, to_deploy
from blocknas.spaces.ops.deform import DeformConv


@dataclass(frozen=True)
class Counts:
    params: int
    macs: int


def deform_macs(module: DeformConv, out: torch.Tensor) -> int:
    """MACs of the deformable sampling conv itself: C_out·(C_in/g)·k²·H_out·W_out per image."""
    c_out, c_in_per_group, kh, kw = module.weight.shape
    return int(c_out * c_in_per_group * kh * kw * out.shape[-2] * out.shape[-1])


@contextmanager
def _bn_bypassed(model: nn.Module) -> Iterator[None]:
    """BatchNorm has no MACs, yet on the meta device its reference decomposition costs more than
    everything else together: skip it while counting (shapes are unchanged)."""
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for m in bns:
        m.forward = _identity  # type: ignore[method-assign,assignment]
    try:
        yield
    finally:
        for m in bns:
            del m.forward


def _identity(x: torch.Tensor) -> torch.Tensor:
    return x


def count_module(model: nn.Module, input_shape: tuple[int, ...]) -> Counts:
    """Params and per-image MACs of ``model`` (already on the meta device) at ``input_shape``."""
    extra = [0]

    def add_deform(mod: nn.Module, _inputs: object, out: torch.Tensor) -> None:
        assert isinstance(mod, DeformConv)
        extra[0] += deform_macs(mod, out)

    hooks = [
        m.register_forward_hook(add_deform) for m in model.modules() if isinstance(m, DeformConv)
    ]
    try:
        with torch.no_grad(), _bn_bypassed(model), FlopCounterMode(display=False) as counter:
            model(torch.empty(1, *input_shape, device="meta"))
    finally:
        for h in hooks:
            h.remove()
    params = sum(p.numel() for p in model.parameters())
    return Counts(params=params, macs=counter.get_total_flops() // 2 + extra[0])


def count(spec: ArchSpec) -> tuple[Counts, Counts]:
    """(training form, deploy form) counts of ``spec``."""
    with torch.device("meta"):
        net = build(spec).eval()  # eval: batch-1 BN on 1×1 attention features is fine
    # The counted forward passes run outside the device context: its per-op dispatch hop
    # costs more than the counting itself.
    train = count_module(net, spec.input)
    with torch.device("meta"):  # the deploy form's new convs are created on meta too
        deployed = to_deploy(net, inplace=True)  # a throwaway network: no copy needed
    return train, count_module(deployed, spec.input)
