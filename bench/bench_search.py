"""The search's own costs: orchestration overhead per trial, and what early stopping saves.

1. Overhead. The same trivial objective (a random accuracy; the candidate's analytic cost) runs
   through ``run_search`` (Optuna study in SQLite + Tune searcher + Ray Tune with reused actors)
   and through a plain ``study.optimize`` loop that samples and costs the same space with the
   same sampler, in memory. Both sample and cost every candidate, each from a cold cost memo, so
   the difference is what the orchestration adds. Each run is a fresh Python process, as a
   user's search is. Ray's start-up is reported apart; a search of ``--trials`` and one of three
   times as many give the overhead of each further trial (the slope) and what a search pays
   once besides Ray's start-up (the first trial's actor importing torch and Tune, the driver's
   first queries); the average over a ``--trials`` search includes that once-only part.
2. Early stopping. The digits search of ``examples/digits.yaml`` (accuracy against MACs, random
   sampler with a fixed seed, so both runs propose the same candidates) runs with and without
   early stopping (the default rule); it reports the epochs trained and the normalised
   hypervolume of each front (contracts §5) against one common reference: the MACs budget.

Run: ``.venv/bin/python bench/bench_search.py [--trials 40] [--repeats 3] [--skip-early-stopping]``
(each pair of overhead runs is repeated; the medians per concurrency are the numbers to read).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import optuna
import yaml

from blocknas.costmodel import cost
from blocknas.costmodel.counting import clear_cache
from blocknas.search.config import SearchConfig
from blocknas.search.results import hypervolume, summary
from blocknas.search.run import run_search

ROOT = Path(__file__).resolve().parents[1]


def trivial_trial(config: dict[str, Any]) -> None:
    """A Tune trainable that trains nothing: one final report with a random accuracy."""
    from ray import tune

    rng = random.Random(config["number"])
    costs = config["costs"]
    tune.report(
        {
            "final": True,
            "epoch": 1,
            "accuracy": rng.random(),
            "test_accuracy": rng.random(),
            **{k: costs[k] for k in ("macs", "params", "train_macs", "train_params", "flops")},
            "node": "bench",
            "wall_seconds": 0.0,
        }
    )


def _config(results: Path, **changes: Any) -> dict[str, Any]:
    cfg = yaml.safe_load((ROOT / "examples" / "digits.yaml").read_text())
    cfg["results"] = str(results)
    cfg["objectives"] = ["accuracy", "macs"]
    cfg.pop("latency", None)
    for key, value in changes.items():
        cfg[key] = cfg.get(key, {}) | value if isinstance(value, dict) else value
    return cfg


def overhead(trials: int, concurrency: int) -> dict[str, float]:
    """One overhead measurement in a fresh Python process, as a user's search runs: the
    driver's first imports and a cold cost memo are part of every search."""
    cmd = [sys.executable, __file__, "--one", str(trials), str(concurrency)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def _overhead_here(trials: int, concurrency: int) -> dict[str, float]:
    clear_cache()
    with tempfile.TemporaryDirectory() as tmp:
        cfg = SearchConfig.from_dict(
            _config(
                Path(tmp),
                search={"sampler": "random", "trials": trials, "concurrency": concurrency},
            )
        )
        t0 = time.perf_counter()
        outcome = run_search(cfg, echo=lambda _line: None, trainable=trivial_trial)
        total = time.perf_counter() - t0
        df = outcome.results
        launched = df[df.launched.astype(bool)]
        span = (launched.datetime_complete.max() - df.datetime_start.min()).total_seconds()
        n_all = len(df)  # the searcher also sampled and costed the rejected candidates

        space = cfg.space
        study = optuna.create_study(
            directions=["maximize", "minimize"],
            sampler=optuna.samplers.RandomSampler(seed=0),
        )

        def objective(trial: optuna.Trial) -> tuple[float, float]:
            c = cost(space.sample(trial))
            return random.random(), float(c.macs)

        clear_cache()  # cold, as the search was: both pay for costing each new part once
        t0 = time.perf_counter()
        study.optimize(objective, n_trials=n_all)
        plain = time.perf_counter() - t0
    return {
        "trials": trials,
        "candidates": n_all,
        "concurrency": concurrency,
        "search_total_s": total,
        "search_span_s": span,
        "startup_s": total - span,
        "plain_s": plain,
        "search_per_trial_s": span / trials,
        "plain_per_trial_s": plain / trials,
        "overhead_per_trial_s": (span - plain) / trials,
    }


def early_stopping(trials: int) -> dict[str, dict[str, float]]:
    out = {}
    frames = {}
    for enabled in (True, False):
        with tempfile.TemporaryDirectory() as tmp:
            cfg = SearchConfig.from_dict(
                _config(
                    Path(tmp),
                    search={
                        "sampler": "random",
                        "trials": trials,
                        "early_stopping": {"enabled": enabled},  # the default rule
                    },
                )
            )
            t0 = time.perf_counter()
            outcome = run_search(cfg, echo=lambda _line: None)
            seconds = time.perf_counter() - t0
            frames[enabled] = outcome.results
            s = summary(outcome.results)
            out["on" if enabled else "off"] = {
                "epochs": float(s["epochs_run"]),
                "pruned": float(s["pruned"]),
                "front": float(s["front"]),
                "seconds": seconds,
            }
    ref = {"macs": float(frames[True].attrs["budgets"]["macs"])}  # the same box for both runs
    for enabled, df in frames.items():
        out["on" if enabled else "off"]["hypervolume"] = hypervolume(df, reference=ref)
    return out


def report_overhead(trials: int, concurrency: int, repeats: int) -> None:
    """Per repeat, a search of ``trials`` and one of ``3 × trials``: the difference gives the
    overhead of each further trial (the slope), apart from what a search pays once (the first
    trial's actor importing torch and Tune, the driver's first queries and costs)."""
    rows = []
    for _ in range(repeats):
        short, long = overhead(trials, concurrency), overhead(3 * trials, concurrency)
        for r in (short, long):
            print(
                f"overhead, {r['trials']} trials ({r['candidates']} candidates sampled and "
                f"costed), concurrency {concurrency}: search {r['search_per_trial_s']:.3f} "
                f"s/trial, plain Optuna loop {r['plain_per_trial_s']:.3f} s/trial, orchestration "
                f"{r['overhead_per_trial_s']:.3f} s/trial; Ray start-up and shutdown "
                f"{r['startup_s']:.1f} s once"
            )
        extra = {r["trials"]: r["search_span_s"] - r["plain_s"] for r in (short, long)}
        slope = (extra[3 * trials] - extra[trials]) / (2 * trials)
        rows.append((short["overhead_per_trial_s"], slope, extra[trials] - trials * slope))
    average, slope, fixed = (statistics.median(col) for col in zip(*rows, strict=True))
    print(
        f"overhead, concurrency {concurrency}, median of {repeats} repeats: {slope:.3f} s per "
        f"further trial, {fixed:.1f} s once per search; averaged over a {trials}-trial search "
        f"{average:.3f} s/trial"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trials", type=int, default=40)
    p.add_argument("--repeats", type=int, default=3, help="overhead runs per concurrency")
    p.add_argument("--es-trials", type=int, default=24)
    p.add_argument("--skip-early-stopping", action="store_true")
    p.add_argument("--one", nargs=2, type=int, help=argparse.SUPPRESS)  # trials, concurrency
    args = p.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # the plain loop's per-trial INFO lines
    if args.one:
        print(json.dumps(_overhead_here(*args.one)))
        return
    for concurrency in (1, 2):
        report_overhead(args.trials, concurrency, args.repeats)
    if not args.skip_early_stopping:
        es = early_stopping(args.es_trials)
        for k, v in es.items():
            print(
                f"early stopping {k:>3}: {v['epochs']:.0f} epochs trained, {v['pruned']:.0f} "
                f"pruned, front {v['front']:.0f}, normalized hypervolume {v['hypervolume']:.4f}, "
                f"{v['seconds']:.0f} s"
            )
        saved = 1 - es["on"]["epochs"] / es["off"]["epochs"]
        lost = 1 - es["on"]["hypervolume"] / es["off"]["hypervolume"]
        print(f"early stopping saves {saved:.1%} of the epochs and loses {lost:.1%} hypervolume")


if __name__ == "__main__":
    main()
