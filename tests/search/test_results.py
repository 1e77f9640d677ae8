"""Search results from real Optuna studies in a SQLite file, recorded the way the searcher does.

One module-scoped file holds every study: ``demo`` is written straight to SQLite trial by trial;
the larger ones are filled in memory the same way and then copied in (fast: one write per trial).
"""

from __future__ import annotations

import itertools
import json
import math
import random
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd
import pytest

from blocknas.metrics import METRICS
from blocknas.search.results import (
    RECORD,
    failure_reasons,
    hypervolume,
    load_results,
    pareto_front,
    reference_point,
    summary,
    trained,
)
from blocknas.search.study import RECORD_ATTR, storage_for
from blocknas.search.study import record as read_record
from blocknas.search.text import front_table

optuna.logging.set_verbosity(optuna.logging.WARNING)
TrialState = optuna.trial.TrialState
OBJECTIVES = [("accuracy", "maximize"), ("macs", "minimize")]
THREE = [*OBJECTIVES, ("latency_ms", "minimize")]
HEAD = ["number", "state", "feasible"]
COLUMNS = [*HEAD, *METRICS.names(), *RECORD]
STUDIES = ["bare", "demo", "demo_per_key", "random", "three"]
PLANNED = 5


def make_study(
    storage: optuna.storages.BaseStorage,
    name: str,
    objectives: list[tuple[str, str]] = OBJECTIVES,
    budgets: dict[str, float] | None = None,
    attrs: bool = True,
) -> optuna.Study:
    """A study as blocknas.search.study.open_study creates it (``attrs=False``: without the
    ``objectives`` and ``budgets`` user attrs)."""
    study = optuna.create_study(
        study_name=name,
        storage=storage,
        directions=[d for _, d in objectives],
        sampler=optuna.samplers.RandomSampler(seed=0),
    )
    if attrs:
        study.set_user_attr("objectives", [{"metric": m, "direction": d} for m, d in objectives])
        study.set_user_attr("budgets", budgets or {})
    return study


def copy_to(
    study: optuna.Study, memory: optuna.storages.BaseStorage, storage: optuna.storages.BaseStorage
) -> None:
    optuna.copy_study(from_study_name=study.study_name, from_storage=memory, to_storage=storage)


def record(
    study: optuna.Study,
    kind: str,
    acc: float = 0.5,
    macs: float = 1e6,
    latency: float | None = None,
    budget: float = 4e6,
    packed: bool = True,
) -> int:
    """One trial as the searcher records it. ``kind``: rejected (over budget, never launched),
    complete, over (over budget after training), pruned, failed or running. ``packed=False``:
    each field its own user attribute, as studies written before the packed record hold them."""
    t = study.ask()
    _set = _set_packed if packed else _set_per_key
    depth = t.suggest_int("s0.depth", 1, 2)
    block = t.suggest_categorical("s0.l1.block", ["basic", "inverted"])
    recorded = study.user_attrs.get("objectives") or [{"metric": m} for m, _ in OBJECTIVES]
    metrics = {"accuracy": acc, "macs": macs, "latency_ms": latency}
    values = [float(metrics[o["metric"]] or 0.0) for o in recorded]  # stand-ins, as told
    costs = {
        "spec": json.dumps({"layers": [{"block": block}] * depth}),
        "arch": f"stem16 {block}/conv16",
        "macs": macs,
        "params": macs / 10,
        "train_macs": macs * 1.5,
        "train_params": macs / 8,
        "constraints": [macs - budget],
    } | ({} if latency is None else {"latency_ms": latency})
    if kind == "rejected":
        _set(t, costs | {"feasible": False, "launched": False, "reason": "over budget: macs"})
        study.tell(t, [0.0, *values[1:]])
        return t.number
    launch = {"launched": True, "checkpoint": f"ckpt/trial_{t.number:05d}.pt"}
    _set(t, costs | launch | {"epochs_planned": PLANNED})
    if kind == "running":
        return t.number
    done = {"epochs": 3 if kind == "pruned" else PLANNED, "node": "n1", "wall_seconds": 12.5}
    if kind == "failed":
        _set(t, done | {"feasible": False, "reason": "boom"})
        study.tell(t, state=TrialState.FAIL)
    elif kind == "pruned":
        _set(t, done | {"feasible": False, "reason": "stopped early at epoch 3"})
        study.tell(t, state=TrialState.PRUNED)
    else:
        feasible = kind == "complete"
        trained = {"accuracy": acc, "test_accuracy": acc - 0.01, "feasible": feasible}
        _set(t, done | trained | ({} if feasible else {"reason": "over budget after training"}))
        study.tell(t, values)
    return t.number


def _set_packed(trial: optuna.Trial, attrs: dict[str, Any]) -> None:
    trial.set_user_attr(RECORD_ATTR, trial.user_attrs.get(RECORD_ATTR, {}) | attrs)


def _set_per_key(trial: optuna.Trial, attrs: dict[str, Any]) -> None:
    for key, value in attrs.items():
        trial.set_user_attr(key, value)


DEMO = [  # (kind, accuracy, macs)
    ("complete", 0.9, 3e6),  # 0: front
    ("rejected", 0.0, 5e6),  # 1
    ("complete", 0.8, 2e6),  # 2: front
    ("complete", 0.7, 2.5e6),  # 3: dominated by 2
    ("over", 0.99, 0.5e6),  # 4: over budget after training: never on the front
    ("pruned", 0.95, 0.4e6),  # 5: better than all, but pruned
    ("failed", 0.5, 1e6),  # 6
    ("complete", 0.5, 1e6),  # 7: front
    ("running", 0.5, 1e6),  # 8
]


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The SQLite URL of a file holding every study of this module."""
    url = f"sqlite:///{tmp_path_factory.mktemp('results') / 'study.db'}"
    storage = optuna.storages.RDBStorage(url)
    for name, packed in (("demo", True), ("demo_per_key", False)):
        demo = make_study(storage, name, budgets={"macs": 4e6})  # a front of three, and the rest
        for kind, acc, macs in DEMO:
            record(demo, kind, acc, macs, packed=packed)

    make_study(storage, "bare", attrs=False)

    memory = optuna.storages.InMemoryStorage()
    rand = make_study(memory, "random", budgets={"macs": 4e6})
    rng = random.Random(3)
    kinds = ["complete"] * 6 + ["over", "pruned", "failed", "rejected"]
    for _ in range(40):  # a coarse grid, so that ties and duplicated points occur
        record(rand, rng.choice(kinds), rng.randint(1, 10) / 10, rng.randint(1, 8) * 0.5e6)
    copy_to(rand, memory, storage)

    three = make_study(memory, "three", objectives=THREE, budgets={"latency_ms": 5.0})
    rng = random.Random(1)
    for kind in ["complete"] * 9 + ["over"]:
        macs = 9e6 if kind == "over" else rng.uniform(1e6, 4e6)
        record(three, kind, rng.random(), macs, rng.uniform(0.5, 5.0))
    copy_to(three, memory, storage)
    return url


def test_columns_states_and_params(db: str) -> None:
    df = load_results(db, "demo")
    assert list(df.columns) == [*COLUMNS, "param.s0.depth", "param.s0.l1.block"]
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
    # metrics come from the records: what was not measured is missing, whatever was told
    assert trials[1].values[0] == 0.0 and math.isnan(df.loc[1, "accuracy"])
    assert df.loc[1, "macs"] == 5e6 and df.loc[1, "flops"] == 1e7
    assert df.loc[5, "macs"] == 0.4e6 and math.isnan(df.loc[5, "accuracy"])
    assert df["latency_ms"].isna().all()  # never measured in this study: not 0
    assert df.loc[0, "accuracy"] == 0.9 and df.loc[0, "test_accuracy"] == pytest.approx(0.89)
    assert df.loc[0, "train_macs"] == 4.5e6 and df.loc[0, "params"] == 3e5
    assert df.loc[6, "reason"] == "boom" and df.loc[0, "checkpoint"] == "ckpt/trial_00000.pt"
    assert df.loc[0, "epochs"] == PLANNED and df.loc[0, "node"] == "n1"
    assert df.loc[0, "epochs_planned"] == PLANNED and pd.isna(df.loc[1, "epochs_planned"])
    assert json.loads(df.loc[0, "spec"])["layers"] and df.loc[0, "arch"].startswith("stem16")
    assert df["datetime_start"].notna().all() and df["datetime_complete"].isna().sum() == 1
    attrs = {"objectives": OBJECTIVES, "budgets": {"macs": 4e6}, "study": "demo"}
    assert df.attrs == attrs | {"planned_trials": None}  # open_study writes it; not here
    # the same from a loaded study and from a storage object
    assert load_results(study).equals(df)
    assert load_results(storage_for(db, create=False), "demo").equals(df)


def test_records_written_per_key_read_the_same(db: str) -> None:
    """Studies written before the record was packed into one attribute load unchanged."""
    packed, per_key = load_results(db, "demo"), load_results(db, "demo_per_key")
    same = [c for c in packed.columns if not c.startswith("datetime_")]
    pd.testing.assert_frame_equal(packed[same], per_key[same])
    trials = optuna.load_study(study_name="demo", storage=db).get_trials()
    assert set(trials[0].user_attrs) == {RECORD_ATTR}  # one attribute: one write per update
    assert read_record(trials[0])["checkpoint"] == "ckpt/trial_00000.pt"


def test_front_reference_hypervolume_summary(db: str) -> None:
    df = load_results(db, "demo")
    assert list(pareto_front(df)["number"]) == [7, 2, 0]  # by MACs ascending
    assert reference_point(df) == {"macs": 4e6}  # the MACs budget
    # normalised by the budget, slicing along accuracy: 0.5·0.75 + 0.3·0.5 + 0.1·0.25 = 0.55
    assert hypervolume(df) == pytest.approx(0.55)
    by_hand = (0.5 * 2.5e6 + 0.3 * 1.5e6 + 0.1 * 0.5e6) / 3.5e6
    assert hypervolume(df, reference={"macs": 3.5e6}) == pytest.approx(by_hand)
    assert list(pareto_front(df, ["accuracy", "macs"])["number"]) == [7, 2, 0]
    assert list(pareto_front(df, ["accuracy"])["number"]) == [0]
    assert hypervolume(df, ["accuracy"]) == pytest.approx(0.9)
    assert summary(df) == {
        "done": 7,
        "complete": 4,
        "running": 1,
        "pruned": 1,
        "failed": 1,
        "interrupted": 0,
        "infeasible": 2,
        "rejected": 1,
        "over_budget_after_training": 1,  # launched within budget, over it after training
        "front": 3,
        "epochs_run": 5 * PLANNED + 3 + PLANNED,
        "epochs_planned": 7 * PLANNED,  # launched and ended: not the rejected or running one
        "epochs_saved": PLANNED - 3,  # the pruned trial's
        "saved_fraction": pytest.approx((PLANNED - 3) / (7 * PLANNED)),
        "hypervolume": pytest.approx(0.55),
    }
    assert trained(df) == 5  # the complete ones and the one over budget after training
    assert failure_reasons(df) == [("boom", 1), ("stopped early at epoch 3", 1)]


def test_front_table_shows_the_recorded_numbers(db: str) -> None:
    df = load_results(db, "demo")
    lines = front_table(df).splitlines()
    header = ["#", "accuracy", "test_accuracy", "macs", "params", "epochs", "arch"]
    assert lines[0].split() == header  # no latency column: none was measured
    assert lines[1].split()[:5] == ["7", "0.5000", "0.4900", "1,000,000", "100,000"]
    assert lines[3].split()[:4] == ["0", "0.9000", "0.8900", "3,000,000"]
    assert len({line.index("stem16") for line in lines[1:]}) == 1  # aligned
    assert front_table(df, limit=1).endswith("... 2 more on the front")


def test_hypervolume_reference_errors_and_union(db: str) -> None:
    df = load_results(db, "demo")
    with pytest.raises(ValueError, match=r"\['accuracy'\].*not cost objectives.*valid: macs"):
        hypervolume(df, reference={"accuracy": 1.0})
    with pytest.raises(ValueError, match="positive"):
        hypervolume(df, reference={"macs": 0.0})
    with pytest.raises(ValueError, match="'speed' is not an objective"):
        pareto_front(df, ["accuracy", "speed"])
    # two studies compared on one reference: the union's, used for each
    both = pd.concat([load_results(db, "demo"), load_results(db, "random")])
    both.attrs = {"objectives": OBJECTIVES, "budgets": {"macs": 4e6}}
    ref = reference_point(both)
    for name in ("demo", "random"):
        assert 0.0 < hypervolume(load_results(db, name), reference=ref) <= 1.0
    assert hypervolume(both) >= hypervolume(df)


def test_no_attrs_and_empty(db: str) -> None:
    df = load_results(db, "bare")
    assert [m for m, _ in df.attrs["objectives"]] == ["objective_0", "objective_1"]
    metrics = [*METRICS.names(), "objective_0", "objective_1"]
    assert df.empty and list(df.columns) == [*HEAD, *metrics, *RECORD]
    assert df.attrs["budgets"] == {} and df.attrs["study"] == "bare"
    assert pareto_front(df).empty and hypervolume(df) == 0.0
    assert front_table(df) == "(empty front)"
    assert summary(df)["done"] == 0 and summary(df)["hypervolume"] == 0.0


def test_pareto_front_matches_brute_force(db: str) -> None:
    df = load_results(db, "random")
    assert len(df) == 40 and set(df["state"]) >= {"complete", "infeasible", "pruned", "failed"}
    ok = df[(df["state"] == "complete") & df["feasible"]]
    pts = list(zip(ok["number"], ok["accuracy"], ok["macs"], strict=True))
    brute = {
        n
        for n, a, m in pts
        if not any(a2 >= a and m2 <= m and (a2 > a or m2 < m) for _, a2, m2 in pts)
    }
    front = pareto_front(df)
    assert set(front["number"]) == brute and len(front) == len(brute)
    assert set(front["state"]) == {"complete"} and front["feasible"].all()
    assert list(front["macs"]) == sorted(front["macs"])
    pairs = front[["accuracy", "macs"]].round(9).apply(tuple, axis=1)
    dupes = ok[ok[["accuracy", "macs"]].round(9).apply(tuple, axis=1).isin(set(pairs))]
    assert len(dupes) == len(front)  # every copy of a front point is on the front


def _union_volume(boxes: np.ndarray) -> float:
    """Volume of the union of boxes [0, hi] by inclusion–exclusion (independent of the sweep)."""
    total = 0.0
    for k in range(1, len(boxes) + 1):
        for subset in itertools.combinations(range(len(boxes)), k):
            total += (-1) ** (k + 1) * float(np.prod(boxes[list(subset)].min(axis=0)))
    return total


def test_three_objectives_hypervolume(db: str) -> None:
    df = load_results(db, "three")
    assert list(df.columns).count("latency_ms") == 1
    assert df[df["launched"]]["latency_ms"].notna().all()
    front = pareto_front(df)
    ref = reference_point(df)
    ok = df[df["state"] == "complete"]
    assert len(ok) == 9  # no MACs budget: the largest MACs among feasible complete rows
    assert ref == {"macs": ok["macs"].max(), "latency_ms": 5.0}  # and the latency budget
    # each point dominates the box [0, accuracy] × [cost/ref, 1] × …: its sides from the origin
    sides = np.stack(
        [front["accuracy"], 1 - front["macs"] / ref["macs"], 1 - front["latency_ms"] / 5.0],
        axis=1,
    )
    assert 0 < hypervolume(df) <= 1
    assert hypervolume(df) == pytest.approx(_union_volume(sides))
    assert "latency_ms" in front_table(df).splitlines()[0]


def test_storage_errors(db: str, tmp_path: Path) -> None:
    missing = tmp_path / "nope" / "study.db"
    with pytest.raises(ValueError, match="no study storage at"):
        load_results(f"sqlite:///{missing}")
    assert not missing.exists() and not missing.parent.exists()
    with pytest.raises(ValueError, match=", ".join(STUDIES)) as e:
        load_results(db, "gamma")
    assert "\n" not in str(e.value) and "'gamma'" in str(e.value)
    with pytest.raises(ValueError, match=f"{len(STUDIES)} studies"):
        load_results(db)
    assert load_results(Path(db.removeprefix("sqlite:///")), "bare").attrs["study"] == "bare"


def test_v1_and_foreign_studies_read_with_v2_names(tmp_path: Path) -> None:
    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'old.db'}")
    v1 = make_study(
        storage, "v1", objectives=[("val_accuracy", "maximize"), ("deploy_macs", "minimize")]
    )
    t = v1.ask()
    for key, value in {
        "val_accuracy": 0.7,
        "macs": 2e6,
        "feasible": True,
        "launched": True,
    }.items():
        t.set_user_attr(key, value)
    v1.tell(t, [0.7, 2e6])
    df = load_results(storage, "v1")
    assert df.attrs["objectives"] == OBJECTIVES
    assert df.loc[0, "accuracy"] == 0.7 and df.loc[0, "macs"] == 2e6
    assert list(pareto_front(df)["number"]) == [0]
    foreign = optuna.create_study(study_name="foreign", storage=storage, directions=["minimize"])
    foreign.optimize(lambda trial: trial.suggest_float("x", 0, 1), n_trials=3)
    df = load_results(storage, "foreign")  # no blocknas records: objective values as told
    assert df["objective_0"].notna().all() and df["accuracy"].isna().all()
    assert list(pareto_front(df)["objective_0"]) == [df["objective_0"].min()]
