"""Multi-objective early stopping: the bookkeeping, the scheduler, and a real Ray Tune run."""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

# Before Ray is imported: it reads its settings (token auth included) once, at import. Its worker
# processes inherit them when it starts. If another test module imported Ray first, the auth mode is
# left unset, and a new local Ray then enables token auth by itself (and refreshes its settings).
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # advertise 127.0.0.1 only
if "ray" not in sys.modules and (Path.home() / ".ray" / "auth_token").is_file():
    os.environ.setdefault("RAY_AUTH_MODE", "token")
os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")

import pytest
from ray.tune.schedulers import AsyncHyperBandScheduler, TrialScheduler

from blocknas.search.early_stop import DominanceRule, ParetoStopping, ParetoStoppingScheduler

RULE = DominanceRule(min_epoch=2, min_dominators=3, cost_tolerance=0.1, margin=0.01)


def feed(ps: ParetoStopping, epoch: int, trials: dict[str, tuple[float, float]]) -> dict[str, bool]:
    """Record every trial's (accuracy, cost) at one epoch; their stop decisions."""
    return {tid: ps.record(tid, epoch, acc, (cost,)) for tid, (acc, cost) in trials.items()}


# -- the rule -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"min_epoch": 0}, "min_epoch=0"),
        ({"min_dominators": 0}, "min_dominators=0"),
        ({"cost_tolerance": -0.1}, "cost_tolerance=-0.1"),
        ({"cost_tolerance": math.nan}, "cost_tolerance=nan"),
        ({"margin": -0.01}, "margin=-0.01"),
    ],
)
def test_rule_validation_names_the_value(kwargs: dict[str, Any], name: str) -> None:
    with pytest.raises(ValueError, match=name):
        DominanceRule(**kwargs)


def test_rule_defaults_and_boundaries_are_valid() -> None:
    assert DominanceRule() == DominanceRule(2, 3, 0.1, 0.01)
    DominanceRule(min_epoch=1, min_dominators=1, cost_tolerance=0.0, margin=0.0)


# -- the bookkeeping ------------------------------------------------------------------------------


def test_a_trial_at_its_last_planned_epoch_is_never_stopped() -> None:
    """The epochs are spent: stopping at the last one would only throw the result away. The
    record still counts against trials that report that epoch later."""
    rule = DominanceRule(min_epoch=1, min_dominators=1, cost_tolerance=0.0, margin=0.0)
    ps = ParetoStopping(rule, planned_epochs=3)
    strong = {"a": (0.9, 1.0)}
    for epoch in (1, 2, 3):
        feed(ps, epoch, strong)
    assert feed(ps, 2, {"weak": (0.1, 5.0)}) == {"weak": True}  # before the last epoch: stopped
    assert feed(ps, 3, {"late": (0.1, 5.0)}) == {"late": False}  # at it: kept
    assert ps.dominators("late", 3) == 1  # dominated all the same, and recorded
    assert feed(ps, 4, {"over": (0.1, 5.0)}) == {"over": False}  # past it (a longer resume)
    assert ParetoStopping(rule).record("x", 3, 0.1, (5.0,)) is False  # nothing to beat it yet
    with pytest.raises(ValueError, match="planned_epochs=0"):
        ParetoStopping(rule, planned_epochs=0)


def test_cheap_weak_trial_survives_where_asha_would_stop_it() -> None:
    """The whole point: accurate but expensive models never stop a cheap one.

    The same results go to ASHA on accuracy alone, which stops the cheap model at its first rung.
    """
    expensive = {f"big{i}": (0.90 + 0.002 * i, 10e6) for i in range(5)}  # all within margin
    cheap = {"tiny": (0.55, 0.2e6)}
    ours = ParetoStoppingScheduler(rule=RULE, planned_epochs=4)
    asha = AsyncHyperBandScheduler(
        time_attr="epoch", metric="accuracy", mode="max", grace_period=2, max_t=4, brackets=1
    )
    trials = {tid: SimpleNamespace(trial_id=tid) for tid in [*expensive, *cheap]}
    for t in trials.values():
        asha.on_trial_add(None, t)
    decisions: dict[str, dict[str, str]] = {"ours": {}, "asha": {}}
    for epoch in range(1, 5):
        for tid, (acc, cost) in {**expensive, **cheap}.items():
            result = {"epoch": epoch, "accuracy": acc - 0.05 * (4 - epoch), "macs": cost}
            for name, sched in (("ours", ours), ("asha", asha)):
                if decisions[name].get(tid) != TrialScheduler.STOP:
                    decisions[name][tid] = sched.on_trial_result(None, trials[tid], result)
    assert decisions["asha"]["tiny"] == TrialScheduler.STOP  # ASHA kills the small model
    assert all(d == TrialScheduler.CONTINUE for d in decisions["ours"].values())
    assert ours.stopped == {} and ours.saved_epochs() == 0


def test_dominated_by_enough_cheaper_better_trials_stops() -> None:
    ps = ParetoStopping(RULE)
    good = {f"g{i}": (0.9, 1e6) for i in range(3)}
    assert feed(ps, 2, good) == dict.fromkeys(good, False)
    assert ps.record("bad", 2, 0.7, (5e6,)) is True
    assert ps.stopped == {"bad": 2}
    assert ps.dominators("bad", 2) == 3
    assert ps.record("bad", 3, 0.99, (5e6,)) is True  # stopped stays stopped


def test_too_few_dominators_does_not_stop() -> None:
    ps = ParetoStopping(RULE)
    feed(ps, 2, {"g0": (0.9, 1e6), "g1": (0.9, 1e6), "pricey": (0.95, 9e6)})
    assert ps.record("bad", 2, 0.7, (5e6,)) is False  # "pricey" costs more: only 2 dominate
    assert ps.dominators("bad", 2) == 2


def test_only_the_same_epoch_counts() -> None:
    ps = ParetoStopping(RULE)
    feed(ps, 3, {f"g{i}": (0.9, 1e6) for i in range(3)})  # better, but at a later epoch
    assert ps.record("bad", 2, 0.7, (5e6,)) is False
    assert ps.record("bad", 3, 0.7, (5e6,)) is True
    assert ps.stopped == {"bad": 3}


def test_nothing_stops_before_min_epoch() -> None:
    ps = ParetoStopping(DominanceRule(min_epoch=3, min_dominators=1))
    feed(ps, 1, {"g": (0.9, 1e6)})
    feed(ps, 2, {"g": (0.9, 1e6)})
    assert ps.record("bad", 1, 0.1, (5e6,)) is False
    assert ps.record("bad", 2, 0.1, (5e6,)) is False
    feed(ps, 3, {"g": (0.9, 1e6)})
    assert ps.record("bad", 3, 0.1, (5e6,)) is True


def test_stopped_trials_still_dominate() -> None:
    ps = ParetoStopping(DominanceRule(min_dominators=1, margin=0.0))
    feed(ps, 2, {"best": (0.9, 1e6)})
    assert ps.record("mid", 2, 0.8, (1e6,)) is True
    assert ps.record("low", 2, 0.7, (1e6,)) is True  # "best" and the stopped "mid" both count
    assert ps.dominators("low", 2) == 2


@pytest.mark.parametrize(
    ("other_acc", "stops"), [(0.80 + 0.05, True), (0.80 + 0.0499, False), (0.80, False)]
)
def test_margin_boundary(other_acc: float, stops: bool) -> None:
    ps = ParetoStopping(DominanceRule(min_dominators=1, margin=0.05, cost_tolerance=0.0))
    ps.record("other", 2, other_acc, (1.0,))
    assert ps.record("me", 2, 0.80, (1.0,)) is stops


@pytest.mark.parametrize(
    ("other_cost", "stops"), [(100.0, True), (125.0, True), (125.01, False), (200.0, False)]
)
def test_cost_tolerance_boundary(other_cost: float, stops: bool) -> None:
    ps = ParetoStopping(DominanceRule(min_dominators=1, margin=0.0, cost_tolerance=0.25))
    ps.record("other", 2, 0.9, (other_cost,))
    assert ps.record("me", 2, 0.8, (100.0,)) is stops


def test_every_cost_must_be_within_tolerance() -> None:
    ps = ParetoStopping(DominanceRule(min_dominators=1))
    ps.record("fast_big", 2, 0.9, (1e6, 50.0))  # fewer MACs but slower
    assert ps.record("me", 2, 0.7, (2e6, 10.0)) is False
    ps.record("both", 2, 0.9, (1e6, 5.0))
    assert ps.record("me", 2, 0.7, (2e6, 10.0)) is True


def test_nan_accuracy_never_stops_and_never_dominates() -> None:
    ps = ParetoStopping(DominanceRule(min_dominators=1))
    feed(ps, 2, {"g": (0.9, 1e6)})
    assert ps.record("broken", 2, math.nan, (5e6,)) is False
    assert ps.stopped == {}
    feed(ps, 3, {"nan": (math.nan, 1.0)})
    assert ps.record("me", 3, 0.1, (1e6,)) is False


def test_cost_count_must_not_change() -> None:
    ps = ParetoStopping()
    ps.record("a", 2, 0.9, (1.0, 2.0))
    with pytest.raises(ValueError, match="2 costs"):
        ps.record("b", 2, 0.9, (1.0,))


# -- the scheduler without Ray running ------------------------------------------------------------


def test_scheduler_ignores_final_and_incomplete_results() -> None:
    s = ParetoStoppingScheduler(rule=DominanceRule(min_dominators=1), planned_epochs=10)
    assert s.set_search_properties("accuracy", "max", config={}, anything=1) is True
    assert s.set_search_properties(None, None) is True
    assert s.accuracy_key == "accuracy" and s.metric is None
    trial = SimpleNamespace(trial_id="t")
    good = {"epoch": 2, "accuracy": 0.9, "macs": 1.0}
    assert s.on_trial_result(None, SimpleNamespace(trial_id="g"), good) == "CONTINUE"
    bad = {"epoch": 2, "accuracy": 0.1, "macs": 5.0}
    for result in (
        {**bad, "final": True},
        {k: v for k, v in bad.items() if k != "macs"},
        {k: v for k, v in bad.items() if k != "epoch"},
        {"epoch": 2, "error": "ValueError: NaN loss", "macs": 5.0},
        {**bad, "accuracy": math.nan},
    ):
        assert s.on_trial_result(None, trial, result) == TrialScheduler.CONTINUE
    assert s.on_trial_result(None, trial, bad) == TrialScheduler.STOP
    assert s.stopped == {"t": 2} and s.saved_epochs() == 8
    assert "1 stopped, 8 epochs saved" in s.debug_string()


def test_scheduler_save_restore(tmp_path: Path) -> None:
    s = ParetoStoppingScheduler(rule=DominanceRule(min_dominators=1), planned_epochs=5)
    s.on_trial_result(None, SimpleNamespace(trial_id="g"), {"epoch": 2, "accuracy": 0.9, "macs": 1})
    s.on_trial_result(None, SimpleNamespace(trial_id="b"), {"epoch": 2, "accuracy": 0.1, "macs": 1})
    s.save(str(tmp_path / "s.pkl"))
    r = ParetoStoppingScheduler()
    r.restore(str(tmp_path / "s.pkl"))
    assert r.stopped == {"b": 2} and r.saved_epochs() == 3 and r.rule.min_dominators == 1


def test_scheduler_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match=r"costs=\(\)"):
        ParetoStoppingScheduler(costs=())
    with pytest.raises(ValueError, match="planned_epochs=0"):
        ParetoStoppingScheduler(planned_epochs=0)


# -- with Ray Tune --------------------------------------------------------------------------------

EPOCHS = 4
# (accuracy at the last epoch, macs): good-cheap first, then a cheap weak one, then the
# expensive weak ones that the good ones dominate at min_epoch.
ARMS = [
    (0.90, 1.0e6),
    (0.91, 1.1e6),
    (0.92, 0.9e6),
    (0.93, 1.0e6),
    (0.50, 0.1e6),  # cheap and weak: nobody cheaper beats it, so it must run to the end
    (0.60, 5.0e6),
    (0.65, 8.0e6),
]
BAD = {5, 6}


@pytest.fixture(scope="module")
def ray_local() -> Iterator[Any]:
    """An embedded Ray on loopback for this module (a Ray already connected is used, and kept).

    If another test module imported Ray before the variables above were set, Ray has already read
    ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER``; the constant it feeds is then set for this session, or
    ``_node_ip_address="127.0.0.1"`` would resolve to the machine's external address.
    """
    import ray
    from ray._private import ray_constants

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(ray_constants, "ENABLE_RAY_CLUSTER", False)
        started = not ray.is_initialized()
        if started:
            ray.init(
                num_cpus=2,
                include_dashboard=False,
                _node_ip_address="127.0.0.1",
                log_to_driver=False,
            )
        try:
            yield ray
        finally:
            if started:
                ray.shutdown()


def _trainable(config: dict[str, Any]) -> None:
    from ray import tune

    acc, cost = ARMS[config["arm"]]
    for epoch in range(1, EPOCHS + 1):
        tune.report({"epoch": epoch, "accuracy": acc - 0.02 * (EPOCHS - epoch), "macs": cost})


def test_tune_stops_only_the_dominated_trials(ray_local: Any, tmp_path: Path) -> None:
    from ray import tune
    from ray.tune.search import Searcher

    class InOrder(Searcher):
        """Suggests the arms in order: the good ones are done before the bad ones start."""

        def __init__(self) -> None:
            super().__init__()
            self.next = 0

        def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
            if self.next >= len(ARMS):
                return Searcher.FINISHED
            self.next += 1
            return {"arm": self.next - 1}

        def on_trial_complete(self, trial_id: str, result: Any = None, error: bool = False):
            pass

    rule = DominanceRule(min_epoch=2, min_dominators=3)
    scheduler = ParetoStoppingScheduler(rule=rule, planned_epochs=EPOCHS)
    tuner = tune.Tuner(
        _trainable,
        tune_config=tune.TuneConfig(
            search_alg=InOrder(),
            scheduler=scheduler,
            num_samples=-1,
            metric="accuracy",  # Tune's metric: accepted, our keys stay ours
            mode="max",
            max_concurrent_trials=1,
            reuse_actors=True,
        ),
        run_config=tune.RunConfig(name="es", storage_path=str(tmp_path), verbose=0),
    )
    grid = tuner.fit()
    assert not grid.errors
    assert {n["NodeManagerAddress"] for n in ray_local.nodes()} == {"127.0.0.1"}
    assert scheduler.tune_metric == "accuracy" and scheduler.cost_keys == ("macs",)
    last = {r.config["arm"]: (r.metrics["trial_id"], r.metrics["epoch"]) for r in grid}
    assert sorted(last) == list(range(len(ARMS)))
    for arm, (_tid, epoch) in last.items():
        assert epoch == (rule.min_epoch if arm in BAD else EPOCHS), arm
    assert scheduler.stopped == {last[arm][0]: rule.min_epoch for arm in BAD}
    assert scheduler.saved_epochs() == len(BAD) * (EPOCHS - rule.min_epoch)
