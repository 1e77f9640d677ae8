"""Time to cost a 20-layer CIFAR-sized spec (ResNet-20: 19 convs + fc), against a peer.

The peer is one plain eager forward pass of the same network on CPU at batch 1: costing should
take a small multiple of that, far below the issue's 50 ms budget.
Run: ``.venv/bin/python bench/bench_cost.py``.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch

from blocknas import build, presets
from blocknas.cost import cost


def median_ms(fn: Callable[[], object], repeats: int = 20) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def main() -> None:
    torch.set_num_threads(1)
    for name in ("resnet20_cifar", "resnet20_cifar_acb"):
        spec = presets.get(name)
        net = build(spec).eval()
        x = torch.randn(1, *spec.input)
        with torch.no_grad():
            forward = median_ms(lambda net=net, x=x: net(x))
        costing = median_ms(lambda spec=spec: cost(spec))
        print(
            f"{name}: cost() {costing:.1f} ms (params + MACs, training and deploy form); "
            f"one CPU forward {forward:.1f} ms; ratio {costing / forward:.2f}"
        )


if __name__ == "__main__":
    main()
