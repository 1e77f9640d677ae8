"""Which trial an export takes: the picks on a front built by hand, budgets, explicit trials."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from blocknas.exporter.pick import SMALLEST_WITHIN, budgets_for, choose

OBJECTIVES = [("accuracy", "maximize"), ("macs", "minimize")]


def frame(rows: list[tuple[int, str, float, float]], budget: float = 400.0) -> pd.DataFrame:
    """Trials as (number, state, accuracy, macs); feasible = within the study's macs budget."""
    df = pd.DataFrame(rows, columns=["number", "state", "accuracy", "macs"])
    df["feasible"] = df["macs"] <= budget
    df["latency_ms"] = df["macs"] / 100
    df["spec"] = "{}"
    df.attrs = {"objectives": OBJECTIVES, "budgets": {"macs": budget}, "study": "s"}
    return df


TRIALS = [
    (0, "complete", 0.90, 100.0),
    (1, "complete", 0.895, 50.0),
    (2, "complete", 0.86, 10.0),
    (3, "complete", 0.70, 5.0),
    (4, "complete", 0.85, 200.0),  # dominated by 0
    (5, "complete", 0.95, 500.0),  # the most accurate, but over the study's budget
    (6, "pruned", 0.99, 1.0),  # never finished training: not on the front
]


def knee_by_definition(df: pd.DataFrame, front: list[int]) -> int:
    """The front point nearest (1, 1) once accuracy and macs are scaled to [0, 1], 1 = best."""
    f = df[df.number.isin(front)]
    acc = (f.accuracy - f.accuracy.min()) / (f.accuracy.max() - f.accuracy.min())
    small = (f.macs.max() - f.macs) / (f.macs.max() - f.macs.min())
    return int(f.number.iloc[int(np.argmin(np.hypot(1 - acc, 1 - small)))])


def test_picks_follow_their_definitions() -> None:
    df = frame(TRIALS)
    front = [0, 1, 2, 3]
    assert choose(df, pick="best").number == 0  # the most accurate feasible complete trial
    # the fewest macs within one point of the best accuracy: 1 (0.895 ≥ 0.90 − 0.01)
    smallest = choose(df, pick="smallest")
    assert smallest.number == 1 and smallest.row["accuracy"] >= 0.90 - SMALLEST_WITHIN
    assert choose(df, pick="knee").number == knee_by_definition(df, front) == 2
    assert choose(df).how == "pick best of a front of 4 trials"


def test_tighter_budgets_pick_from_the_front_within_them() -> None:
    df = frame(TRIALS)
    tight = choose(df, pick="best", budgets={"macs": 40})
    assert tight.number == 2 and tight.budgets == {"macs": 40.0}
    # a looser budget than the study's does not loosen it
    assert choose(df, pick="best", budgets={"macs": 1e9}).number == 0
    assert budgets_for(df, {"latency_ms": 0.2}) == {"macs": 400.0, "latency_ms": 0.2}
    assert choose(df, budgets={"latency_ms": 0.2}).number == 2  # latency = macs / 100
    with pytest.raises(ValueError, match=r"no complete feasible trial within macs ≤ 1"):
        choose(df, budgets={"macs": 1})


def test_explicit_trials_must_be_usable() -> None:
    df = frame(TRIALS)
    assert choose(df, trial=4).number == 4  # dominated, but the user asked for it
    with pytest.raises(ValueError, match=r"--trial 6 is pruned, not complete.*--epochs N"):
        choose(df, trial=6)
    assert choose(df, trial=6, retrain=True).number == 6  # a retrain only needs its spec
    with pytest.raises(ValueError, match=r"--trial 5 has macs=500, over the budget macs ≤ 400"):
        choose(df, trial=5)
    with pytest.raises(
        ValueError, match=r"--trial 9: no such trial in the study \(trials 0 to 6\)"
    ):
        choose(df, trial=9)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"trial": 0, "pick": "best"}, "give --trial or --pick, not both"),
        ({"pick": "fastest"}, "--pick='fastest' is not a pick; valid: best, smallest, knee"),
        ({"budgets": {"accuracy": 0.5}}, "accuracy"),
        ({"budgets": {"macs": -1.0}}, "budget macs=-1.0 must be a number > 0"),
        ({"budgets": {"macs": math.nan}}, "budget macs=nan must be a number > 0"),
    ],
)
def test_bad_choices_are_one_line_errors(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError) as e:
        choose(frame(TRIALS), **kwargs)
    assert message in str(e.value) and "\n" not in str(e.value)
