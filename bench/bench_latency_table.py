"""How well a latency table predicts measured latency.

30 specs are drawn from a space; each distinct part is timed once into a table, the table
predicts each spec as the sum of its parts, and each whole spec is measured end to end
(deploy form, batch 1, one thread). Reports Spearman rank correlation and the median relative
error. Run: ``.venv/bin/python bench/bench_latency_table.py [--space examples/cifar10.yaml]``.
"""

from __future__ import annotations

import argparse
import statistics
import time

from blocknas.costmodel.latency import measure_latency
from blocknas.costmodel.table import LatencyTable
from blocknas.spaces.schema import SearchSpace


def ranks(xs: list[float]) -> list[float]:
    order = sorted(range(len(xs)), key=xs.__getitem__)
    r = [0.0] * len(xs)
    for rank, i in enumerate(order):
        r[i] = float(rank)
    return r


def spearman(a: list[float], b: list[float]) -> float:
    ra, rb = ranks(a), ranks(b)
    ma, mb = statistics.fmean(ra), statistics.fmean(rb)
    cov = sum((x - ma) * (y - mb) for x, y in zip(ra, rb, strict=True))
    var = (sum((x - ma) ** 2 for x in ra) * sum((y - mb) ** 2 for y in rb)) ** 0.5
    return cov / var


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--space", default="examples/cifar10.yaml")
    ap.add_argument("--specs", type=int, default=30)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=1000)
    a = ap.parse_args()
    space = SearchSpace.from_file(a.space)
    specs = [space.sample_random(a.seed + i) for i in range(a.specs)]
    table = LatencyTable(device="cpu", threads=a.threads)
    t0 = time.perf_counter()
    for spec in specs:
        table.add(spec)
    t_table = time.perf_counter() - t0
    predicted = [table.predict(s) for s in specs]
    t0 = time.perf_counter()
    measured = [measure_latency(s, device="cpu", threads=a.threads) for s in specs]
    t_measure = time.perf_counter() - t0
    errors = [abs(p - m) / m for p, m in zip(predicted, measured, strict=True)]
    bias = statistics.median(p / m for p, m in zip(predicted, measured, strict=True))
    print(
        f"space {a.space}, {a.specs} specs, {len(table.entries)} distinct parts, "
        f"{a.threads} thread(s)"
    )
    print(
        f"measured latency: median {statistics.median(measured):.2f} ms, "
        f"range {min(measured):.2f}–{max(measured):.2f} ms"
    )
    print(
        f"Spearman rank correlation {spearman(predicted, measured):.3f}; "
        f"median relative error {100 * statistics.median(errors):.1f}%; "
        f"median predicted/measured {bias:.3f}"
    )
    print(f"time: table {t_table:.1f} s, end-to-end measurement {t_measure:.1f} s")


if __name__ == "__main__":
    main()
