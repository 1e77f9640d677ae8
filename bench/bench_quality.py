"""Search quality: does a sampler configuration find better fronts than random search, at equal
compute? (``make bench-quality``; results in docs/benchmarks.md.)

Every configuration runs the real search (``run_search``: Optuna study, Ray Tune, training on
digits) on the same space, data and budgets, once per seed. Runs are compared at **equal
epochs**: E = the fewest epochs any run of that space trained, and each run's front is the one it
had when its finished trials had spent E epochs (:mod:`blocknas.search.anytime`). Reported per
configuration, as the median over seeds:

- normalised hypervolume (accuracy against MACs; reference: accuracy 0 and the MACs budget);
- the gap to the union front of every run of that space (its hypervolume minus the run's);
- the test-accuracy hypervolume of the same front (chosen on validation accuracy: does it hold?);
- hypervolume at equal wall time (the shortest run's), trials trained, share of epochs saved;
- anytime curves (hypervolume against epochs spent), as a table and an HTML figure.

Runs are cached under ``--out`` by a hash of their resolved config, so adding seeds or
configurations re-runs only what is new (``--fresh`` re-runs everything).

Run: ``.venv/bin/python bench/bench_quality.py [--spaces digits,mobile] [--seeds 5]
[--configs default,random,random-no-es] [--trials 40]``.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import yaml

from blocknas.runners.ray_session import ray_environment
from blocknas.search.anytime import anytime, hypervolume_at, spent, within
from blocknas.search.config import SearchConfig
from blocknas.search.results import hypervolume, pareto_front, summary
from blocknas.search.run import make_scheduler, run_search

if TYPE_CHECKING:
    from blocknas.search.early_stop import Rule

ROOT = Path(__file__).resolve().parents[1]
SPACES = {
    "digits": ROOT / "examples" / "digits.yaml",
    "mobile": ROOT / "bench" / "spaces" / "mobile.yaml",
}
#: changes to the space file's ``search:`` section; ``default`` is the product's defaults
CONFIGS: dict[str, dict[str, Any]] = {
    "default": {},
    "random": {"sampler": "random", "warm_start": "none"},
    "default-no-warm-start": {"warm_start": "none"},
    "nsga2": {"sampler": "nsga2", "population": 8, "warm_start": "none"},
    "default-no-es": {"early_stopping": {"enabled": False}},
    "random-no-es": {
        "sampler": "random",
        "warm_start": "none",
        "early_stopping": {"enabled": False},
    },
}
OBJECTIVES = [("accuracy", "maximize"), ("macs", "minimize")]
KEEP = [
    "number", "state", "feasible", "launched", "epochs", "epochs_planned", "accuracy",
    "test_accuracy", "macs", "latency_ms", "datetime_start", "datetime_complete", "warm_start",
    "curve", "reason",
]  # fmt: skip


def resolved(space: str, config: str, seed: int, trials: int, results: Path) -> SearchConfig:
    """The search config of one run: the space file, its sampler settings replaced."""
    raw = yaml.safe_load(SPACES[space].read_text())
    search = {k: v for k, v in raw.get("search", {}).items() if k not in ("sampler", "population")}
    for key, value in CONFIGS[config].items():
        search[key] = search.get(key, {}) | value if isinstance(value, dict) else value
    raw["search"] = search | {"seed": seed, "trials": trials}
    raw["name"] = f"q-{space}-{config}-{seed}"
    raw["results"] = str(results)
    return SearchConfig.from_dict(raw)


def run(space: str, config: str, seed: int, trials: int, out: Path, fresh: bool) -> pd.DataFrame:
    """One search, or its cached records."""
    probe = resolved(space, config, seed, trials, Path("results"))
    scheduler = make_scheduler(probe)  # the rule's own defaults are not in the config
    what = probe.model_dump_json() + repr(scheduler.rule if scheduler else None)
    key = hashlib.sha256(what.encode()).hexdigest()[:12]
    path = out / f"{space}-{config}-{seed}-{key}.csv"
    if path.exists() and not fresh:
        return _read(path)
    with tempfile.TemporaryDirectory() as tmp:
        cfg = resolved(space, config, seed, trials, Path(tmp))
        t0 = time.perf_counter()
        df = run_search(cfg, echo=lambda _line: None).results
        seconds = time.perf_counter() - t0
    s = summary(df)
    print(
        f"  {space} {config} seed {seed}: {s['epochs_run']} epochs, {s['pruned']} pruned, "
        f"front {s['front']}, {seconds:.0f} s",
        flush=True,
    )
    out.mkdir(parents=True, exist_ok=True)
    df.reindex(columns=KEEP).to_csv(path, index=False)
    (out / f"{path.stem}.json").write_text(json.dumps({"budgets": df.attrs["budgets"]}))
    return _read(path)


def _read(path: Path) -> pd.DataFrame:
    df = pd.read_csv(path, parse_dates=["datetime_start", "datetime_complete"])
    df = df.reindex(columns=KEEP)
    df["feasible"] = df["feasible"].astype(bool)
    df.attrs["objectives"] = OBJECTIVES
    df.attrs["budgets"] = json.loads(path.with_suffix(".json").read_text())["budgets"]
    return df


def test_hypervolume(df: pd.DataFrame, reference: dict[str, float]) -> float:
    """The front chosen on validation accuracy, scored with its test accuracy."""
    front = pareto_front(df, OBJECTIVES)
    return hypervolume(front.assign(accuracy=front["test_accuracy"]), OBJECTIVES, reference)


def assess(runs: dict[tuple[str, int], pd.DataFrame]) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Per-run quality at equal epochs and equal wall time (see the module docstring)."""
    first = next(iter(runs.values()))
    reference = {"macs": float(first.attrs["budgets"]["macs"])}
    totals = {k: spent(df) for k, df in runs.items()}
    epochs = min(float(s["epochs"].sum()) for s in totals.values())
    seconds = min(float(s["seconds"].max()) for s in totals.values())
    union = hypervolume(pd.concat(list(runs.values()), ignore_index=True), OBJECTIVES, reference)
    rows = []
    for (config, seed), df in runs.items():
        early = within(df, epochs=epochs)
        s = summary(df)
        rows.append(
            {
                "config": config,
                "seed": seed,
                "hypervolume": hypervolume(early, OBJECTIVES, reference),
                "gap": union - hypervolume(early, OBJECTIVES, reference),
                "test_hypervolume": test_hypervolume(early, reference),
                "hv_equal_wall": hypervolume(within(df, seconds=seconds), OBJECTIVES, reference),
                "trials_at_e": len(early),
                "hv_all_trials": hypervolume(df, OBJECTIVES, reference),
                "epochs_all": float(s["epochs_run"]),
                "saved_fraction": float(s.get("saved_fraction") or 0.0),
                "wall_s": float(totals[(config, seed)]["seconds"].max()),
            }
        )
    return pd.DataFrame(rows), {"epochs": epochs, "seconds": seconds, "union": union}


def report(space: str, table: pd.DataFrame, info: dict[str, Any]) -> str:
    """The markdown table of one space: medians over seeds, gap ratio against random."""
    med = table.groupby("config").median(numeric_only=True)
    base = med.loc["random", "gap"] if "random" in med.index else float("nan")
    lines = [
        f"**{space}**: equal epochs E = {info['epochs']:.0f}, equal wall time "
        f"{info['seconds']:.0f} s, union-front hypervolume {info['union']:.4f}, "
        f"{table.seed.nunique()} seeds",
        "",
        "| config | hypervolume at E | gap to union | gap / random's | test-acc. hypervolume "
        "| hypervolume at equal wall time | trials by E | epochs saved | all-trials hypervolume |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for config, r in med.iterrows():
        lines.append(
            f"| {config} | {r.hypervolume:.4f} | {r.gap:.4f} | {r.gap / base:.2f} | "
            f"{r.test_hypervolume:.4f} | {r.hv_equal_wall:.4f} | {r.trials_at_e:.0f} | "
            f"{r.saved_fraction:.0%} | {r.hv_all_trials:.4f} |"
        )
    return "\n".join(lines)


def curves(
    space: str, runs: dict[tuple[str, int], pd.DataFrame], epochs: float
) -> dict[str, list[float]]:
    """Median hypervolume per config at 10%, 20%, … 100% of E (the anytime curve)."""
    ref = {"macs": float(next(iter(runs.values())).attrs["budgets"]["macs"])}
    marks = [epochs * i / 10 for i in range(1, 11)]
    by_config: dict[str, list[list[float]]] = {}
    for (config, _seed), df in runs.items():
        by_config.setdefault(config, []).append(hypervolume_at(anytime(df, OBJECTIVES, ref), marks))
    return {
        c: [statistics.median(v) for v in zip(*runs_, strict=True)]
        for c, runs_ in by_config.items()
    }


def figure(
    all_curves: dict[str, dict[str, list[float]]], marks: dict[str, float], path: Path
) -> None:
    """Anytime curves as one HTML file (plotly, one panel per space)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=len(all_curves), subplot_titles=list(all_curves))
    for col, (space, by_config) in enumerate(all_curves.items(), start=1):
        xs = [marks[space] * i / 10 for i in range(1, 11)]
        for config, ys in by_config.items():
            fig.add_trace(
                go.Scatter(x=xs, y=ys, name=f"{space}: {config}", mode="lines+markers"), 1, col
            )
    fig.update_xaxes(title_text="epochs spent")
    fig.update_yaxes(title_text="normalised hypervolume (median over seeds)")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.write_html(path, include_plotlyjs="cdn")


def replay(df: pd.DataFrame, rule: Rule, planned: int, costs: list[str]) -> dict[int, int]:
    """Trial number → the epoch ``rule`` stops it at, epochs fed in the order they finished."""
    events = []
    for r in df[df["curve"].notna() & (df["state"] == "complete")].itertuples():
        curve = ast.literal_eval(r.curve) if isinstance(r.curve, str) else list(r.curve)
        span = r.datetime_complete - r.datetime_start
        for epoch, accuracy in enumerate(curve, start=1):
            at = r.datetime_start + span * epoch / len(curve)
            events.append((at, r.number, epoch, accuracy, tuple(getattr(r, c) for c in costs)))
    from blocknas.search.early_stop import ParetoStopping  # imports Ray: after ray_environment

    stops = ParetoStopping(rule, planned)
    stopped: dict[int, int] = {}
    for _at, number, epoch, accuracy, cost in sorted(events):
        if number not in stopped and stops.record(str(number), epoch, accuracy, cost):
            stopped[number] = epoch
    return stopped


def price(df: pd.DataFrame, rule: Rule, planned: int, costs: list[str]) -> tuple[float, float]:
    """(share of planned epochs saved, hypervolume lost as a share of the full run's)."""
    stopped = replay(df, rule, planned, costs)
    launched = int((df["epochs"].fillna(0) > 0).sum())
    saved = sum(planned - e for e in stopped.values()) / (planned * launched)
    ref = {"macs": float(df.attrs["budgets"]["macs"])}
    states = zip(df.number, df.state, strict=True)
    cut = df.assign(state=["pruned" if n in stopped else s for n, s in states])
    full = hypervolume(df, OBJECTIVES, ref)
    return saved, 1 - hypervolume(cut, OBJECTIVES, ref) / full


def stopping(space: str, runs: dict[tuple[str, int], pd.DataFrame], probe: SearchConfig) -> str:
    """The default stopping rule replayed on the runs trained without it (one markdown line)."""
    scheduler = make_scheduler(probe)
    full = [df for (config, _seed), df in runs.items() if config == "random-no-es"]
    if scheduler is None or not full:
        return f"{space}: no runs without early stopping to replay on"
    priced = [
        price(df, scheduler.rule, probe.train.epochs, list(scheduler.cost_keys)) for df in full
    ]
    saved, lost = [p[0] for p in priced], [p[1] for p in priced]
    return (
        f"| {space} | {scheduler.rule!r} | {len(full)} | {statistics.median(saved):.0%} "
        f"({min(saved):.0%}–{max(saved):.0%}) | {statistics.median(lost):.2%} "
        f"(worst {max(lost):.2%}) |"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--spaces", default="digits,mobile")
    p.add_argument("--configs", default="default,random")
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--no-es-seeds", type=int, default=3, help="random-no-es runs, for the replay")
    p.add_argument("--trials", type=int, default=40)
    p.add_argument("--out", type=Path, default=ROOT / "runs" / "bench-quality")
    p.add_argument("--figure", type=Path, default=ROOT / "docs" / "img" / "search_quality.html")
    p.add_argument("--fresh", action="store_true")
    args = p.parse_args()
    ray_environment()  # before anything imports Ray (the cache key reads the stopping rule)
    configs, spaces = args.configs.split(","), args.spaces.split(",")
    t0 = time.perf_counter()
    all_curves, marks = {}, {}
    lines: list[str] = []
    for space in spaces:
        runs = {
            (config, seed): run(space, config, seed, args.trials, args.out, args.fresh)
            for seed in range(args.seeds)
            for config in configs
        }
        for seed in range(args.no_es_seeds):
            runs["random-no-es", seed] = run(
                space, "random-no-es", seed, args.trials, args.out, args.fresh
            )
        table, info = assess(runs)
        print(report(space, table, info), flush=True)
        all_curves[space] = curves(space, runs, info["epochs"])
        marks[space] = info["epochs"]
        print("anytime (median hypervolume at 10%…100% of E):")
        for config, ys in all_curves[space].items():
            print(f"  {config:>14}: " + " ".join(f"{y:.3f}" for y in ys))
        table.to_csv(args.out / f"{space}-table.csv", index=False)
        lines.append(stopping(space, runs, resolved(space, "default", 0, args.trials, args.out)))
    print("early stopping (default rule) replayed on the runs without it:")
    print("| space | rule | runs | epochs saved | hypervolume lost |\n|---|---|---:|---:|---:|")
    print("\n".join(lines))
    figure(all_curves, marks, args.figure)
    print(f"total {time.perf_counter() - t0:.0f} s; figure: {args.figure}")


if __name__ == "__main__":
    main()
