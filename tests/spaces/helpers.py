"""Checks shared by the conformance suites."""

from __future__ import annotations

import warnings

import torch
from torch import nn


def randomize_bn(module: nn.Module, seed: int = 0) -> None:
    """Give every BN non-trivial statistics and affine parameters, so folding is really tested."""
    g = torch.Generator().manual_seed(seed)
    for m in module.modules():
        if isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            with torch.no_grad():
                m.running_mean.copy_(torch.randn(n, generator=g) * 0.5)
                m.running_var.copy_(torch.rand(n, generator=g) * 1.5 + 0.5)
                m.weight.copy_(torch.rand(n, generator=g) + 0.5)
                m.bias.copy_(torch.randn(n, generator=g) * 0.5)


def assert_grads_reach_every_parameter(module: nn.Module, out: torch.Tensor) -> None:
    """Backprop a random projection of ``out``; every parameter must get a finite, non-zero grad."""
    g = torch.Generator().manual_seed(1)
    (out * torch.randn(out.shape, generator=g)).sum().backward()
    for name, p in module.named_parameters():
        assert p.grad is not None, f"no gradient reaches {name}"
        assert torch.isfinite(p.grad).all(), f"non-finite gradient in {name}"
        assert p.grad.abs().sum() > 0, f"zero gradient in {name}"


def assert_close_rel(a: torch.Tensor, b: torch.Tensor, rel: float = 1e-5) -> float:
    """max |a − b| ≤ rel × max |a|; returns the ratio seen."""
    scale = a.abs().max().item()
    diff = (a - b).abs().max().item()
    assert diff <= rel * max(scale, 1e-6), f"max abs diff {diff:.3g} > {rel} × {scale:.3g}"
    return diff / max(scale, 1e-12)


def assert_traces(module: nn.Module, x: torch.Tensor) -> None:
    """torch.jit.trace works and the traced module reproduces the eager outputs."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.simplefilter("ignore", FutureWarning)  # jit.trace is deprecated but still the check asked for
        traced = torch.jit.trace(module, x, check_trace=False)
    with torch.no_grad():
        assert_close_rel(module(x), traced(x), rel=1e-5)
