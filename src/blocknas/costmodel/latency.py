"""Latency: the median of repeated timed forward passes of a network's deploy form.

Timed with ``torch.utils.benchmark`` (which synchronises CUDA) after a warm-up, on a fixed number
of threads, batch 1 by default: the numbers a deployed single-image model would see. Random
weights and inputs are drawn from forked RNG streams, so timing never moves the caller's RNG.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import torch
from torch import nn

from blocknas.costmodel.memory import check_memory
from blocknas.spaces import ArchSpec, build, to_deploy

if TYPE_CHECKING:
    from torch.utils.benchmark import Timer

DEVICES = ("cpu", "cuda")


def check_device(device: str) -> torch.device:
    """A usable torch device, or ValueError naming the value and what is allowed."""
    if device.split(":")[0] not in DEVICES:
        raise ValueError(f"device={device!r} is not supported; use one of {', '.join(DEVICES)}")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} requested but no CUDA GPU is available here")
    return torch.device(device)


@contextmanager
def own_rng(device: torch.device | str) -> Iterator[None]:
    """Leave the caller's global RNG state (CPU, and ``device``'s when it is a GPU) as it was:
    weights and inputs built for timing draw from a fork, and their values do not matter."""
    dev = torch.device(device)
    gpus: list[int] = []
    if dev.type == "cuda":
        gpus = [dev.index if dev.index is not None else torch.cuda.current_device()]
    with torch.random.fork_rng(devices=gpus, device_type="cuda"):
        yield


def _timer(module: nn.Module, x: torch.Tensor, threads: int) -> Timer:
    """A benchmark timer of ``module(x)``. ``torch.utils.benchmark`` is imported here, on first
    use: its import logs "No CUDA runtime is found" on CPU-only machines, which a user of
    ``blocknas cost`` should not see, so that logger is quietened for the import only."""
    logger = logging.getLogger("torch.utils.cpp_extension")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        from torch.utils.benchmark import Timer
    finally:
        logger.setLevel(level)
    return Timer("m(x)", globals={"m": module, "x": x}, num_threads=threads)


def measure_module(
    module: nn.Module,
    x: torch.Tensor,
    *,
    threads: int | None = None,
    warmup: int = 3,
    min_run_time: float = 0.2,
) -> float:
    """Median milliseconds of ``module(x)`` (no grad) over repeated blocks of runs."""
    threads = threads or torch.get_num_threads()
    with torch.no_grad():
        for _ in range(warmup):
            module(x)
        timer = _timer(module, x, threads)
        return float(timer.blocked_autorange(min_run_time=min_run_time).median * 1e3)


def measure_latency(
    spec_or_model: ArchSpec | nn.Module,
    *,
    device: str = "cpu",
    batch: int = 1,
    threads: int | None = None,
    input_shape: tuple[int, int, int] | None = None,
    min_run_time: float = 0.5,
) -> float:
    """Median latency (ms) of the deploy form of a spec (random weights) or a built network.

    >>> from blocknas.spaces.selftest import combination_spec
    >>> spec = combination_spec({"block": "basic", "out": 8}, size=8, width=8)
    >>> measure_latency(spec, threads=1, min_run_time=0.05) > 0
    True
    """
    dev = check_device(device)
    if batch < 1:
        raise ValueError(f"batch must be ≥ 1, got {batch=}")
    with own_rng(dev):
        if isinstance(spec_or_model, ArchSpec):
            check_memory(spec_or_model)
            model: nn.Module = build(spec_or_model)
            shape = input_shape or spec_or_model.input
        else:
            model = spec_or_model
            shape = input_shape or getattr(model, "input_shape", None)  # type: ignore[assignment]
            if shape is None:
                raise ValueError(
                    "measure_latency needs input_shape for a model that is not a Network"
                )
        deployed = to_deploy(model.to(dev))
        x = torch.randn(batch, *shape, device=dev)
    return measure_module(deployed, x, threads=threads, min_run_time=min_run_time)


def device_name(device: str = "cpu") -> str:
    """The hardware behind a device, as a latency is reported with: the GPU's name, or the CPU
    model (from /proc/cpuinfo where there is one) and its core count.

    >>> device_name("cpu").startswith("cpu: ")
    True
    """
    dev = check_device(device)
    if dev.type == "cuda":
        return f"cuda: {torch.cuda.get_device_name(dev)}"
    import os
    import platform

    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        model = names[0] if names else model
    except OSError:
        pass
    return f"cpu: {model}, {os.cpu_count()} cores"
