"""Multi-objective successive halving (the default early-stopping rule) and its config."""

from __future__ import annotations

import random

import pytest

from blocknas.search.config import SearchConfig
from blocknas.search.early_stop import DominanceRule, HalvingRule, ParetoStopping
from blocknas.search.run import make_scheduler
from blocknas.spaces.errors import SpecError

SPACE = {"input": [1, 8, 8], "num_classes": 10, "stages": [{"depth": 1, "out": [8, 16]}]}


@pytest.mark.parametrize(
    ("rule", "planned", "rungs"),
    [
        (HalvingRule(), 4, [1, 2]),
        (HalvingRule(), 10, [1, 2, 6]),
        (HalvingRule(eta=2), 10, [1, 2, 4, 8]),
        (HalvingRule(min_epoch=5, eta=2), 30, [5, 10, 20]),
        (HalvingRule(min_epoch=1, eta=3), 30, [1, 3, 9, 27]),
        (HalvingRule(min_epoch=2, eta=1.5), 8, [2, 3, 4, 7]),
        (HalvingRule(min_epoch=4), 4, []),
    ],
)
def test_rungs_grow_by_eta_below_the_planned_length(
    rule: HalvingRule, planned: int, rungs: list[int]
) -> None:
    assert rule.rungs(planned) == rungs


@pytest.mark.parametrize("kwargs", [{"eta": 1.0}, {"min_epoch": 0}, {"min_trials": 1}])
def test_bad_settings_name_the_value(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        HalvingRule(**kwargs)  # type: ignore[arg-type]


def test_a_rung_keeps_the_best_share_and_every_cheapest_trial() -> None:
    """Trials on the first non-dominated front go on however inaccurate; others by rank."""
    ps = ParetoStopping(HalvingRule(min_epoch=1, eta=2, min_trials=4), planned_epochs=4)
    rng = random.Random(0)
    points = [(f"t{i}", rng.uniform(0.3, 0.9), rng.uniform(1, 100)) for i in range(40)]
    points.append(("cheapest", 0.1, 0.5))  # worst accuracy, but nothing is cheaper
    stopped = {tid for tid, acc, cost in points if ps.record(tid, 1, acc, (cost,))}
    assert "cheapest" not in stopped
    n_stopped = len(stopped)
    assert 0.3 * len(points) <= n_stopped <= 0.6 * len(points)  # about half, asynchronously
    # nobody that went on is dominated by a stopped trial with both better accuracy and cost
    for tid, _acc, _cost in points:
        if tid not in stopped:
            assert ps.dominators(tid, 1) <= len(points) // 2


def test_the_first_trials_go_on_and_only_rungs_decide() -> None:
    ps = ParetoStopping(HalvingRule(min_epoch=1, eta=2, min_trials=4), planned_epochs=8)
    assert not any(ps.record(f"a{i}", 1, 0.1 * i, (10.0,)) for i in range(3))  # < min_trials
    assert ps.record("worst", 1, 0.0, (10.0,))  # the 4th: dominated by every other
    for i in range(6):  # epoch 3 is no rung (1, 2, 4): nothing is stopped there
        assert not ps.record(f"b{i}", 3, 0.01, (50.0,))
    for i in range(4):
        ps.record(f"c{i}", 4, 0.9, (1.0,))
    assert ps.record("d", 4, 0.1, (2.0,))  # a rung again


def test_never_stopped_at_the_last_planned_epoch() -> None:
    ps = ParetoStopping(HalvingRule(min_epoch=1, eta=2, min_trials=2), planned_epochs=2)
    for i in range(5):
        ps.record(f"good{i}", 2, 0.9, (1.0,))
    assert not ps.record("bad", 2, 0.1, (9.0,))


def test_config_picks_the_rule_and_refuses_the_other_rules_settings() -> None:
    def cfg(es: dict[str, object]) -> SearchConfig:
        return SearchConfig.from_dict(
            {"name": "x", "space": SPACE, "search": {"early_stopping": es}}
        )

    default = make_scheduler(cfg({}))
    assert default is not None and default.rule == HalvingRule()
    halving = make_scheduler(cfg({"min_epoch": 3, "eta": 3}))
    assert halving is not None and halving.rule == HalvingRule(min_epoch=3, eta=3)
    dominance = make_scheduler(cfg({"rule": "dominance", "min_dominators": 1}))
    assert dominance is not None and dominance.rule == DominanceRule(min_dominators=1)
    assert make_scheduler(cfg({"enabled": False})) is None
    with pytest.raises(SpecError, match=r"search\.early_stopping.*margin.*halving"):
        cfg({"margin": 0.1})
    with pytest.raises(SpecError, match=r"eta.*dominance"):
        cfg({"rule": "dominance", "eta": 2})
