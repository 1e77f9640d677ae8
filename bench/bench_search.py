"""The search's own costs: orchestration overhead per trial, and what early stopping saves.

1. Overhead. The same trivial objective (a random accuracy; the candidate's analytic cost) runs
   through ``run_search`` (Optuna study in SQLite + Tune searcher + Ray Tune with reused actors)
   and through a plain ``study.optimize`` loop that samples and costs the same space with the
   same sampler, in memory. Both sample and cost every candidate, each from a cold cost memo, so
   the difference per trial is what the orchestration adds. Ray's start-up (once per search) is
   reported apart.
2. Early stopping. The digits search of ``examples/digits.yaml`` (accuracy against MACs, random
   sampler with a fixed seed, so both runs propose the same candidates) runs with and without
   early stopping (the default rule); it reports the epochs trained and the normalised
   hypervolume of each front (contracts §5) against one common reference: the MACs budget.

Run: ``.venv/bin/python bench/bench_search.py [--trials 40] [--skip-early-stopping]``.
"""

from __future__ import annotations

import argparse
import random
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


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trials", type=int, default=40)
    p.add_argument("--es-trials", type=int, default=24)
    p.add_argument("--skip-early-stopping", action="store_true")
    args = p.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # the plain loop's per-trial INFO lines
    for concurrency in (1, 2):
        r = overhead(args.trials, concurrency)
        print(
            f"overhead, {r['trials']} trials ({r['candidates']} candidates sampled and costed), "
            f"concurrency {concurrency}: search {r['search_per_trial_s']:.3f} s/trial, plain "
            f"Optuna loop {r['plain_per_trial_s']:.3f} s/trial, orchestration "
            f"{r['overhead_per_trial_s']:.3f} s/trial; ratio "
            f"{r['search_span_s'] / r['plain_s']:.2f}; Ray start-up and shutdown "
            f"{r['startup_s']:.1f} s once"
        )
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
