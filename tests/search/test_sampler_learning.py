"""The default sampler learns from every finished trial: pruned ones, rejected ones, seeds.

These drive the real searcher and the configured sampler (the study in SQLite), with outcomes
decided by the test instead of training, so each runs in seconds. Each learning test compares
with a control that loses the information (the same trials reported as failed, which samplers
ignore; or random sampling), so it fails if the searcher ever drops pruned or rejected trials.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna

from blocknas.search.config import SearchConfig
from blocknas.search.results import load_results, pareto_front
from blocknas.search.run import warm_start
from blocknas.search.searcher import StudySearcher
from blocknas.search.study import open_study
from blocknas.spaces import ArchSpec

SPACE = {
    "input": [1, 8, 8],
    "num_classes": 10,
    "stem": {"out": 8},
    "layer": {"block": "plain", "op": ["conv", "dwsep", "acb", "sk"], "kernel": [3, 5]},
    "stages": [{"depth": 1, "out": [8, 16, 24, 32]}, {"depth": 1, "out": [16, 32], "stride": 2}],
}


def _config(
    tmp_path: Path, name: str, budgets: dict[str, float] | None = None, **search: Any
) -> SearchConfig:
    return SearchConfig.from_dict(
        {
            "name": name,
            "space": SPACE,
            "objectives": ["accuracy", "macs"],
            "budgets": budgets or {},
            "search": {"trials": 1000, "seed": 3, **search},
            "results": str(tmp_path / "runs"),
        }
    )


class Driver:
    """Tune's side of the searcher, without Ray: suggest, then report an outcome."""

    def __init__(self, cfg: SearchConfig, tmp_path: Path) -> None:
        self.study = open_study(cfg, resume=False)
        self.seeded = warm_start(self.study, cfg)
        self.stopped: dict[str, int] = {}
        self.searcher = StudySearcher(
            self.study,
            cfg,
            trials=cfg.search.trials,
            trial_config={},
            checkpoint_dir=tmp_path / "ckpt",
            stopped_at=self.stopped.get,
        )
        self.n = 0

    def next(self) -> tuple[str, ArchSpec]:
        self.n += 1
        tid = f"t{self.n}"
        config = self.searcher.suggest(tid)
        assert isinstance(config, dict), config
        return tid, ArchSpec.from_dict(config["spec"])

    def complete(self, tid: str, accuracy: float, spec: ArchSpec) -> None:
        result = {"final": True, "epoch": 2, "accuracy": accuracy, "test_accuracy": accuracy}
        self.searcher.on_trial_complete(tid, result | _costs(spec))

    def prune(self, tid: str, spec: ArchSpec, accuracy: float = 0.99) -> None:
        """Stopped at epoch 1 with a (partial) accuracy that would top the front if kept."""
        self.stopped[tid] = 1
        self.searcher.on_trial_complete(tid, {"epoch": 1, "accuracy": accuracy} | _costs(spec))

    def fail(self, tid: str) -> None:
        self.searcher.on_trial_complete(tid, error=True)


def _costs(spec: ArchSpec) -> dict[str, Any]:
    from blocknas.costmodel import cost

    return cost(spec).to_dict()


def _bad(spec: ArchSpec) -> bool:
    return spec.layers[0].op == "dwsep"


def _bad_share(tmp_path: Path, name: str, *, report_bad: str, n: int = 70) -> float:
    """Share of 'bad' architectures among the last 30 suggestions, when bad ones end as
    ``report_bad`` (pruned, or failed: what dropping them would look like to the sampler)."""
    d = Driver(_config(tmp_path, name), tmp_path)
    picks = []
    for i in range(n):
        tid, spec = d.next()
        picks.append(_bad(spec))
        if not _bad(spec):
            d.complete(tid, 0.90 + 0.001 * (i % 7), spec)
        elif report_bad == "pruned":
            d.prune(tid, spec)
        else:
            d.fail(tid)
    return sum(picks[-30:]) / 30


def test_pruned_trials_steer_the_default_sampler_away(tmp_path: Path) -> None:
    kept = _bad_share(tmp_path, "kept", report_bad="pruned")
    dropped = _bad_share(tmp_path, "dropped", report_bad="failed")
    # with 4 ops, a sampler that knows nothing proposes dwsep about a quarter of the time
    assert kept < dropped - 0.1, (kept, dropped)
    assert kept <= 0.2, kept


def test_no_pruned_trial_is_ever_complete_or_on_the_front(tmp_path: Path) -> None:
    d = Driver(_config(tmp_path, "front"), tmp_path)
    for i in range(24):
        tid, spec = d.next()
        if i % 2:
            d.prune(tid, spec, accuracy=1.0)  # better than any complete trial
        else:
            d.complete(tid, 0.5 + 0.01 * i, spec)
    pruned = {t.number for t in d.study.trials if t.state == optuna.trial.TrialState.PRUNED}
    assert len(pruned) == 12
    df = load_results(d.study)
    assert set(df[df.state == "pruned"].number) == pruned
    assert df[df.state == "pruned"].accuracy.isna().all()  # partial accuracy never recorded
    front = pareto_front(df)
    assert len(front) >= 1 and not set(front.number) & pruned


def _rejected_share(tmp_path: Path, name: str, sampler: str) -> float:
    """Share of over-budget candidates among the asks after the first 40 launched trials."""
    cfg = _config(tmp_path, name, sampler=sampler, budgets={"macs": 200_000})
    d = Driver(cfg, tmp_path)
    for i in range(40):
        tid, spec = d.next()
        d.complete(tid, 0.9 + 0.001 * (i % 5), spec)
    before = d.searcher.rejected
    for _ in range(30):
        tid, spec = d.next()
        d.complete(tid, 0.9, spec)
    return (d.searcher.rejected - before) / (d.searcher.rejected - before + 30)


def test_rejected_candidates_teach_the_default_sampler_the_budget(tmp_path: Path) -> None:
    default = _rejected_share(tmp_path, "tpe", "tpe")
    blind = _rejected_share(tmp_path, "random", "random")
    assert blind > 0.2  # the space is about half over budget
    assert default < 0.6 * blind, (default, blind)
    df = load_results(f"sqlite:///{tmp_path}/runs/tpe/study.db")
    rejected = df[~df.launched]
    assert len(rejected) and rejected.accuracy.isna().all() and (~rejected.feasible).all()


def test_seed_specs_run_first_and_are_marked(tmp_path: Path) -> None:
    space = _config(tmp_path, "probe").space
    seeds = [space.sample_random(11), space.sample_random(12)]
    spec_file = tmp_path / "mine.json"
    spec_file.write_text(seeds[1].to_json())
    cfg = _config(tmp_path, "seeded", seed_specs=[seeds[0].to_dict(), str(spec_file)])
    d = Driver(cfg, tmp_path)
    assert d.seeded == 3  # the space's cheapest architecture, then the user's seeds
    got = []
    for _ in range(5):
        tid, spec = d.next()
        got.append(spec)
        d.complete(tid, 0.9, spec)
    assert got[1:3] == seeds
    macs = [_costs(s)["macs"] for s in [*got, *(space.sample_random(i) for i in range(200))]]
    assert macs[0] == min(macs)
    df = load_results(d.study).set_index("number")
    assert list(df.warm_start.iloc[:3]) == ["cheapest", "inline 0", "mine"]
    assert df.warm_start.iloc[3:].isna().all()
    # a resumed study does not queue its seeds again
    assert warm_start(open_study(cfg, resume=True), cfg) == 0


def test_the_progress_tally_agrees_with_the_summary(tmp_path: Path) -> None:
    """Progress lines count incrementally (Tally); they must say what summary() says."""
    from blocknas.search.results import Tally, summary

    d = Driver(_config(tmp_path, "tally", budgets={"macs": 200_000}), tmp_path)
    tally = Tally(d.study)
    for i in range(16):
        tid, spec = d.next()
        if i % 3 == 0:
            d.prune(tid, spec)
        elif i % 7 == 0:
            d.fail(tid)
        else:
            d.complete(tid, 0.5 + 0.02 * i, spec)
        got, want = tally.update(), summary(load_results(d.study))
        assert got == {k: want[k] for k in got}, i
