"""Search results from real Optuna studies in a SQLite file, recorded the way the searcher does.

One module-scoped file holds every study: ``demo`` is written straight to SQLite trial by trial;
the larger ones are filled in memory the same way and then copied in (fast: one write per trial).
"""

from __future__ import annotations

import json
import math
import random
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest

from blocknas.search.results import (
    front_table,
    hypervolume,
    load_results,
    pareto_front,
    reference_point,
    summary,
)

optuna.logging.set_verbosity(optuna.logging.WARNING)
TrialState = optuna.trial.TrialState
OBJECTIVES = [("val_accuracy", "maximize"), ("deploy_macs", "minimize")]
THREE = [*OBJECTIVES, ("latency_ms", "minimize")]
FIXED = [
    "number",
    "state",
    "feasible",
    "macs",
    "params",
    "latency_ms",
    "accuracy",
    "test_accuracy",
    "epochs",
    "checkpoint",
    "node",
    "wall_seconds",
    "reason",
    "arch",
    "launched",
    "spec",
    "datetime_start",
    "datetime_complete",
]
STUDIES = ["bare", "demo", "random", "three"]


def make_study(
    storage: optuna.storages.BaseStorage | None,
    name: str,
    objectives: list[tuple[str, str]] = OBJECTIVES,
    budgets: dict[str, float] | None = None,
    attrs: bool = True,
) -> optuna.Study:
    """A study as blocknas.search.study.open_study creates it (``attrs=False``: without the
    ``objectives`` and ``budgets`` user attrs); ``storage=None`` keeps it in memory."""
    study = optuna.create_study(
        study_name=name,
        storage=storage,
        directions=[d for _, d in objectives],
        sampler=optuna.samplers.RandomSampler(seed=0),
    )
    if attrs:
        study.set_user_attr("objectives", [{"metric": m, "direction": d} for m, d in objectives])
        study.set_user_attr(
            "budgets", {"macs": None, "params": None, "latency_ms": None} | (budgets or {})
        )
    return study


def copy_to(study: optuna.Study, storage: optuna.storages.BaseStorage) -> None:
    name = study.study_name
    optuna.copy_study(from_study_name=name, from_storage=study._storage, to_storage=storage)


def record(
    study: optuna.Study,
    kind: str,
    acc: float = 0.5,
    macs: float = 1e6,
    latency: float | None = None,
    budget: float = 4e6,
) -> int:
    """One trial as the searcher records it. ``kind``: rejected (over budget, never launched),
    complete, over (over budget after training), pruned, failed or running."""
    t = study.ask()
    depth = t.suggest_int("s0.depth", 1, 2)
    block = t.suggest_categorical("s0.l1.block", ["basic", "inverted"])
    recorded = study.user_attrs.get("objectives") or [{"metric": m} for m, _ in OBJECTIVES]
    metrics = {"val_accuracy": acc, "deploy_macs": macs, "latency_ms": latency}
    values = [float(metrics[o["metric"]] or 0.0) for o in recorded]
    costs = {
        "spec": json.dumps({"layers": [{"block": block}] * depth}),
        "arch": f"stem16 {block}/conv16",
        "macs": macs,
        "params": macs / 10,
        "train_macs": macs * 1.5,
        "train_params": macs / 8,
        "latency_ms": latency,
        "constraints": [macs - budget],
    }
    if kind == "rejected":
        _set(t, costs | {"feasible": False, "launched": False, "reason": "over budget: macs"})
        study.tell(t, [0.0, *values[1:]])
        return t.number
    _set(t, costs | {"launched": True, "checkpoint": f"ckpt/trial_{t.number:05d}.pt"})
    if kind == "running":
        return t.number
    done = {"epochs": 3 if kind == "pruned" else 5, "node": "n1", "wall_seconds": 12.5}
    if kind == "failed":
        _set(t, done | {"feasible": False, "reason": "boom"})
        study.tell(t, state=TrialState.FAIL)
    elif kind == "pruned":
        _set(t, done | {"feasible": False, "reason": "stopped early at epoch 3"})
        study.tell(t, state=TrialState.PRUNED)
    else:
        feasible = kind == "complete"
        trained = {"val_accuracy": acc, "test_accuracy": acc - 0.01, "feasible": feasible}
        _set(t, done | trained | ({} if feasible else {"reason": "over budget after training"}))
        study.tell(t, values)
    return t.number


def _set(trial: optuna.Trial, attrs: dict[str, Any]) -> None:
    for key, value in attrs.items():
        trial.set_user_attr(key, value)


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The SQLite URL of a file holding every study of this module."""
    url = f"sqlite:///{tmp_path_factory.mktemp('results') / 'study.db'}"
    storage = optuna.storages.RDBStorage(url)
    demo = make_study(
        storage, "demo", budgets={"macs": 4e6}
    )  # a known front of three, and the rest
    record(demo, "complete", 0.9, 3e6)  # 0: front
    record(demo, "rejected", 0.0, 5e6)  # 1
    record(demo, "complete", 0.8, 2e6)  # 2: front
    record(demo, "complete", 0.7, 2.5e6)  # 3: dominated by 2
    record(demo, "over", 0.99, 0.5e6)  # 4: over budget after training: never on the front
    record(demo, "pruned", 0.95, 0.4e6)  # 5: better than all, but pruned
    record(demo, "failed", 0.5, 1e6)  # 6
    record(demo, "complete", 0.5, 1e6)  # 7: front
    record(demo, "running", 0.5, 1e6)  # 8

    make_study(storage, "bare", attrs=False)

    rand = make_study(None, "random", budgets={"macs": 4e6})
    rng = random.Random(3)
    kinds = ["complete"] * 6 + ["over", "pruned", "failed", "rejected"]
    for _ in range(40):  # a coarse grid, so that ties and duplicated points occur
        record(rand, rng.choice(kinds), rng.randint(1, 10) / 10, rng.randint(1, 8) * 0.5e6)
    copy_to(rand, storage)

    three = make_study(None, "three", objectives=THREE, budgets={"latency_ms": 5.0})
    rng = random.Random(1)
    for kind in ["complete"] * 9 + ["over"]:
        macs = 9e6 if kind == "over" else rng.uniform(1e6, 4e6)
        record(three, kind, rng.random(), macs, rng.uniform(0.5, 5.0))
    copy_to(three, storage)
    return url


def test_columns_states_and_params(db: str) -> None:
    df = load_results(db, "demo")
    expected = [*FIXED[:3], "val_accuracy", "deploy_macs", *FIXED[3:]]
    assert list(df.columns) == [*expected, "param.s0.depth", "param.s0.l1.block"]
    assert list(df["number"]) == list(range(9))
    assert list(df["state"]) == [
        "complete",
        "infeasible",
        "complete",
        "complete",
        "infeasible",
        "pruned",
        "failed",
        "complete",
        "running",
    ]
    assert list(df["feasible"]) == [True, False, True, True, False, False, False, True, False]
    assert list(df["launched"]) == [True, False, True, True, True, True, True, True, True]
    study = optuna.load_study(study_name="demo", storage=db)
    trials = study.get_trials()
    assert list(df["param.s0.depth"]) == [t.params["s0.depth"] for t in trials]
    assert list(df["param.s0.l1.block"]) == [t.params["s0.l1.block"] for t in trials]
    # objective values from trial.values when complete, else from the user attrs
    assert df.loc[1, "val_accuracy"] == 0.0 and df.loc[1, "deploy_macs"] == 5e6
    assert df.loc[5, "deploy_macs"] == 0.4e6 and math.isnan(df.loc[5, "val_accuracy"])
    assert df.loc[0, "accuracy"] == 0.9 and df.loc[0, "test_accuracy"] == pytest.approx(0.89)
    assert df.loc[6, "reason"] == "boom" and df.loc[0, "checkpoint"] == "ckpt/trial_00000.pt"
    assert df.loc[0, "epochs"] == 5 and df.loc[0, "node"] == "n1" and df.loc[0, "params"] == 3e5
    assert json.loads(df.loc[0, "spec"])["layers"] and df.loc[0, "arch"].startswith("stem16")
    assert df["datetime_start"].notna().all() and df["datetime_complete"].isna().sum() == 1
    assert df.attrs == {"objectives": OBJECTIVES, "budgets": {"macs": 4e6}, "study": "demo"}
    # the same from a loaded study and from a storage object
    assert load_results(study).equals(df)
    assert load_results(study._storage, "demo").equals(df)


def test_front_reference_hypervolume_summary(db: str) -> None:
    df = load_results(db, "demo")
    assert list(pareto_front(df)["number"]) == [7, 2, 0]  # by MACs ascending
    assert reference_point(df) == [0.0, 4e6]  # the MACs budget
    # by hand, slicing along accuracy: 0.5·(4−1) + 0.3·(4−2) + 0.1·(4−3) = 2.2 (×1e6)
    assert hypervolume(df) == pytest.approx(2.2e6)
    by_hand = 0.5 * 2.5e6 + 0.3 * 1.5e6 + 0.1 * 0.5e6
    assert hypervolume(df, reference=[0.0, 3.5e6]) == pytest.approx(by_hand)
    assert list(pareto_front(df, ["accuracy", "macs"])["number"]) == [7, 2, 0]
    assert list(pareto_front(df, ["val_accuracy"])["number"]) == [0]
    assert summary(df) == {
        "done": 7,
        "complete": 4,
        "running": 1,
        "pruned": 1,
        "failed": 1,
        "infeasible": 2,
        "rejected": 1,
        "front": 3,
        "epochs_run": 5 * 5 + 3 + 5,
        "hypervolume": pytest.approx(2.2e6),
    }
    lines = front_table(df).splitlines()
    assert lines[0].split() == ["#", "accuracy", "test_acc", "MACs", "params", "epochs", "arch"]
    assert lines[1].split()[:5] == ["7", "0.5000", "0.4900", "1.00M", "100K"]
    assert lines[3].split()[:4] == ["0", "0.9000", "0.8900", "3.00M"]
    assert len({line.index("stem16") for line in lines[1:]}) == 1  # aligned
    assert front_table(df, limit=1).endswith("... 2 more on the front")


def test_no_attrs_and_empty(db: str) -> None:
    df = load_results(db, "bare")
    assert [m for m, _ in df.attrs["objectives"]] == ["objective_0", "objective_1"]
    assert df.empty and list(df.columns) == [*FIXED[:3], "objective_0", "objective_1", *FIXED[3:]]
    assert df.attrs["budgets"] == {} and df.attrs["study"] == "bare"
    assert pareto_front(df).empty and hypervolume(df) == 0.0
    assert front_table(df) == "(empty front)"
    assert summary(df)["done"] == 0 and summary(df)["hypervolume"] == 0.0


def test_pareto_front_matches_brute_force(db: str) -> None:
    df = load_results(db, "random")
    assert len(df) == 40 and set(df["state"]) >= {"complete", "infeasible", "pruned", "failed"}
    ok = df[(df["state"] == "complete") & df["feasible"]]
    pts = list(zip(ok["number"], ok["val_accuracy"], ok["deploy_macs"], strict=True))
    brute = {
        n
        for n, a, m in pts
        if not any(a2 >= a and m2 <= m and (a2 > a or m2 < m) for _, a2, m2 in pts)
    }
    front = pareto_front(df)
    assert set(front["number"]) == brute and len(front) == len(brute)
    assert set(front["state"]) == {"complete"} and front["feasible"].all()
    assert list(front["deploy_macs"]) == sorted(front["deploy_macs"])
    pairs = front[["val_accuracy", "deploy_macs"]].round(9).apply(tuple, axis=1)
    dupes = ok[ok[["val_accuracy", "deploy_macs"]].round(9).apply(tuple, axis=1).isin(set(pairs))]
    assert len(dupes) == len(front)  # every copy of a front point is on the front


def test_three_objectives_hypervolume(db: str) -> None:
    hv = pytest.importorskip("optuna._hypervolume")
    df = load_results(db, "three")
    assert list(df.columns).count("latency_ms") == 1 and df["latency_ms"].notna().all()
    front = pareto_front(df)
    ref = reference_point(df)
    assert ref[0] == 0.0 and ref[2] == 5.0  # the latency budget
    ok = df[df["state"] == "complete"]
    assert len(ok) == 9  # no MACs budget: 1.1 × the max over feasible complete rows
    assert ref[1] == pytest.approx(1.1 * ok["deploy_macs"].max()) != 1.1 * df["deploy_macs"].max()
    sign = np.array([-1.0, 1.0, 1.0])
    losses = front[["val_accuracy", "deploy_macs", "latency_ms"]].to_numpy() * sign
    expected = hv.compute_hypervolume(losses, np.array(ref) * sign)
    assert 0 < hypervolume(df) == pytest.approx(expected)
    assert "latency_ms" in front_table(df).splitlines()[0]


def test_storage_errors(db: str, tmp_path: Path) -> None:
    missing = tmp_path / "nope" / "study.db"
    with pytest.raises(ValueError, match="no study storage at"):
        load_results(f"sqlite:///{missing}")
    assert not missing.exists() and not missing.parent.exists()
    with pytest.raises(ValueError, match=", ".join(STUDIES)) as e:
        load_results(db, "gamma")
    assert "\n" not in str(e.value) and "'gamma'" in str(e.value)
    with pytest.raises(ValueError, match="4 studies"):
        load_results(db)
    assert load_results(Path(db.removeprefix("sqlite:///")), "bare").attrs["study"] == "bare"
