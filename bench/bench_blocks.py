"""Inference cost of each op, training form vs deploy form, relative to a plain 3×3 conv.

Ratios, not absolute times: every row is measured in the same run against the plain conv's
deploy form (the peer). Run: ``.venv/bin/python bench/bench_blocks.py [--threads N]``.
"""

from __future__ import annotations

import argparse
import platform
import statistics

import torch
import torch.utils.benchmark as tb
from torch import nn

from blocknas.spaces import OPS, OpArgs, to_deploy
from blocknas.spaces.selftest import randomize_bn


def median_ms(module: nn.Module, x: torch.Tensor, threads: int) -> float:
    timer = tb.Timer("m(x)", globals={"m": module, "x": x}, num_threads=threads)
    with torch.no_grad():
        module(x)  # warm-up
        return timer.blocked_autorange(min_run_time=0.5).median * 1e3


def params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--channels", type=int, default=64)
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=5)
    a = ap.parse_args()
    torch.manual_seed(0)
    x = torch.randn(a.batch, a.channels, a.size, a.size)

    def forms(name: str) -> tuple[nn.Module, nn.Module]:
        op = OPS.get(name)(OpArgs(a.channels, a.channels, kernel=3))
        randomize_bn(op)
        op.eval()
        return op, to_deploy(op)

    _, peer = forms("conv")
    print(
        f"machine: {platform.processor() or platform.machine()}, torch {torch.__version__}, "
        f"{a.threads} thread(s); input {tuple(x.shape)}, 3×3, stride 1; "
        f"median ratio over {a.rounds} rounds, the peer timed next to each form"
    )
    print("\n| op | params train | params deploy | train form / conv | deploy form / conv |")
    print("|---|---:|---:|---:|---:|")
    for name in OPS.names():
        train, deploy = forms(name)
        ratios: list[tuple[float, float]] = []
        for _ in range(a.rounds):
            peer_ms = median_ms(peer, x, a.threads)
            ratios.append(
                (
                    median_ms(train, x, a.threads) / peer_ms,
                    median_ms(deploy, x, a.threads) / peer_ms,
                )
            )
        t = statistics.median(r[0] for r in ratios)
        d = statistics.median(r[1] for r in ratios)
        print(f"| {name} | {params(train):,} | {params(deploy):,} | {t:.2f} | {d:.2f} |")


if __name__ == "__main__":
    main()
