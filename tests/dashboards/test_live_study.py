"""What the dashboard keeps between polls: the front, updated from the trials that changed, is
the front of the whole study; huge studies are thinned evenly for drawing, never the front."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import optuna
import pandas as pd

from blocknas import load_results, pareto_front
from blocknas.dashboards import data
from blocknas.dashboards.live import LiveStudy
from blocknas.dashboards.server import tick_only
from blocknas.search.study import RECORD_ATTR, storage_for
from blocknas.search.synthetic import synthetic_study


def _complete(study: optuna.Study, accuracy: float, macs: float) -> int:
    """A trained trial as the searcher records it."""
    trial = study.ask()
    record = {"launched": True, "feasible": True, "accuracy": accuracy, "macs": macs}
    trial.set_user_attr(RECORD_ATTR, record | {"epochs": 4, "epochs_planned": 4})
    study.tell(trial, [accuracy, macs])
    return trial.number


def test_the_front_is_updated_from_new_trials_only(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'study.db'}"
    study = synthetic_study(url, "s", 300, seed=4)
    live = LiveStudy(storage_for(url, create=False), "s")
    df = live.frame()
    assert live.compared == len(df)  # the first read compares every trial
    old = pareto_front(df)
    best = old.iloc[len(old) // 2]
    added = [
        _complete(study, best.accuracy + 0.001, best.macs),  # dominates one front trial
        _complete(study, 0.01, 1e9),  # dominated by all
        _complete(study, 0.01, 1.0),  # the cheapest yet: joins the front
    ]
    live.frame()
    assert live.compared == len(old) + len(added) < len(df)
    assert list(live.front().number) == list(pareto_front(load_results(url)).number)
    assert added[0] in set(live.front().number) and best.number not in set(live.front().number)
    assert added[1] not in set(live.front().number)
    live.frame()
    assert live.compared == len(old) + len(added)  # nothing new: nothing compared again


def test_front_points_use_the_kept_front_unless_a_budget_tightens(frames: list) -> None:
    df = frames[0]
    kept = pareto_front(df).iloc[:-1]  # a stand-in, to see which one is used
    points = data.front_points(df, front=kept)
    assert set(points[points.kind == "front"].number) == set(kept.number)
    limit = float(df[df.state == "complete"].macs.median())
    tight = data.front_points(df, front=kept, budgets={"macs": limit})
    under = df[(df.macs <= limit) | (df.state != "complete")]
    assert set(tight[tight.kind == "front"].number) == set(pareto_front(under).number)


def test_drawable_keeps_the_front_and_thins_the_rest_evenly() -> None:
    n = 100_000
    kinds = np.where(np.arange(n) % 1000 == 0, "front", "dominated")
    kinds[7] = "running"
    points = pd.DataFrame({"number": np.arange(n), "kind": kinds})
    drawn, left_out = data.drawable(points, limit=5_000)
    assert len(drawn) == 5_000 and left_out == n - 5_000
    assert set(points.number[points.kind != "dominated"]) <= set(drawn.number)
    gaps = np.diff(drawn[drawn.kind == "dominated"].number)
    assert gaps.max() <= 2 * np.median(gaps)  # an even sample, not the first or last 5,000
    same, none = data.drawable(points.iloc[:3_000], limit=5_000)
    assert none == 0 and len(same) == 3_000
    caption = data.front_caption(drawn, left_out)
    assert caption.startswith("front: 100 trials (0, 1000, ") and "95,000 other trials" in caption


def test_derived_values_are_computed_once_per_version(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'study.db'}"
    study = synthetic_study(url, "s", 40, seed=2)
    live = LiveStudy(storage_for(url, create=False), "s")
    calls: list[int] = []

    def count(df: pd.DataFrame) -> int:
        calls.append(len(df))
        return len(df)

    assert live.derived("n", count) == live.derived("n", count) == 40
    _complete(study, 0.5, 1e5)
    assert live.derived("n", count) == 41 and calls == [40, 41]


def test_a_study_of_three_objectives_opens_in_3d(frames: list) -> None:
    from blocknas.dashboards.app import _front_controls

    df = frames[0].copy()
    z = {c.id: c.value for c in _front_controls(df) if getattr(c, "id", None) in ("x", "z")}
    assert z == {"x": "macs", "z": None}
    df.attrs = df.attrs | {"objectives": [*df.attrs["objectives"], ("params", "minimize")]}
    z = {c.id: c.value for c in _front_controls(df) if getattr(c, "id", None) in ("x", "z")}
    assert z == {"x": "macs", "z": "params"}


def test_a_change_that_arrives_with_a_refresh_tick_is_not_skipped() -> None:
    assert tick_only({"tick.n_intervals": "tick"})
    # Dash names the tick first when both arrive in one call: the slider must still redraw
    both = {"tick.n_intervals": "tick", '{"budget":"macs"}.value': {"budget": "macs"}}
    assert not tick_only(both)
    assert not tick_only({})  # the first call on load draws
