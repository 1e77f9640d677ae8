"""The dashboard's data, checked against the results functions it must agree with."""

from __future__ import annotations

import json
import math
import shlex

import numpy as np
import pandas as pd
import pytest

from blocknas import pareto_front
from blocknas.costmodel import cost
from blocknas.costmodel.summary import layer_table
from blocknas.dashboards import data, trial
from blocknas.search.anytime import anytime
from blocknas.search.results import hypervolume, summary
from blocknas.search.synthetic import BUDGET
from blocknas.search.synthetic import EPOCHS as PLANNED
from blocknas.spaces import ArchSpec


def test_studies_table_counts_match_the_summary(frames: list[pd.DataFrame]) -> None:
    table = data.studies_table(frames)
    assert list(table.study) == ["alpha", "beta"]
    for df, row in zip(frames, table.itertuples(), strict=True):
        s = summary(df)
        for key in ("done", "complete", "pruned", "infeasible", "failed", "front"):
            assert getattr(row, key) == s[key], key
        assert row.hypervolume == pytest.approx(s["hypervolume"])
        assert row.planned == 60 and row.status == "running"  # its last trial still runs
        feasible = df[(df.state == "complete") & df.feasible]
        assert row.best_accuracy == feasible.accuracy.max()
        assert row.budgets == f"macs ≤ {BUDGET}"
        assert row.last_update == max(df.datetime_start.max(), df.datetime_complete.max())


def test_front_points_mark_exactly_the_pareto_front(frames: list[pd.DataFrame]) -> None:
    df = frames[0]
    pts = data.front_points(df, color="block")
    assert sorted(pts[pts.kind == "front"].number) == sorted(pareto_front(df).number)
    by_number = df.set_index("number")
    assert (pts.x.values == by_number.loc[pts.number, "macs"].values).all()
    whole = pts[~pts.partial]
    assert (whole.y.values == by_number.loc[whole.number, "accuracy"].values).all()
    # trials that trained are drawn; those rejected before training have no accuracy
    assert set(pts.kind) == {"front", "dominated", "pruned", "failed", "running"}
    assert sorted(pts.number) == sorted(df[df.launched].number)
    # one stopped early sits at its last epoch's accuracy, marked partial
    stopped = pts[pts.kind.isin(["pruned", "failed", "running"])]
    assert stopped.partial.all() and not pts[~pts.kind.isin(stopped.kind)].partial.any()
    for row in stopped.itertuples():
        assert row.y == by_number.loc[row.number, "curve"][-1]
    # coloured by the block most layers use
    blocks = [c for c in df.columns if c.startswith("param.") and c.endswith(".block")]
    for row in pts.itertuples():
        used = by_number.loc[row.number, blocks].dropna().tolist()
        assert row.color in used and used.count(row.color) == max(map(used.count, used))


@pytest.mark.parametrize("fraction", [0.3, 0.6, 0.9])
def test_a_tighter_budget_leaves_exactly_the_front_under_it(
    frames: list[pd.DataFrame], fraction: float
) -> None:
    df = frames[0]
    limit = fraction * BUDGET
    pts = data.front_points(df, budgets={"macs": limit})
    within = df[(df.macs <= limit) | (df.state != "complete")]
    expected = pareto_front(within)
    assert sorted(pts[pts.kind == "front"].number) == sorted(expected.number)
    over = pts[(pts.x > limit) & pts.number.isin(df[df.state == "complete"].number)]
    assert len(over) and (over.kind == "infeasible").all()
    assert over.reason.str.startswith("over budget: macs").all()
    assert (df.state == data.under_budgets(df, None).state).all()  # no budget: unchanged


def test_bad_axes_and_budgets_name_what_is_valid(frames: list[pd.DataFrame]) -> None:
    with pytest.raises(ValueError, match=r"axis 'mass' is not in these results; valid: .*macs"):
        data.front_points(frames[0], x="mass")
    with pytest.raises(ValueError, match="budget metric 'latency_ms'"):
        data.under_budgets(frames[0], {"latency_ms": 2.0})  # never measured in this study
    with pytest.raises(ValueError, match="no searched choice 'colour'"):
        data.front_points(frames[0], color="colour")


def test_hypervolume_curve_equals_the_front_of_each_prefix(frames: list[pd.DataFrame]) -> None:
    df = frames[1]
    curve = data.hypervolume_curve(df)
    slow = anytime(df)  # the hypervolume of every prefix, recomputed from scratch
    assert list(curve.trials) == list(range(1, len(slow) + 1))
    assert np.allclose(curve.hypervolume, slow.hypervolume)
    assert curve.hypervolume.is_monotonic_increasing
    assert curve.hypervolume.iloc[-1] == pytest.approx(hypervolume(df))


def test_compare_puts_studies_on_one_reference(frames: list[pd.DataFrame]) -> None:
    out = data.compare(frames)
    ref = data.common_reference(frames)
    assert ref == {"macs": BUDGET}
    for df, row in zip(frames, out["table"].itertuples(), strict=True):
        assert row.study == df.attrs["study"]
        assert row.hypervolume == pytest.approx(hypervolume(df, reference=ref))
        assert row.front == len(pareto_front(df))
        front = out["fronts"][out["fronts"].study == row.study]
        assert sorted(front.number) == sorted(pareto_front(df).number)
        curve = out["curves"][out["curves"].study == row.study]
        assert curve.hypervolume.iloc[-1] == pytest.approx(row.hypervolume)
    with pytest.raises(ValueError, match="two studies or more"):
        data.compare(frames[:1])
    other = frames[1].copy()
    other.attrs = frames[1].attrs | {"objectives": [("accuracy", "maximize")]}
    with pytest.raises(ValueError, match="only the same ones compare"):
        data.compare([frames[0], other])


def test_choice_effects_count_each_trial_once_per_value(frames: list[pd.DataFrame]) -> None:
    df = frames[0]
    effects = data.choice_effects(df)
    done = df[(df.state == "complete") & df.feasible]
    blocks = [c for c in df.columns if c.startswith("param.") and c.endswith(".block")]
    for row in effects[effects.choice == "block"].itertuples():
        users = done[(done[blocks] == row.value).any(axis=1)]
        assert row.trials == len(users)
        assert row.accuracy_mean == pytest.approx(users.accuracy.mean())
        assert row.accuracy_max == users.accuracy.max()
        assert row.macs_median == users.macs.median()
    assert {"block", "op", "kernel", "depth", "out"} <= set(effects.choice)


def test_layer_table_adds_up_to_the_cost(frames: list[pd.DataFrame]) -> None:
    done = frames[0][frames[0].state == "complete"]
    row = done.loc[done.spec.str.count('"adaptor": true').idxmax()]  # one with adaptors
    spec = ArchSpec.from_json(row.spec)
    assert any(layer.adaptor for layer in spec.layers)
    table = layer_table(row.spec)
    layers = table[table.kind == "layers"]
    assert len(layers) == len(spec.layers)
    assert list(layers.block) == [layer.block for layer in spec.layers]
    assert list(layers.op) == [layer.op for layer in spec.layers]
    assert table.macs.sum() == cost(spec).macs == row.macs
    assert math.isclose(table.macs_share.sum(), 1.0) and math.isclose(table.params_share.sum(), 1)
    assert table.output.iloc[-1] == "10" and table.kind.iloc[0] == "stem"
    assert table.output.iloc[0] == f"{spec.stem.out}×8×8"
    assert (table.kind == "adaptors").sum() == sum(layer.adaptor for layer in spec.layers)


def test_learning_curve_and_export_command(frames: list[pd.DataFrame]) -> None:
    df = frames[0]
    pruned = df[df.state == "pruned"].iloc[0].to_dict()
    lc = trial.learning_curve(pruned)
    assert lc["epoch"] == [1] and lc["stopped_at"] == 1 and lc["planned"] == PLANNED
    done = df[df.state == "complete"].iloc[0].to_dict()
    lc = trial.learning_curve(done)
    assert lc["accuracy"] == done["curve"] and lc["stopped_at"] is None
    assert trial.learning_curve({"curve": json.dumps([0.5, 0.6])})["epoch"] == [1, 2]
    cmd = trial.export_command("sqlite:///runs/my study/study.db", "alpha", 7)
    assert shlex.split(cmd) == [
        *("blocknas", "export", "--storage", "sqlite:///runs/my study/study.db"),
        *("--study", "alpha", "--trial", "7", "--out", "export/alpha-trial7"),
    ]


def test_importance_finds_the_choice_that_decides_accuracy(frames: list[pd.DataFrame]) -> None:
    df = frames[0].copy()
    done = (df.state == "complete") & df.feasible
    # accuracy made to depend on the stem width alone: it must come out on top
    df.loc[done, "accuracy"] = 0.5 + 0.4 * (df.loc[done, "param.stem.out"] == 16)
    ranked = data.importance(df)
    assert ranked.param.iloc[0] == "stem.out"
    assert ranked.importance.sum() == pytest.approx(1.0)
    assert ranked.importance.is_monotonic_decreasing
    # only choices every feasible complete trial made
    assert all(df.loc[done, f"param.{p}"].notna().all() for p in ranked.param)
    assert data.importance(df[~done]).empty
    sample = data.importance(df, limit=20)  # large studies: an even sample of the trials
    assert sample.attrs == {"trials": 20, "of": int(done.sum())}
    assert sample.importance.sum() == pytest.approx(1.0)
