"""Replay early-stopping rules offline on searches that trained every trial to the end.

A run without early stopping records each trial's validation accuracy after every epoch (its
``curve``). Feeding those curves, in the order the epochs finished, to a stopping rule gives
exactly the trials that rule would have stopped, had it run with the same candidates (which a
random sampler guarantees: it proposes the same candidates whatever happened before). So one set
of full runs prices many rules: epochs saved, as a share of those planned, and hypervolume lost
against the full run (same trials, accuracy against MACs, reference at the MACs budget).

Reads the cached runs of ``bench/bench_quality.py`` (configuration ``random-no-es`` by default);
run that first. ``.venv/bin/python bench/replay_stopping.py [--config random-no-es]``.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import pandas as pd

from blocknas.search.early_stop import DominanceRule, HalvingRule, Rule

ROOT = Path(__file__).resolve().parents[1]
RULES: dict[str, Rule] = {
    "dominance (2, 3, 0.1, 0) [before]": DominanceRule(2, 3, 0.1, 0.0),
    "halving eta 2, from epoch 1": HalvingRule(min_epoch=1, eta=2),
    "halving eta 3, from epoch 1": HalvingRule(min_epoch=1, eta=3),
    "halving eta 2, from epoch 2": HalvingRule(min_epoch=2, eta=2),
    "halving eta 1.5, from epoch 1": HalvingRule(min_epoch=1, eta=1.5),
}


def main() -> None:
    import sys

    sys.path.insert(0, str(ROOT / "bench"))
    from bench_quality import SPACES, _read, price

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default="random-no-es")
    p.add_argument("--out", type=Path, default=ROOT / "runs" / "bench-quality")
    p.add_argument("--planned", type=int, default=4)
    args = p.parse_args()
    rows = []
    for space in SPACES:
        for path in sorted(args.out.glob(f"{space}-{args.config}-*.csv")):
            df = _read(path)
            costs = ["macs", "latency_ms"] if df["latency_ms"].notna().any() else ["macs"]
            for name, rule in RULES.items():
                saved, lost = price(df, rule, args.planned, costs)
                rows.append({"space": space, "rule": name, "saved": saved, "lost": lost})
    table = pd.DataFrame(rows)
    print("| rule | space | runs | epochs saved (median) | hypervolume lost (median, worst) |")
    print("|---|---|---:|---:|---:|")
    for (rule, space), g in table.groupby(["rule", "space"], sort=False):
        print(
            f"| {rule} | {space} | {len(g)} | {statistics.median(g.saved):.0%} | "
            f"{statistics.median(g.lost):.2%}, {max(g.lost):.2%} |"
        )


if __name__ == "__main__":
    main()
