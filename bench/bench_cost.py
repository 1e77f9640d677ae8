"""Time to cost a 20-layer CIFAR-sized spec (ResNet-20: 19 convs + fc), against a peer.

The peer is one plain eager forward pass of the same network on CPU at batch 1.

- cold: the part memo is cleared before every call, so every distinct part is built and
  counted (what the first spec of a process pays);
- search: 300 specs drawn from examples/cifar10.yaml costed in a row from an empty memo (what
  a search pays per candidate on average, as the parts recur);
- warm: the same spec again, every part memoised;
- the whole-network count (one FlopCounterMode pass per form, no parts) for comparison.

Run: ``.venv/bin/python bench/bench_cost.py``.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import torch

from blocknas import build, presets, to_deploy
from blocknas.costmodel import cost
from blocknas.costmodel.counting import clear_cache, count_module
from blocknas.spaces.schema import SearchSpace

ROOT = Path(__file__).resolve().parents[1]


def median_ms(fn: Callable[[], object], repeats: int = 20) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def whole_network(spec: object) -> None:
    with torch.device("meta"):
        net = build(spec).eval()  # type: ignore[arg-type]
    count_module(net, net.input_shape)
    with torch.device("meta"):
        deployed = to_deploy(net, inplace=True, reuse_sizes=True)
    count_module(deployed, net.input_shape)


def cold(spec: object) -> None:
    clear_cache()
    cost(spec)  # type: ignore[arg-type]


def main() -> None:
    torch.set_num_threads(1)
    for name in ("resnet20_cifar", "resnet20_cifar_acb"):
        spec = presets.get(name, num_classes=10, input=(3, 32, 32))
        net = build(spec).eval()
        x = torch.randn(1, *spec.input)
        with torch.no_grad():
            forward = median_ms(partial(net, x))
        costing = median_ms(partial(cold, spec))
        whole = median_ms(partial(whole_network, spec))
        warm = median_ms(partial(cost, spec))
        print(
            f"{name}: cost() cold {costing:.1f} ms, warm {warm:.2f} ms, "
            f"whole-network count {whole:.1f} ms, "
            f"one CPU forward {forward:.1f} ms; cold cost / forward {costing / forward:.1f}"
        )
    space = SearchSpace.from_file(ROOT / "examples" / "cifar10.yaml")
    specs = [space.sample_random(seed) for seed in range(300)]
    clear_cache()
    t0 = time.perf_counter()
    for spec in specs:
        cost(spec)
    per_spec = (time.perf_counter() - t0) * 1e3 / len(specs)
    print(f"search: {len(specs)} specs from examples/cifar10.yaml, {per_spec:.1f} ms per spec")


if __name__ == "__main__":
    main()
