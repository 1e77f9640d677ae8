"""Digits: time for a small CNN to reach ≥ 97% test accuracy on 2 CPU threads, against a peer.

The spec is examples/specs/digits_small.yaml (16×16 inputs). The trainer (augmentation, cosine
schedule, per-epoch validation, final test, cost and latency) is compared with the bare minimum:
a hand-written loop over the same in-memory batches with the same optimizer and epochs, no
validation, no checkpoint. The ratio is the trainer's overhead.
Run: ``.venv/bin/python bench/bench_train_digits.py``.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch
import torch.nn.functional as F

from blocknas import ArchSpec, build
from blocknas.runners.config import TrainConfig
from blocknas.runners.data import batches
from blocknas.runners.datasets import load_data
from blocknas.runners.train import train

ROOT = Path(__file__).resolve().parents[1]
EPOCHS = 15


def main() -> None:
    torch.set_num_threads(2)
    spec = ArchSpec.from_file(ROOT / "examples" / "specs" / "digits_small.yaml")
    t0 = time.perf_counter()
    data = load_data("digits", input=spec.input)
    t_data = time.perf_counter() - t0
    cfg = TrainConfig(epochs=EPOCHS, batch_size=64, lr=0.1, threads=2, workers=0)
    t0 = time.perf_counter()
    result = train(spec, data, cfg)
    t_trainer = time.perf_counter() - t0

    torch.manual_seed(0)
    net = build(spec)
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9, nesterov=True)
    g = torch.Generator().manual_seed(0)
    t0 = time.perf_counter()
    for _ in range(EPOCHS):
        for x, y in batches(
            data.train,
            batch_size=64,
            mean=data.mean,
            std=data.std,
            shuffle=True,
            drop_last=True,
            generator=g,
        ):
            loss = F.cross_entropy(net(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
    t_bare = time.perf_counter() - t0

    m = result.metrics
    print(
        f"digits_small, {EPOCHS} epochs, 2 threads: test accuracy {m['test_accuracy']:.4f}, "
        f"accuracy {m['accuracy']:.4f}; data {t_data:.1f} s, trainer {t_trainer:.1f} s "
        f"(training loop {m['wall_seconds']:.1f} s), bare loop {t_bare:.1f} s, "
        f"trainer / bare {t_trainer / t_bare:.2f}"
    )


if __name__ == "__main__":
    main()
