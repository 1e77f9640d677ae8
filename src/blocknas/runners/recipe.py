"""The training recipe: device, mixed precision, optimizer parameter groups, LR schedule.

Common practice for small CNNs (SGD with Nesterov momentum, cosine schedule after a linear
warm-up, weight decay on conv/linear weights only); bf16 (or fp16) autocast on CUDA.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import torch
from torch import nn

from blocknas.costmodel.latency import check_device
from blocknas.runners.config import TrainConfig
from blocknas.spaces import Network


def resolve_device(name: str) -> torch.device:
    """``auto`` → cuda when available, else cpu; anything else must be usable here."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return check_device(name)


def amp_dtype(config: TrainConfig, device: torch.device) -> torch.dtype | None:
    if device.type != "cuda" or config.amp == "off":
        return None
    if config.amp == "fp16" or (config.amp == "auto" and not torch.cuda.is_bf16_supported()):
        return torch.float16
    return torch.bfloat16


def param_groups(model: Network, weight_decay: float) -> list[dict[str, Any]]:
    """Weight decay on conv and linear weights only: decaying BN scales and biases only hurts."""
    adaptor_ids = {id(p) for p in model.adaptor_parameters()}
    decay: list[nn.Parameter] = []
    no_decay: list[nn.Parameter] = []
    for p in model.parameters():
        if id(p) in adaptor_ids or not p.requires_grad:
            continue
        (decay if p.ndim > 1 else no_decay).append(p)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def make_optimizer(model: Network, config: TrainConfig) -> torch.optim.Optimizer:
    groups = param_groups(model, config.weight_decay)
    if config.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=config.lr)
    return torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum, nesterov=config.nesterov)


def schedule(total: int, warmup: int) -> Callable[[int], float]:
    """Per-step factor: linear warm-up over ``warmup`` steps, then cosine from 1 to 0."""

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total - warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return factor


def autocast(device: torch.device, dtype: torch.dtype | None) -> AbstractContextManager[Any]:
    if dtype is None:
        return nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)
