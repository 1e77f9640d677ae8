"""How well the latency predictor predicts specs it never profiled, against the clock's own noise.

Each repetition starts from scratch (a new predictor file, cold caches): it profiles ``--samples``
training specs of the space, measures ``--holdout`` held-out specs twice (before and after the
profiling), fits, and reports on the held-out specs the share within ±10 %, the median and worst
error, Spearman and the median predicted/measured ratio, next to the same numbers for the first
measurement against the second. On a machine whose speed moves from one second to the next (a
shared VM), those numbers are mostly the clock's; the part error beside them is not: the training
specs' parts, one fifth of the specs at a time predicted by a model of the others (none of their
parts profiled), each spec's common factor taken out (a slow second slows all of its parts). It
also times one prediction (parts' features memoised, as in a search that already counted the
spec's MACs, and cold). Run:
``.venv/bin/python bench/bench_latency.py [--space examples/cifar10.yaml] [--repeats 3]``.
"""

from __future__ import annotations

import argparse
import math
import statistics
import tempfile
import time
from pathlib import Path

from blocknas.costmodel import counting, features
from blocknas.costmodel.latency import device_name
from blocknas.costmodel.predictor import FOLDS, LatencyPredictor, Target, fit_parts
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


def part_error(predictor: LatencyPredictor, seed: int = 0) -> float:
    """Median error (a ratio) of parts never profiled, each spec's common factor taken out."""
    train = [s for s in predictor.samples if s.role == "train"]
    batch = predictor.target.batch
    errors: list[float] = []
    for k in range(FOLDS):
        test = train[k::FOLDS]
        rest = [s for i, s in enumerate(train) if i % FOLDS != k]
        model = fit_parts(rest, batch, {key for s in test for key, _ in s.parts}, seed)
        for s in test:  # none of its parts observed: each predicted from its features
            logs = [
                math.log(p / ms) for p, (_, ms) in zip(model.parts_ms(s.spec), s.parts, strict=True)
            ]
            common = statistics.median(logs)
            errors += [math.expm1(abs(r - common)) for r in logs]
    return statistics.median(errors)


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
        parts = part_error(predictor)
        print(f"\nrepetition {rep + 1}: profiled and fitted in {seconds:.0f} s; one prediction "
              f"{warm:.3f} ms (features memoised), {cold:.1f} ms cold")  # fmt: skip
        print(report_table(predictor.report))
        print(f"parts never profiled, each spec's common factor out: {parts:.1%} median error")
        p, r = predictor.report["predictor"], predictor.report["remeasured"]
        rows.append((p["within_10pct"], p["median_error"], r["median_error"], parts))
    print(f"\n{device_name(a.device)}")
    print("repetition  within ±10%  median error  re-measured median  ratio  part error")
    for i, (within, err, noise, part) in enumerate(rows, 1):
        print(
            f"{i:>10}  {within:>11.0%}  {err:>12.1%}  {noise:>18.1%}  {err / noise:>5.2f}"
            f"  {part:>10.1%}"
        )


if __name__ == "__main__":
    main()
