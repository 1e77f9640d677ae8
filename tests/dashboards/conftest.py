"""Studies for the dashboard tests: written the way the searcher writes them (specs sampled from a
real space, analytic costs, packed records, constraint values), with made-up accuracies instead of
training, so that every trial state occurs and the numbers are known."""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import optuna
import pytest

from blocknas.costmodel import cost
from blocknas.search.searcher import arch_summary
from blocknas.search.study import RECORD_ATTR
from blocknas.spaces.schema import SearchSpace

optuna.logging.set_verbosity(optuna.logging.WARNING)
SPACE = {
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
BUDGET = 400_000  # macs: some of this space is over it
PLANNED = 4


def fake_search(
    storage: optuna.storages.BaseStorage | str, name: str, trials: int, seed: int
) -> optuna.Study:
    """A search of ``trials`` candidates or a few more: mostly complete, some pruned, rejected
    over budget or failed, and the last one still running."""
    study = optuna.create_study(
        study_name=name,
        storage=storage,
        directions=["maximize", "minimize"],
        sampler=optuna.samplers.RandomSampler(seed=seed),
    )
    study.set_user_attr("objectives", [{"metric": "accuracy"}, {"metric": "macs"}])
    study.set_user_attr("budgets", {"macs": BUDGET})
    study.set_user_attr("planned_trials", trials)
    space = SearchSpace.model_validate(SPACE)
    rng = random.Random(seed)
    i = 0
    while i < trials:  # candidates; the last one within budget is left running
        i += 1
        trial = study.ask()
        spec = space.sample(trial)
        c = cost(spec).to_dict()
        costs = {k: c[k] for k in ("macs", "params", "train_macs", "train_params", "flops")}
        rec: dict[str, Any] = {"spec": spec.to_json(), "arch": arch_summary(spec), **costs}
        rec["constraints"] = [c["macs"] - BUDGET]
        trial.set_constraint("macs", c["macs"] - BUDGET)
        if c["macs"] > BUDGET:
            rec |= {"feasible": False, "launched": False, "reason": "over budget: macs"}
            trial.set_user_attr(RECORD_ATTR, rec)
            study.tell(trial, [0.0, c["macs"]])
            i -= i == trials  # the last candidate must be one that runs
            continue
        rec |= {"launched": True, "epochs_planned": PLANNED, "node": "127.0.0.1/n1"}
        accuracy = min(0.99, 0.5 + 0.4 * (c["macs"] / BUDGET) ** 0.5 * rng.uniform(0.6, 1.0))
        curve = [accuracy * (0.7 + 0.1 * e) for e in range(PLANNED)]
        roll = rng.random() if i < trials else -1.0
        if roll < 0:  # the last one: still running
            trial.set_user_attr(RECORD_ATTR, rec | {"epochs": 1, "curve": curve[:1]})
        elif roll < 0.2:
            why = "stopped early at epoch 1: ranked low on accuracy and cost at that epoch"
            rec |= {"epochs": 1, "curve": curve[:1], "feasible": False, "reason": why}
            trial.set_user_attr(RECORD_ATTR, rec)
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        elif roll < 0.25:
            rec |= {"epochs": 2, "curve": curve[:2], "feasible": False, "reason": "boom"}
            trial.set_user_attr(RECORD_ATTR, rec)
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
        else:
            test = accuracy - rng.uniform(0, 0.02)
            rec |= {"epochs": PLANNED, "curve": curve, "feasible": True}
            rec |= {"accuracy": accuracy, "test_accuracy": test, "wall_seconds": 3.0}
            trial.set_user_attr(RECORD_ATTR, rec)
            study.tell(trial, [accuracy, c["macs"]])
    return study


@pytest.fixture(scope="session")
def studies(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A SQLite file with two studies of the same space and objectives, ``alpha`` and
    ``beta`` (60 candidates each, different seeds)."""
    path: Path = tmp_path_factory.mktemp("dash") / "study.db"
    url = f"sqlite:///{path}"
    fake_search(url, "alpha", 60, seed=1)
    fake_search(url, "beta", 60, seed=2)
    return url


CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Debian's chromium driven by Playwright (``make test`` installs it when missing)."""
    if not CHROMIUM.exists():
        pytest.fail("no /usr/bin/chromium: run `make test`, or apt-get install -y chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--no-sandbox", "--disable-background-networking"],
        )
        yield b
        b.close()


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    """Where browser tests save screenshots: ``BLOCKNAS_SCREENSHOTS`` (docs/img when the docs
    are refreshed), else the test's temporary directory."""
    out = Path(os.environ.get("BLOCKNAS_SCREENSHOTS") or tmp_path)
    out.mkdir(parents=True, exist_ok=True)
    return out
