"""A search's results: the Pareto front, hypervolume and summary of its :func:`load_results`
frame (reading the study: :mod:`blocknas.search.reading`; text: :mod:`blocknas.search.text`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import optuna
import pandas as pd

from blocknas.metrics import METRICS, RENAMED, number
from blocknas.search.hypervolume import dominated_volume, non_dominated
from blocknas.search.reading import RECORD as RECORD  # re-exported: results API
from blocknas.search.reading import load_results as load_results
from blocknas.search.reading import objectives_of, row
from blocknas.search.study import interrupted

TrialState = optuna.trial.TrialState
Objectives = Sequence[tuple[str, str] | str] | None


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
    return normalised_volume(_losses(front, objs), objs, ref) if len(front) else 0.0


def normalised_volume(
    losses: np.ndarray, objectives: list[tuple[str, str]], ref: Mapping[str, float]
) -> float:
    """The volume that loss vectors (maximised objectives negated) dominate in the unit box:
    accuracy as it is, each cost over its reference; :func:`hypervolume` of those points."""
    if not all(np.isfinite(v) and v > 0 for v in ref.values()):
        raise ValueError(f"every reference must be a positive number, got {dict(ref)}")
    scale = np.array([1.0 if d == "maximize" else ref[m] for m, d in objectives])
    box = np.array([0.0 if d == "maximize" else 1.0 for _, d in objectives])
    losses = losses / scale
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
    over_after = int((infeasible & launched).sum())  # within the predicted budget, not the real
    counts = {s: int((state == s).sum()) for s in ("complete", "running", "pruned", "failed")}
    counts["interrupted"] = int((state == "interrupted").sum())  # each queued again
    finished = counts["complete"] + counts["pruned"] + counts["failed"] + int(infeasible.sum())
    ended = launched & state.isin(["complete", "infeasible", "pruned", "failed"])
    planned = int(df.loc[ended, "epochs_planned"].fillna(0).sum())
    pruned = df[state == "pruned"]
    saved = int((pruned["epochs_planned"] - pruned["epochs"]).clip(lower=0).fillna(0).sum())
    has_objectives = bool(df.attrs.get("objectives"))
    return {
        "done": finished - rejected,
        **counts,
        "infeasible": int(infeasible.sum()),
        "rejected": rejected,
        "over_budget_after_training": over_after,
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
        self.objectives = objectives_of(study)
        budgets = study.user_attrs.get("budgets") or {}
        self.budgets = {k: float(v) for k, v in budgets.items() if isinstance(v, int | float)}
        self.seen: set[int] = set()
        self.counts = dict.fromkeys(("done", "infeasible", "pruned", "failed"), 0)
        self.points: list[list[float]] = []  # objective values of the feasible complete trials
        self.front: dict[str, Any] = {"front": 0, "hypervolume": 0.0}

    def update(self) -> dict[str, Any]:
        """The numbers, after reading the trials that finished since the last call."""
        names, before = [m for m, _ in self.objectives], len(self.points)
        stopped: dict[int, int] | None = None
        for trial in self.study.get_trials(deepcopy=False, states=self.FINISHED):
            if trial.number in self.seen:
                continue
            self.seen.add(trial.number)
            if trial.state == TrialState.FAIL and stopped is None:  # read once, when needed
                stopped = dict.fromkeys(interrupted(self.study), -1)
            out = row(trial, names, stopped or {})  # its load_results row (but its retry)
            if out["state"] in self.counts:
                self.counts[out["state"]] += 1
            if out["state"] == "interrupted":  # counted in its retry
                continue
            if out["state"] != "infeasible" or out["launched"]:  # not rejected before training
                self.counts["done"] += 1
            if out["feasible"]:
                self.points.append([number(out.get(m)) for m in names])
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
