"""Checks shared by the conformance suites, and a scripted trial shared by the sampling tests."""

from __future__ import annotations

import random
import warnings
from typing import Any

import torch
from torch import nn


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
        warnings.simplefilter(
            "ignore", FutureWarning
        )  # jit.trace is deprecated but still the check asked for
        traced = torch.jit.trace(module, x, check_trace=False)
    with torch.no_grad():
        assert_close_rel(module(x), traced(x), rel=1e-5)


class Scripted:
    """A trial that answers from a dict (else a seeded random choice) and records every call."""

    def __init__(self, answers: dict[str, Any] | None = None, seed: int = 0) -> None:
        self.answers = answers or {}
        self.rng = random.Random(seed)
        self.params: dict[str, Any] = {}

    def suggest_categorical(self, name: str, choices: Any) -> Any:
        assert name not in self.params, f"{name} suggested twice"
        value = self.answers.get(name, self.rng.choice(list(choices)))
        assert value in choices
        self.params[name] = value
        return value
