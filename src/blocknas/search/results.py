"""A search's results: its Optuna study as a DataFrame, the Pareto front, hypervolume, summary.

The study is the one the Tune searcher writes (see :mod:`blocknas.search.searcher`): one trial
per candidate, launched or rejected over budget, with its metrics as user attributes named as in
:data:`blocknas.metrics.METRICS`. :func:`load_results` reads it into one row per trial, a column
per metric; a metric that was not measured is NaN, never 0. States: ``complete`` (trained, within
budget), ``infeasible`` (complete but over a budget, before or after training), ``pruned``
(stopped early), ``failed``, ``running``, ``waiting``. Text rendering is in
:mod:`blocknas.search.text`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd

from blocknas.metrics import METRICS, RENAMED, number
from blocknas.search.hypervolume import dominated_volume, non_dominated
from blocknas.search.study import interrupted, record, storage_for

TrialState = optuna.trial.TrialState

#: the columns after the metric columns
RECORD = (
    *("epochs", "epochs_planned", "wall_seconds", "node", "reason", "arch", "spec"),
    *("checkpoint", "launched", "warm_start", "curve", "datetime_start", "datetime_complete"),
)
STATES = {TrialState.PRUNED: "pruned", TrialState.FAIL: "failed"}
STATES |= {TrialState.RUNNING: "running", TrialState.WAITING: "waiting"}
#: a v1 study's user attributes under their v2 names
LEGACY_ATTRS = {new: old for old, new in RENAMED.items()}

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
    """(metric, direction) per study direction; names from the ``objectives`` user attr (a v1
    study's names read as their v2 ones)."""
    directions = [d.name.lower() for d in study.directions]
    recorded = study.user_attrs.get("objectives")
    names = [f"objective_{i}" for i in range(len(directions))]
    if isinstance(recorded, list) and len(recorded) == len(directions):
        for i, o in enumerate(recorded):
            metric = o.get("metric") if isinstance(o, dict) else o
            if isinstance(metric, str) and metric:
                names[i] = RENAMED.get(metric, metric)
    return list(zip(names, directions, strict=True))


def _state(trial: optuna.trial.FrozenTrial, attrs: dict[str, Any]) -> tuple[str, bool]:
    """The row state and whether the trial is a feasible complete one (``attrs``: its record)."""
    if trial.state != TrialState.COMPLETE:
        return STATES.get(trial.state, trial.state.name.lower()), False
    if "feasible" in attrs:
        feasible = bool(attrs["feasible"])
    else:  # a study not written by the searcher: trust the constraints if any
        feasible = all(number(c) <= 0 for c in attrs.get("constraints", []))
    return ("complete" if feasible else "infeasible"), feasible


def _metrics(
    trial: optuna.trial.FrozenTrial, objectives: list[str], attrs: dict[str, Any]
) -> dict[str, Any]:
    """The trial's metrics from its record ``attrs``. Objective values come from
    ``trial.values`` only in studies blocknas did not write: the searcher tells samplers
    stand-ins for unmeasured values, and those must not show as measurements."""
    out = {m: attrs.get(m, attrs.get(LEGACY_ATTRS.get(m, m))) for m in METRICS.names()}
    written = "launched" in attrs or "feasible" in attrs
    if not written and trial.state == TrialState.COMPLETE and trial.values is not None:
        out |= dict(zip(objectives, trial.values, strict=True))
    return METRICS.complete(out)


def _row(
    trial: optuna.trial.FrozenTrial, objectives: list[str], retried: dict[int, int]
) -> dict[str, Any]:
    attrs = record(trial)  # read once: the row's every field comes from it
    state, feasible = _state(trial, attrs)
    row: dict[str, Any] = {"number": trial.number, "state": state, "feasible": feasible}
    row |= {k: number(v) for k, v in _metrics(trial, objectives, attrs).items()}
    reason = attrs.get("reason")
    if trial.number in retried:
        reason = "interrupted: the search driver stopped"
        if retried[trial.number] >= 0:
            reason += f"; retried as trial {retried[trial.number]}"
    row |= {
        "epochs": attrs.get("epochs"),
        "epochs_planned": attrs.get("epochs_planned"),
        "wall_seconds": number(attrs.get("wall_seconds")),
        "node": attrs.get("node"),
        "reason": reason,
        "arch": attrs.get("arch"),
        "spec": attrs.get("spec"),
        "checkpoint": attrs.get("checkpoint"),
        # absent only in studies the searcher did not write: guess from the state
        "launched": bool(
            attrs.get("launched", state in ("complete", "pruned", "failed", "running"))
        ),
        "warm_start": attrs.get("warm_start"),  # the seed spec's label (search.seed_specs)
        "curve": attrs.get("curve"),  # validation accuracy after each epoch trained
        "datetime_start": trial.datetime_start,
        "datetime_complete": trial.datetime_complete,
    }
    return row | {f"param.{k}": v for k, v in trial.params.items()}


def _retries(study: optuna.Study, trials: list[optuna.trial.FrozenTrial]) -> dict[int, int]:
    """Interrupted trial number → the number of its retry (-1: none, it was never launched)."""
    retries = {t.number: record(t).get("retry_of") for t in trials}
    retry_of = {int(first): n for n, first in retries.items() if first is not None}
    return {n: retry_of.get(n, -1) for n in interrupted(study)}


def load_results(
    storage: str | Path | optuna.storages.BaseStorage | optuna.Study, study: str | None = None
) -> pd.DataFrame:
    """One row per trial of a search's study, sorted by trial number (see the module docstring).

    ``storage`` is an Optuna storage URL, a storage, a SQLite file path, or a loaded study (then
    ``study`` is ignored); ``study`` may be left out when the storage holds exactly one.
    ``df.attrs`` holds ``objectives`` ([(metric, direction), ...]), ``budgets``, ``study`` and
    ``planned_trials`` (``search.trials`` of its last run; None for studies that lack it).

    After ``make demo``::

        df = load_results("sqlite:///runs/digits/study.db")
        df[df.state == "complete"][["accuracy", "macs", "latency_ms"]].describe()
    """
    st = _load_study(storage, study)
    objectives = _objectives_of(st)
    names = [m for m, _ in objectives]
    trials = sorted(st.get_trials(deepcopy=False), key=lambda t: t.number)
    retried = _retries(st, trials)
    rows = [_row(t, names, retried) for t in trials]
    metrics = METRICS.names() + [m for m in names if m not in METRICS]
    params = list(dict.fromkeys(k for r in rows for k in r if k.startswith("param.")))
    columns = ["number", "state", "feasible", *metrics, *RECORD, *params]
    df = pd.DataFrame(rows, columns=columns)
    df["number"] = df["number"].astype("int64")
    df["state"] = df["state"].astype(object)
    for col in ("feasible", "launched"):
        df[col] = df[col].astype(bool)
    for col in (*metrics, "wall_seconds"):
        df[col] = pd.to_numeric(df[col], errors="coerce").astype("float64")
    for col in ("epochs", "epochs_planned"):
        df[col] = pd.to_numeric(df[col], errors="coerce").astype("Int64")
    for col in ("datetime_start", "datetime_complete"):
        df[col] = pd.to_datetime(df[col])
    budgets = st.user_attrs.get("budgets") or {}
    df.attrs["objectives"] = objectives
    df.attrs["budgets"] = {k: float(v) for k, v in budgets.items() if isinstance(v, int | float)}
    df.attrs["study"] = st.study_name
    planned = st.user_attrs.get("planned_trials")
    df.attrs["planned_trials"] = int(planned) if isinstance(planned, int | float) else None
    return df


# --- the front -------------------------------------------------------------------------------
def _resolve(df: pd.DataFrame, objectives: Objectives) -> list[tuple[str, str]]:
    """(metric, direction) per objective; a bare name takes its direction from the frame's
    objectives, else from the metrics table."""
    known = dict(df.attrs.get("objectives", []))
    if objectives is None:
        objectives = list(df.attrs.get("objectives", []))
        if not objectives:
            raise ValueError("no objectives: the frame has none in attrs; pass objectives=")
    out = []
    for o in objectives:
        metric, direction = (o, known.get(o)) if isinstance(o, str) else o
        metric = RENAMED.get(metric, metric)
        if direction is None:
            direction = METRICS[metric].direction if metric in METRICS else None
        if direction is None or metric not in df.columns:
            valid = ", ".join(m for m in METRICS.objectives() if m in df.columns)
            raise ValueError(f"{metric!r} is not an objective of these results; valid: {valid}")
        out.append((metric, "maximize" if str(direction).startswith("max") else "minimize"))
    return out


def _losses(df: pd.DataFrame, objs: list[tuple[str, str]]) -> np.ndarray:
    """The objective values of ``df`` as losses (maximized ones negated), shape (rows, objs)."""
    sign = np.array([-1.0 if d == "maximize" else 1.0 for _, d in objs])
    values = df[[m for m, _ in objs]].to_numpy(dtype="float64")
    return values.reshape(len(df), len(objs)) * sign


def pareto_front(df: pd.DataFrame, objectives: Objectives = None) -> pd.DataFrame:
    """The non-dominated feasible complete rows, sorted by the first cost objective ascending.

    ``objectives`` are (metric, direction) pairs or metric names; by default
    ``df.attrs["objectives"]``. Rows with NaN in an objective are left out.
    """
    objs = _resolve(df, objectives)
    cols = [m for m, _ in objs]
    cand = df[(df["state"] == "complete") & df["feasible"].astype(bool)]
    cand = cand[cand[cols].notna().all(axis=1)]
    front = cand[non_dominated(_losses(cand, objs))] if len(cand) else cand
    costs = [m for m, d in objs if d == "minimize"]
    key, ascending = (costs[0], True) if costs else (cols[0], False)
    keys = [key, "number"] if key != "number" and "number" in front.columns else [key]
    asc = [ascending, True][: len(keys)]
    return front.sort_values(keys, ascending=asc, kind="mergesort")


def reference_point(df: pd.DataFrame, objectives: Objectives = None) -> dict[str, float]:
    """Each cost objective's reference, in its own unit (contracts §5): the budget on that
    metric where one is set, else the largest value among the feasible complete rows (of every
    study in ``df``: concatenate the frames of the runs to compare). Maximized objectives
    (accuracy) need none: they are fractions, taken as they are."""
    budgets = df.attrs.get("budgets") or {}
    done = df[(df["state"] == "complete") & df["feasible"].astype(bool)]
    ref = {}
    for metric, direction in _resolve(df, objectives):
        if direction == "minimize":
            top = float(done[metric].max()) if len(done) else float("nan")
            ref[metric] = float(budgets.get(metric, top))
    return ref


def hypervolume(
    df: pd.DataFrame, objectives: Objectives = None, reference: Mapping[str, float] | None = None
) -> float:
    """Normalised hypervolume of the Pareto front, in [0, 1] (contracts §5).

    Accuracy is taken as it is, each cost as value ÷ its reference (default
    :func:`reference_point`; ``reference`` overrides it per cost metric, e.g. one reference for
    several runs); the volume that the front dominates in that unit box is the hypervolume.
    Points beyond a reference add nothing; an empty front gives 0.0.

    >>> import pandas as pd
    >>> df = pd.DataFrame({"state": ["complete"] * 2, "feasible": [True, True],
    ...                    "accuracy": [0.9, 0.6], "macs": [4e6, 1e6]})
    >>> hypervolume(df, ["accuracy", "macs"], reference={"macs": 5e6})  # 0.9·0.2 + 0.6·0.6
    0.54
    """
    objs = _resolve(df, objectives)
    ref = reference_point(df, objs)
    extra = set(reference or {}) - set(ref)
    if extra:
        raise ValueError(
            f"reference names {sorted(extra)}, which are not cost objectives here; "
            f"valid: {', '.join(ref) or 'none'}"
        )
    ref |= {k: float(v) for k, v in (reference or {}).items()}
    front = pareto_front(df, objs)
    if front.empty:
        return 0.0
    if not all(np.isfinite(v) and v > 0 for v in ref.values()):
        raise ValueError(f"every reference must be a positive number, got {ref}")
    scale = np.array([1.0 if d == "maximize" else ref[m] for m, d in objs])
    losses = _losses(front, objs) / scale
    box = np.array([0.0 if d == "maximize" else 1.0 for _, d in objs])
    return round(float(dominated_volume(losses[(losses < box).all(axis=1)], box)), 12)


# --- accounting ------------------------------------------------------------------------------
def summary(df: pd.DataFrame) -> dict[str, Any]:
    """Counts of the search's trials, the front size, epochs and the normalised hypervolume.

    ``epochs_planned`` counts the epochs planned for every launched trial that ended (trials a
    stopped driver interrupted are counted once, in their retry); ``epochs_saved`` the planned
    epochs early stopping did not train; ``saved_fraction`` their ratio.
    """
    state = df["state"]
    launched = df["launched"].astype(bool)
    infeasible = state == "infeasible"
    rejected = int((infeasible & ~launched).sum())
    counts = {s: int((state == s).sum()) for s in ("complete", "running", "pruned", "failed")}
    finished = counts["complete"] + counts["pruned"] + counts["failed"] + int(infeasible.sum())
    ended = launched & state.isin(["complete", "infeasible", "pruned", "failed"])
    ended &= ~df["reason"].fillna("").astype(str).str.startswith("interrupted")
    planned = int(df.loc[ended, "epochs_planned"].fillna(0).sum())
    pruned = df[state == "pruned"]
    saved = int((pruned["epochs_planned"] - pruned["epochs"]).clip(lower=0).fillna(0).sum())
    has_objectives = bool(df.attrs.get("objectives"))
    return {
        "done": finished - rejected,
        **counts,
        "infeasible": int(infeasible.sum()),
        "rejected": rejected,
        "front": len(pareto_front(df)) if has_objectives else 0,
        "epochs_run": int(pd.to_numeric(df["epochs"], errors="coerce").fillna(0).sum()),
        "epochs_planned": planned,
        "epochs_saved": saved,
        "saved_fraction": saved / planned if planned else 0.0,
        "hypervolume": float(hypervolume(df)) if has_objectives else 0.0,
    }


class Tally:
    """:func:`summary`'s done, infeasible, pruned, failed, front and hypervolume (the same
    values) for a search's progress lines, kept up to date: a finished trial's record never
    changes, so :meth:`update` reads only the trials that finished since its last call instead
    of reloading every trial into a DataFrame (milliseconds, not tens growing with the study)."""

    FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)

    def __init__(self, study: optuna.Study) -> None:
        self.study = study
        self.objectives = _objectives_of(study)
        budgets = study.user_attrs.get("budgets") or {}
        self.budgets = {k: float(v) for k, v in budgets.items() if isinstance(v, int | float)}
        self.seen: set[int] = set()
        self.counts = dict.fromkeys(("done", "infeasible", "pruned", "failed"), 0)
        self.points: list[list[float]] = []  # objective values of the feasible complete trials
        self.front: dict[str, Any] = {"front": 0, "hypervolume": 0.0}

    def update(self) -> dict[str, Any]:
        """The numbers, after reading the trials that finished since the last call."""
        names, before = [m for m, _ in self.objectives], len(self.points)
        for trial in self.study.get_trials(deepcopy=False, states=self.FINISHED):
            if trial.number in self.seen:
                continue
            self.seen.add(trial.number)
            row = _row(trial, names, {})  # the trial's load_results row
            if row["state"] in self.counts:
                self.counts[row["state"]] += 1
            if row["state"] != "infeasible" or row["launched"]:  # not rejected before training
                self.counts["done"] += 1
            if row["feasible"]:
                self.points.append([number(row.get(m)) for m in names])
        if len(self.points) != before:
            self.front = self._front()
        return self.counts | self.front

    def _front(self) -> dict[str, Any]:
        """Front size and hypervolume of the feasible complete trials, by the same functions as
        :func:`summary` (on a frame of those trials only)."""
        names = [m for m, _ in self.objectives]
        df = pd.DataFrame(self.points, columns=names).assign(state="complete", feasible=True)
        df.attrs |= {"objectives": self.objectives, "budgets": self.budgets}
        return {"front": len(pareto_front(df)), "hypervolume": hypervolume(df)}


def trained(df: pd.DataFrame) -> int:
    """How many trials finished training (complete, within budget or not after training)."""
    return int((df["launched"].astype(bool) & df["state"].isin(["complete", "infeasible"])).sum())


def failure_reasons(df: pd.DataFrame) -> list[tuple[str, int]]:
    """Why launched trials did not complete: (reason, how many), most frequent first."""
    ended = df[df["launched"].astype(bool) & df["state"].isin(["failed", "pruned"])]
    counts = ended["reason"].fillna("no reason recorded").astype(str).value_counts(sort=False)
    return sorted(((str(r), int(n)) for r, n in counts.items()), key=lambda rn: (-rn[1], rn[0]))
