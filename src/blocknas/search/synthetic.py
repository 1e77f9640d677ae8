"""Synthetic studies: written the way the searcher writes a search (specs sampled from a real
space, analytic costs, packed records, constraint values, every trial state), with made-up
accuracies instead of training. For the dashboard's tests and its scale benchmark, where a
study of 10,000 trials must exist in seconds, not days.

Trials are sampled in memory and written with :meth:`optuna.Study.add_trials` (one storage
transaction per trial), so any storage blocknas reads holds them as a search would leave them.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Mapping
from typing import Any

import optuna

from blocknas.costmodel import cost
from blocknas.search.costs import arch_summary
from blocknas.search.study import RECORD_ATTR, storage_for
from blocknas.spaces.schema import SearchSpace

TrialState = optuna.trial.TrialState
#: a small space of two stages: some of it is over :data:`BUDGET`
SPACE: dict[str, Any] = {
    "input": [1, 8, 8],
    "num_classes": 10,
    "stem": {"out": [8, 16]},
    "layer": {"block": ["plain", "basic", "inverted"], "op": ["conv", "dwsep"], "kernel": [3, 5]},
    "stages": [
        {"depth": [1, 2], "out": [8, 16]},
        {"depth": 1, "out": [16, 32], "stride": 2, "adaptor": [False, True]},
    ],
    "adaptors": {"max": 1},
}
BUDGET = 400_000  #: the budget on macs
EPOCHS = 4  #: epochs planned per trial
PRUNED = "stopped early at epoch 1: ranked low on accuracy and cost at that epoch"


def _candidates(space: SearchSpace, seed: int) -> Iterator[tuple[dict[str, Any], Any, dict]]:
    """(params, distributions, record) of sampled candidates, costed once per distinct spec."""
    scratch = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    costs: dict[str, dict[str, float]] = {}
    while True:
        trial = scratch.ask()
        spec = space.sample(trial)
        key = spec.to_json()
        if key not in costs:
            c = cost(spec).to_dict()
            costs[key] = {
                k: c[k] for k in ("macs", "params", "train_macs", "train_params", "flops")
            }
        frozen = scratch.tell(trial, state=TrialState.FAIL)  # scratch only: frees the sampler
        yield (
            frozen.params,
            frozen.distributions,
            {"spec": key, "arch": arch_summary(spec)} | costs[key],
        )


def _trial(rec: dict[str, Any], rng: random.Random, last: bool) -> dict[str, Any]:
    """The create_trial arguments of one launched candidate (``rec``: spec and costs)."""
    rec = rec | {"launched": True, "epochs_planned": EPOCHS, "node": "127.0.0.1/n1"}
    accuracy = min(0.99, 0.5 + 0.4 * (rec["macs"] / BUDGET) ** 0.5 * rng.uniform(0.6, 1.0))
    curve = [accuracy * (0.7 + 0.1 * e) for e in range(EPOCHS)]
    roll = rng.random() if not last else -1.0
    if roll < 0:  # the last one: still running
        return {"state": TrialState.RUNNING, "user_attrs": rec | {"epochs": 1, "curve": curve[:1]}}
    if roll < 0.2:
        rec |= {"epochs": 1, "curve": curve[:1], "feasible": False, "reason": PRUNED}
        return {"state": TrialState.PRUNED, "user_attrs": rec}
    if roll < 0.25:
        rec |= {"epochs": 2, "curve": curve[:2], "feasible": False, "reason": "boom"}
        return {"state": TrialState.FAIL, "user_attrs": rec}
    test = accuracy - rng.uniform(0, 0.02)
    rec |= {"epochs": EPOCHS, "curve": curve, "feasible": True, "wall_seconds": 3.0}
    rec |= {"accuracy": accuracy, "test_accuracy": test}
    return {"values": [accuracy, rec["macs"]], "user_attrs": rec}


def synthetic_study(
    storage: str | optuna.storages.BaseStorage,
    name: str,
    trials: int,
    seed: int = 0,
    *,
    space: Mapping[str, Any] = SPACE,
    batch: int = 1000,
) -> optuna.Study:
    """A study of ``trials`` candidates or a few more: mostly complete, some pruned, rejected
    over budget (macs ≤ :data:`BUDGET`) or failed, and the last one still running.

    Example::

        synthetic_study("sqlite:///big.db", "big", 10_000)  # about a minute
    """
    store = storage_for(storage) if isinstance(storage, str) else storage
    study = optuna.create_study(study_name=name, storage=store, directions=["maximize", "minimize"])
    study.set_user_attr("objectives", [{"metric": "accuracy"}, {"metric": "macs"}])
    study.set_user_attr("budgets", {"macs": BUDGET})
    study.set_user_attr("planned_trials", trials)
    rng = random.Random(seed)
    pending: list[optuna.trial.FrozenTrial] = []
    written = 0
    for params, distributions, rec in _candidates(SearchSpace.model_validate(space), seed):
        over = rec["macs"] - BUDGET
        if over > 0 and written + len(pending) < trials - 1:
            rec |= {"feasible": False, "launched": False, "reason": "over budget: macs"}
            kwargs: dict[str, Any] = {"values": [0.0, rec["macs"]], "user_attrs": rec}
        elif over > 0:
            continue  # the last candidate must be one that runs
        else:
            kwargs = _trial(rec, rng, last=written + len(pending) == trials - 1)
        kwargs["user_attrs"] = {RECORD_ATTR: kwargs["user_attrs"]}
        pending.append(
            optuna.trial.create_trial(
                params=params, distributions=distributions, constraints={"macs": over}, **kwargs
            )
        )
        if len(pending) == batch or written + len(pending) == trials:
            study.add_trials(pending)
            written, pending = written + len(pending), []
        if written == trials:
            return study
    raise AssertionError("unreachable: candidates never run out")
