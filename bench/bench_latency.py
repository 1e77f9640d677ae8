"""How well the latency predictor predicts specs it never profiled, against the clock's own noise.

Each repetition starts from scratch (a new predictor file, cold caches): it profiles ``--samples``
training specs of the space, measures ``--holdout`` held-out specs twice (before and after the
profiling), fits, and reports on the held-out specs the share within ±10 %, the median and worst
error, Spearman and the median predicted/measured ratio, next to the same numbers for the first
measurement against the second. It also times one prediction (parts' features memoised, as in a
search that already counted the spec's MACs, and cold). Run:
``.venv/bin/python bench/bench_latency.py [--space examples/cifar10.yaml] [--repeats 3]``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from blocknas.costmodel import counting, features
from blocknas.costmodel.latency import device_name
from blocknas.costmodel.predictor import LatencyPredictor, Target
from blocknas.costmodel.profiling import profile, report_table
from blocknas.spaces.schema import SearchSpace


def prediction_ms(
    predictor: LatencyPredictor, space: SearchSpace, n: int = 100
) -> tuple[float, float]:
    """Median milliseconds of one prediction: features memoised, then cold (memos cleared)."""
    specs = [space.sample_random(50_000 + i) for i in range(n)]
    warm, cold = [], []
    for spec in specs:
        counting.clear_cache()
        features.clear_cache()
        t0 = time.perf_counter()
        predictor.predict(spec)
        t1 = time.perf_counter()
        predictor.predict(spec)
        t2 = time.perf_counter()
        cold.append((t1 - t0) * 1e3)
        warm.append((t2 - t1) * 1e3)
    return statistics.median(warm), statistics.median(cold)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--space", default="examples/cifar10.yaml")
    ap.add_argument("--samples", type=int, default=120)
    ap.add_argument("--holdout", type=int, default=30)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=1)
    a = ap.parse_args()
    space = SearchSpace.from_file(a.space)
    target = Target.here(a.device, a.threads, a.batch)
    print(f"{a.space} on {target.describe()}; {a.samples} profiled, {a.holdout} held out")
    rows = []
    for rep in range(a.repeats):
        counting.clear_cache()
        features.clear_cache()
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            predictor = profile(
                space, Path(tmp) / "latency.json", target, samples=a.samples,
                holdout=a.holdout, seed=1000 * rep,
            )  # fmt: skip
            seconds = time.perf_counter() - t0
        assert predictor.report is not None
        warm, cold = prediction_ms(predictor, space)
        print(f"\nrepetition {rep + 1}: profiled and fitted in {seconds:.0f} s; one prediction "
              f"{warm:.3f} ms (features memoised), {cold:.1f} ms cold")  # fmt: skip
        print(report_table(predictor.report))
        p, r = predictor.report["predictor"], predictor.report["remeasured"]
        rows.append((p["within_10pct"], p["median_error"], r["median_error"]))
    print(f"\n{device_name(a.device)}")
    print("repetition  within ±10%  median error  re-measured median  ratio")
    for i, (within, err, noise) in enumerate(rows, 1):
        print(f"{i:>10}  {within:>11.0%}  {err:>12.1%}  {noise:>18.1%}  {err / noise:>5.2f}")


if __name__ == "__main__":
    main()
