"""A search's results: its Optuna study as a DataFrame, the Pareto front, hypervolume, summary.

The study is the one the Tune searcher writes (see :mod:`blocknas.search.searcher`): one trial
per candidate, launched or rejected over budget, with its costs and metrics as user attributes.
:func:`load_results` reads it into one row per trial; the other functions work on that frame.
States: ``complete`` (trained, within budget), ``infeasible`` (complete but over a budget,
before or after training), ``pruned`` (stopped early), ``failed``, ``running``, ``waiting``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd

from blocknas.search.study import storage_for

TrialState = optuna.trial.TrialState

#: objective metric → the trial user attribute holding it, and the budget limiting it (if any)
ATTR_OF: dict[str, str] = {"deploy_macs": "macs", "deploy_params": "params"}
#: metric names that are maximized when only the name is given
ACCURACY = ("val_accuracy", "accuracy", "test_accuracy")
#: metric → the fixed column holding the same quantity (when the metric has no column)
ALIAS: dict[str, str] = ATTR_OF | {"val_accuracy": "accuracy"}
#: the fixed columns that follow the objective columns
COLUMNS = (
    *("macs", "params", "latency_ms", "accuracy", "test_accuracy", "epochs", "checkpoint"),
    *("node", "wall_seconds", "reason", "arch", "launched", "spec"),
    *("datetime_start", "datetime_complete"),
)
FLOATS = ("macs", "params", "latency_ms", "accuracy", "test_accuracy", "wall_seconds")
STATES = {TrialState.PRUNED: "pruned", TrialState.FAIL: "failed"}
STATES |= {TrialState.RUNNING: "running", TrialState.WAITING: "waiting"}

Objectives = Sequence[tuple[str, str] | str] | None


# --- loading ---------------------------------------------------------------------------------
def _load_study(
    storage: str | Path | optuna.storages.BaseStorage | optuna.Study, study: str | None
) -> optuna.Study:
    if isinstance(storage, optuna.Study):
        return storage
    where = str(storage)
    if isinstance(storage, Path):
        storage = f"sqlite:///{storage}"
    store = storage_for(storage, create=False) if isinstance(storage, str) else storage
    names = sorted(optuna.get_all_study_names(store))
    if study is None:
        if len(names) != 1:
            found = ", ".join(names) if names else "none"
            raise ValueError(f"{where} holds {len(names)} studies, pass one by name: {found}")
        study = names[0]
    elif study not in names:
        raise ValueError(
            f"no study {study!r} in {where}; studies: {', '.join(names) if names else 'none'}"
        )
    sampler = optuna.samplers.RandomSampler()  # never samples: avoids building NSGA-II
    return optuna.load_study(study_name=study, storage=store, sampler=sampler)


def _objectives_of(study: optuna.Study) -> list[tuple[str, str]]:
    """(metric, direction) per study direction; names from the ``objectives`` user attr."""
    directions = [d.name.lower() for d in study.directions]
    recorded = study.user_attrs.get("objectives")
    names = [f"objective_{i}" for i in range(len(directions))]
    if isinstance(recorded, list) and len(recorded) == len(directions):
        for i, o in enumerate(recorded):
            metric = o.get("metric") if isinstance(o, dict) else o
            if isinstance(metric, str) and metric:
                names[i] = metric
    return list(zip(names, directions, strict=True))


def _num(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _state(trial: optuna.trial.FrozenTrial) -> tuple[str, bool]:
    """The row state and whether the trial is a feasible complete one."""
    if trial.state != TrialState.COMPLETE:
        return STATES.get(trial.state, trial.state.name.lower()), False
    attrs = trial.user_attrs
    if "feasible" in attrs:
        feasible = bool(attrs["feasible"])
    else:  # a study not written by the searcher: trust the constraints if any
        feasible = all(_num(c) <= 0 for c in attrs.get("constraints", []))
    return ("complete" if feasible else "infeasible"), feasible


def _row(trial: optuna.trial.FrozenTrial, objectives: list[tuple[str, str]]) -> dict[str, Any]:
    attrs = trial.user_attrs
    state, feasible = _state(trial)
    row: dict[str, Any] = {"number": trial.number, "state": state, "feasible": feasible}
    for i, (metric, _) in enumerate(objectives):
        if trial.state == TrialState.COMPLETE and trial.values is not None:
            row[metric] = _num(trial.values[i])
        else:
            row[metric] = _num(attrs.get(ATTR_OF.get(metric, metric)))
    fixed: dict[str, Any] = {
        "macs": _num(attrs.get("macs")),
        "params": _num(attrs.get("params")),
        "latency_ms": _num(attrs.get("latency_ms")),
        "accuracy": _num(attrs.get("val_accuracy")),
        "test_accuracy": _num(attrs.get("test_accuracy")),
        "epochs": attrs.get("epochs"),
        "checkpoint": attrs.get("checkpoint"),
        "node": attrs.get("node"),
        "wall_seconds": _num(attrs.get("wall_seconds")),
        "reason": attrs.get("reason"),
        "arch": attrs.get("arch"),
        # absent only in studies the searcher did not write: guess from the state
        "launched": bool(
            attrs.get("launched", state in ("complete", "pruned", "failed", "running"))
        ),
        "spec": attrs.get("spec"),
        "datetime_start": trial.datetime_start,
        "datetime_complete": trial.datetime_complete,
    }
    row |= {k: v for k, v in fixed.items() if k not in row}
    row |= {f"param.{k}": v for k, v in trial.params.items()}
    return row


def load_results(
    storage: str | Path | optuna.storages.BaseStorage | optuna.Study, study: str | None = None
) -> pd.DataFrame:
    """One row per trial of a search's study, sorted by trial number (see the module docstring).

    ``storage`` is an Optuna storage URL, a storage, a SQLite file path, or a loaded study (then
    ``study`` is ignored); ``study`` may be left out when the storage holds exactly one.
    ``df.attrs`` holds ``objectives`` ([(metric, direction), ...]), ``budgets`` and ``study``.
    """
    st = _load_study(storage, study)
    objectives = _objectives_of(st)
    trials = sorted(st.get_trials(deepcopy=False), key=lambda t: t.number)
    rows = [_row(t, objectives) for t in trials]
    params = list(dict.fromkeys(k for r in rows for k in r if k.startswith("param.")))
    metrics = [m for m, _ in objectives]
    columns = ["number", "state", "feasible", *metrics]
    columns += [c for c in COLUMNS if c not in columns] + params
    df = pd.DataFrame(rows, columns=columns)
    df["number"] = df["number"].astype("int64")
    df["state"] = df["state"].astype(object)
    for col in ("feasible", "launched"):
        df[col] = df[col].astype(bool)
    for col in (*metrics, *FLOATS):
        df[col] = pd.to_numeric(df[col], errors="coerce").astype("float64")
    df["epochs"] = pd.to_numeric(df["epochs"], errors="coerce").astype("Int64")
    for col in ("datetime_start", "datetime_complete"):
        df[col] = pd.to_datetime(df[col])
    budgets = st.user_attrs.get("budgets") or {}
    df.attrs["objectives"] = objectives
    df.attrs["budgets"] = {k: float(v) for k, v in budgets.items() if isinstance(v, int | float)}
    df.attrs["study"] = st.study_name
    return df


# --- the front -------------------------------------------------------------------------------
def _resolve(df: pd.DataFrame, objectives: Objectives) -> list[tuple[str, str, str]]:
    """(metric, direction, column) per objective; directions are ``maximize``/``minimize``."""
    known = dict(df.attrs.get("objectives", []))
    if objectives is None:
        objectives = list(df.attrs.get("objectives", []))
        if not objectives:
            raise ValueError("no objectives: the frame has none in attrs; pass objectives=")
    out = []
    for o in objectives:
        if isinstance(o, str):
            metric = o
            direction = known.get(o, "maximize" if o in ACCURACY else "minimize")
        else:
            metric, direction = o
        direction = "maximize" if str(direction).lower().startswith("max") else "minimize"
        column = metric if metric in df.columns else ALIAS.get(metric, metric)
        if column not in df.columns:
            raise ValueError(f"no column for objective {metric!r} in the results")
        out.append((metric, direction, column))
    return out


def _losses(df: pd.DataFrame, objs: list[tuple[str, str, str]]) -> np.ndarray:
    """The objective values of ``df`` as losses (maximized ones negated), shape (rows, objs)."""
    sign = np.array([-1.0 if d == "maximize" else 1.0 for _, d, _ in objs])
    values = df[[c for _, _, c in objs]].to_numpy(dtype="float64")
    return values.reshape(len(df), len(objs)) * sign


def _non_dominated(losses: np.ndarray, block: int = 512) -> np.ndarray:
    """Mask of the rows no other row dominates (ties are kept: equal points never dominate)."""
    n = len(losses)
    dominated = np.zeros(n, dtype=bool)
    for start in range(0, n, block):
        cand = losses[start : start + block][None, :, :]
        weakly = (losses[:, None, :] <= cand).all(axis=-1)
        strictly = (losses[:, None, :] < cand).any(axis=-1)
        dominated[start : start + block] = (weakly & strictly).any(axis=0)
    return ~dominated


def pareto_front(df: pd.DataFrame, objectives: Objectives = None) -> pd.DataFrame:
    """The non-dominated feasible complete rows, sorted by the first cost objective ascending.

    ``objectives`` are (metric, direction) pairs or metric names (accuracies maximized, other
    metrics minimized); by default ``df.attrs["objectives"]``. Rows with NaN there are left out.
    """
    objs = _resolve(df, objectives)
    cols = [c for _, _, c in objs]
    cand = df[(df["state"] == "complete") & df["feasible"].astype(bool)]
    cand = cand[cand[cols].notna().all(axis=1)]
    front = cand[_non_dominated(_losses(cand, objs))] if len(cand) else cand
    costs = [c for _, d, c in objs if d == "minimize"]
    key, ascending = (costs[0], True) if costs else (cols[0], False)
    keys = [key, "number"] if key != "number" and "number" in front.columns else [key]
    asc = [ascending, True][: len(keys)]
    return front.sort_values(keys, ascending=asc, kind="mergesort")


def reference_point(df: pd.DataFrame, objectives: Objectives = None) -> list[float]:
    """Hypervolume reference, in the metrics' own units: 0 for maximized (accuracy) objectives;
    for costs the budget on that metric if set, else 1.1 × the max over feasible complete rows."""
    objs = _resolve(df, objectives)
    budgets = df.attrs.get("budgets") or {}
    done = df[(df["state"] == "complete") & df["feasible"].astype(bool)]
    ref = []
    for metric, direction, column in objs:
        budget = budgets.get(ATTR_OF.get(metric, metric))
        if direction == "maximize":
            ref.append(0.0)
        elif budget is not None:
            ref.append(float(budget))
        else:
            top = float(done[column].max()) if len(done) else math.nan
            ref.append(top + 0.1 * abs(top))
    return ref


def _hv(points: np.ndarray, ref: np.ndarray) -> float:
    """Exact hypervolume of loss ``points`` (all strictly below ``ref``): a sweep in 2-D,
    slicing along the last objective above that."""
    if len(points) == 0:
        return 0.0
    k = points.shape[1]
    if k == 1:
        return float(ref[0] - points[:, 0].min())
    points = points[_non_dominated(points)]
    if k == 2:
        pts = points[np.lexsort((points[:, 1], points[:, 0]))]
        total, best_y = 0.0, float(ref[1])
        for x, y in pts:
            if y < best_y:
                total += (float(ref[0]) - x) * (best_y - y)
                best_y = y
        return total
    pts = points[np.argsort(points[:, -1], kind="mergesort")]
    edges = np.append(pts[:, -1], ref[-1])
    total = 0.0
    for i in range(len(pts)):
        depth = float(edges[i + 1] - edges[i])
        if depth > 0:
            total += depth * _hv(pts[: i + 1, :-1], ref[:-1])
    return total


def hypervolume(
    df: pd.DataFrame, objectives: Objectives = None, reference: Sequence[float] | None = None
) -> float:
    """Hypervolume of the Pareto front against ``reference`` (default :func:`reference_point`),
    both in the metrics' own units; 0.0 for an empty front. Points beyond the reference count 0."""
    objs = _resolve(df, objectives)
    pairs = [(m, d) for m, d, _ in objs]
    front = pareto_front(df, pairs)
    if front.empty:
        return 0.0
    ref_values = list(reference) if reference is not None else reference_point(df, pairs)
    if len(ref_values) != len(objs):
        raise ValueError(f"reference has {len(ref_values)} values for {len(objs)} objectives")
    sign = np.array([-1.0 if d == "maximize" else 1.0 for _, d, _ in objs])
    ref = np.asarray(ref_values, dtype="float64") * sign
    if not np.isfinite(ref).all():
        return 0.0
    losses = _losses(front, objs)
    return _hv(losses[(losses < ref).all(axis=1)], ref)


# --- reporting -------------------------------------------------------------------------------
def summary(df: pd.DataFrame) -> dict[str, Any]:
    """Counts of the search's trials, the front size, epochs trained and the hypervolume."""
    state = df["state"]
    infeasible = state == "infeasible"
    rejected = int((infeasible & ~df["launched"].astype(bool)).sum())
    counts = {s: int((state == s).sum()) for s in ("complete", "running", "pruned", "failed")}
    finished = counts["complete"] + counts["pruned"] + counts["failed"] + int(infeasible.sum())
    has_objectives = bool(df.attrs.get("objectives"))
    return {
        "done": finished - rejected,
        **counts,
        "infeasible": int(infeasible.sum()),
        "rejected": rejected,
        "front": len(pareto_front(df)) if has_objectives else 0,
        "epochs_run": int(pd.to_numeric(df["epochs"], errors="coerce").fillna(0).sum()),
        "hypervolume": float(hypervolume(df)) if has_objectives else 0.0,
    }


def human(value: Any) -> str:
    """A count in short form.

    >>> human(1234567), human(45678), human(999), human(3.2e9), human(None)
    ('1.23M', '45.7K', '999', '3.20G', '-')
    """
    v = _num(value)
    if math.isnan(v):
        return "-"
    for scale, unit in ((1e9, "G"), (1e6, "M"), (1e3, "K")):
        if abs(v) >= scale:
            x = v / scale
            digits = 2 if abs(x) < 10 else 1 if abs(x) < 100 else 0
            return f"{x:.{digits}f}{unit}"
    return f"{v:.0f}"


def _fmt(value: Any, spec: str) -> str:
    v = _num(value)
    return "-" if math.isnan(v) else format(v, spec)


def front_table(df: pd.DataFrame, objectives: Objectives = None, limit: int = 30) -> str:
    """The Pareto front as an aligned plain-text table for terminals."""
    front = pareto_front(df, objectives)
    if front.empty:
        return "(empty front)"
    shown = front.head(limit)
    latency = "latency_ms" in front.columns and bool(front["latency_ms"].notna().any())
    header = ["#", "accuracy", "test_acc", "MACs", "params"]
    header += ["latency_ms"] if latency else []
    header += ["epochs", "arch"]
    rows = []
    for _, r in shown.iterrows():
        cells = [
            str(int(r["number"])),
            _fmt(r.get("accuracy"), ".4f"),
            _fmt(r.get("test_accuracy"), ".4f"),
            human(r.get("macs")),
            human(r.get("params")),
        ]
        cells += [_fmt(r["latency_ms"], ".3f")] if latency else []
        cells += [_fmt(r.get("epochs"), ".0f"), "" if pd.isna(r.get("arch")) else str(r["arch"])]
        rows.append(cells)
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header) - 1)]
    lines = [
        "  ".join([*(c.rjust(w) for c, w in zip(row[:-1], widths, strict=True)), row[-1]]).rstrip()
        for row in [header, *rows]
    ]
    if len(front) > len(shown):
        lines.append(f"... {len(front) - len(shown)} more on the front")
    return "\n".join(lines)
