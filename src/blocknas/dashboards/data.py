"""What the dashboard and the report show, as data: one function per table or figure, each
computed from :func:`~blocknas.load_results` frames and returning a DataFrame or a dict.
:mod:`blocknas.dashboards.figures` draws them; the tests check these numbers, not pixels.

The front is always :func:`~blocknas.pareto_front` of the study's objectives (under tighter
budgets when sliders move), whatever the axes a figure puts it on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from blocknas.metrics import METRICS
from blocknas.search.anytime import spent
from blocknas.search.results import (
    hypervolume,
    normalised_volume,
    pareto_front,
    reference_point,
    summary,
)

#: how each plotted trial is drawn, by what it is
KINDS = ("front", "dominated", "infeasible", "pruned", "failed", "interrupted", "running")
#: the most points a front figure draws (see :func:`drawable`)
MAX_POINTS = 20_000
#: what a point's hover shows besides its axes
HOVER = ("number", "arch", "accuracy", "test_accuracy", "macs", "params", "latency_ms", "reason")


def _metric_columns(df: pd.DataFrame) -> list[str]:
    """The metrics these results measured (a column with at least one value)."""
    names = [m for m, _ in df.attrs.get("objectives", [])] + METRICS.names()
    return [m for m in dict.fromkeys(names) if m in df.columns and df[m].notna().any()]


def _choices(df: pd.DataFrame) -> dict[str, list[str]]:
    """Searched choice (the last part of a parameter's name: ``block``, ``op``, ``kernel``,
    ``depth``...) → its parameter columns (``param.s0.l1.block``, ...)."""
    out: dict[str, list[str]] = {}
    for col in df.columns:
        if col.startswith("param."):
            out.setdefault(col.rsplit(".", 1)[-1], []).append(col)
    return out


def _check(name: str, valid: Sequence[str], what: str) -> None:
    if name not in valid:
        raise ValueError(f"{what} {name!r} is not in these results; valid: {', '.join(valid)}")


# --- the studies page ----------------------------------------------------------------------
def studies_table(frames: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """One row per study: status, trials done of planned, counts by state, front size,
    normalised hypervolume, best accuracy within budget, budgets, last update."""
    rows = []
    for df in frames:
        s = summary(df)
        done = df[(df.state == "complete") & df.feasible]
        stamps = pd.concat([df["datetime_start"], df["datetime_complete"]]).dropna()
        live = df.state.eq("running").any()
        waiting = df.state.eq("waiting").any()  # queued: retries of interrupted trials
        rows.append(
            {
                "study": df.attrs.get("study"),
                "status": "running" if live else "stopped" if waiting else "finished",
                "done": s["done"],
                "planned": df.attrs.get("planned_trials"),
                "complete": s["complete"],
                "pruned": s["pruned"],
                "infeasible": s["infeasible"],
                "failed": s["failed"],
                "interrupted": s["interrupted"],
                "running": s["running"],
                "front": s["front"],
                "hypervolume": s["hypervolume"],
                "best_accuracy": float(done["accuracy"].max()) if len(done) else float("nan"),
                "budgets": ", ".join(f"{k} ≤ {v:.6g}" for k, v in df.attrs["budgets"].items()),
                "last_update": stamps.max() if len(stamps) else pd.NaT,
            }
        )
    return pd.DataFrame(rows)


# --- the front page ------------------------------------------------------------------------
def under_budgets(df: pd.DataFrame, budgets: Mapping[str, float] | None) -> pd.DataFrame:
    """``df`` with each complete trial over one of ``budgets`` marked infeasible, its reason
    naming the budget: the front under tighter budgets than the search's ("the best under 1 M
    MACs and 2 ms"). A metric a trial did not measure counts as over, as in the search."""
    out = df.copy()
    for metric, limit in (budgets or {}).items():
        _check(metric, _metric_columns(df), "budget metric")
        over = (out["state"] == "complete") & ~(out[metric] <= limit)
        out.loc[over, "reason"] = [
            f"over budget: {metric} {v:.6g} > {limit:.6g}" for v in out.loc[over, metric]
        ]
        out.loc[over, ["state", "feasible"]] = ["infeasible", False]
    return out


def dominant(df: pd.DataFrame, choice: str) -> pd.Series:
    """Per trial, the value of a per-layer ``choice`` (``block``, ``op``) its layers use most
    (the earliest layer's on a tie): what a point is coloured by."""
    cols = _choices(df).get(choice)
    if not cols:
        raise ValueError(f"no searched choice {choice!r}; valid: {', '.join(_choices(df))}")

    def most(values: pd.Series) -> Any:
        v = values.dropna()
        return v.value_counts(sort=True).index[0] if len(v) else None

    return df[cols].apply(most, axis=1)


def front_points(
    df: pd.DataFrame,
    x: str = "macs",
    y: str = "accuracy",
    *,
    z: str | None = None,
    color: str | None = None,
    budgets: Mapping[str, float] | None = None,
    front: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Every trial that can be placed on the axes, with its ``kind`` (:data:`KINDS`) and what
    hovering shows; a trial stopped before its end sits at its last epoch's accuracy
    (``partial``). ``color`` is a metric or a searched choice (``block``, ``op``: the value
    most of its layers use). ``budgets`` tighten the search's (see :func:`under_budgets`).
    ``front``: :func:`~blocknas.pareto_front` of ``df`` when already known (the dashboard
    keeps it as trials arrive); used only when no budget tightens the search's."""
    metrics = _metric_columns(df)
    for axis in (x, y, *([z] if z else [])):
        _check(axis, metrics, "axis")
    view = under_budgets(df, budgets)
    on_front = set((pareto_front(view) if front is None or budgets else front).number)
    kind = view["state"].map(
        {"complete": "dominated", "pruned": "pruned", "failed": "failed", "running": "running"}
    )
    kind = kind.fillna(view["state"]).where(~view["number"].isin(on_front), "front")
    out = view[[c for c in HOVER if c in view.columns]].assign(kind=kind.values)
    # a stopped, failed or running trial has no accuracy: it is drawn at its last epoch's
    stopped = ["pruned", "failed", "interrupted", "running"]
    partial = view["accuracy"].isna() & view["state"].isin(stopped)
    last = view["curve"].map(lambda c: c[-1] if isinstance(c, list) and c else np.nan)
    for axis, name in (("x", x), ("y", y), ("z", z)):
        if name:
            values = view[name].where(~partial, last) if name == "accuracy" else view[name]
            out[axis] = values.values
    out["partial"] = partial.values
    if color:
        out["color"] = view[color].values if color in metrics else dominant(view, color).values
    keep = out[["x", "y", *(["z"] if z else [])]].notna().all(axis=1) & out.kind.isin(KINDS)
    return out[keep].reset_index(drop=True)


def drawable(points: pd.DataFrame, limit: int = MAX_POINTS) -> tuple[pd.DataFrame, int]:
    """At most ``limit`` of :func:`front_points`, and how many were left out: every front and
    running trial, and an even share of the rest (every k-th by trial number), so that a
    study of 100,000 trials still draws in a browser."""
    keep = points.kind.isin(["front", "running"])
    rest = np.flatnonzero(~keep.to_numpy())
    room = max(limit - int(keep.sum()), 0)
    if len(rest) <= room:
        return points, 0
    chosen = rest[np.linspace(0, len(rest) - 1, room).round().astype(int)] if room else rest[:0]
    mask = keep.to_numpy().copy()
    mask[chosen] = True
    return points[mask].reset_index(drop=True), int(len(points) - mask.sum())


def front_caption(points: pd.DataFrame, left_out: int = 0, listed: int = 40) -> str:
    """``front: 7 trials (3, 12, ...)``, and what :func:`drawable` left out."""
    numbers = sorted(points.loc[points.kind == "front", "number"])
    shown = ", ".join(map(str, numbers[:listed])) + (", …" if len(numbers) > listed else "")
    text = f"front: {len(numbers)} trials ({shown})"
    if left_out:
        text += f"; {left_out:,} other trials not drawn (an even sample of them is)"
    return text


# --- convergence and comparison ------------------------------------------------------------
def hypervolume_curve(
    df: pd.DataFrame, reference: Mapping[str, float] | None = None
) -> pd.DataFrame:
    """Normalised hypervolume after each trained trial, in the order they finished: columns
    ``trials``, ``epochs_spent``, ``seconds``, ``hypervolume``. The front is kept as trials
    arrive and the volume recomputed only when it changes (fast on large studies)."""
    objectives = df.attrs["objectives"]
    ref = dict(reference_point(df)) | dict(reference or {})
    sign = np.array([-1.0 if d == "maximize" else 1.0 for _, d in objectives])
    names = [m for m, _ in objectives]
    s = spent(df)
    losses = s[names].to_numpy(dtype=float) * sign
    usable = (s["state"] == "complete").to_numpy() & s["feasible"].astype(bool).to_numpy()
    usable &= np.isfinite(losses).all(axis=1)
    front: list[int] = []  # positions in s of the current front
    current, values = 0.0, []
    for i in range(len(s)):
        point = losses[i]
        if usable[i] and not (losses[front] <= point).all(axis=1).any():  # not dominated
            front = [j for j in front if not (point <= losses[j]).all()] + [i]
            current = normalised_volume(losses[front], objectives, ref)
        values.append(current)
    return pd.DataFrame(
        {
            "trials": np.arange(1, len(s) + 1),
            "epochs_spent": s["epochs_spent"].to_numpy(),
            "seconds": s["seconds"].to_numpy(),
            "hypervolume": values,
        }
    )


def common_reference(frames: Sequence[pd.DataFrame]) -> dict[str, float]:
    """One reference point for several studies: per cost objective, the largest of theirs."""
    refs = [reference_point(df) for df in frames]
    shared = set.intersection(*(set(r) for r in refs)) if refs else set()
    return {m: max(r[m] for r in refs) for m in refs[0] if m in shared} if refs else {}


def compare(frames: Sequence[pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """Several studies on one reference point: ``table`` (study, front size, trials,
    hypervolume), ``fronts`` (each front's rows with a ``study`` column) and ``curves``
    (:func:`hypervolume_curve` per study). Their objectives must be the same."""
    if len(frames) < 2:
        raise ValueError(f"compare needs two studies or more, got {len(frames)}")
    first = frames[0].attrs["objectives"]
    for df in frames[1:]:
        if df.attrs["objectives"] != first:
            raise ValueError(
                f"study {df.attrs.get('study')!r} has objectives {df.attrs['objectives']}, "
                f"study {frames[0].attrs.get('study')!r} {first}: only the same ones compare"
            )
    ref = common_reference(frames)
    table, fronts, curves = [], [], []
    for df in frames:
        name = df.attrs.get("study")
        front = pareto_front(df)
        table.append(
            {
                "study": name,
                "front": len(front),
                "trials": summary(df)["done"],
                "hypervolume": hypervolume(df, reference=ref),
            }
        )
        fronts.append(front.assign(study=name))
        curves.append(hypervolume_curve(df, ref).assign(study=name))
    return {
        "table": pd.DataFrame(table),
        "fronts": pd.concat(fronts, ignore_index=True),
        "curves": pd.concat(curves, ignore_index=True),
        "reference": pd.DataFrame([ref]),
    }


# --- insights --------------------------------------------------------------------------------
def _value_text(value: Any) -> str:
    """A choice's value as written in the space (a column with gaps holds 3 as 3.0)."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def choice_effects(df: pd.DataFrame) -> pd.DataFrame:
    """Per searched choice and value, among feasible complete trials: how many trials use it,
    their mean and best accuracy and median MACs. A trial counts once per value it uses
    (three basic layers: one trial for ``block = basic``)."""
    done = df[(df.state == "complete") & df.feasible]
    parts = []
    for choice, cols in _choices(df).items():
        long = done.melt(id_vars=["number", "accuracy", "macs"], value_vars=cols)
        long = long.dropna(subset=["value"]).drop_duplicates(["number", "value"])
        long["value"] = long["value"].map(_value_text)
        parts.append(long.assign(choice=choice))
    columns = ["choice", "value", "trials", "accuracy_mean", "accuracy_max", "macs_median"]
    if not parts:
        return pd.DataFrame(columns=columns)
    grouped = pd.concat(parts).groupby(["choice", "value"], sort=True)
    out = grouped.agg(
        trials=("number", "nunique"),
        accuracy_mean=("accuracy", "mean"),
        accuracy_max=("accuracy", "max"),
        macs_median=("macs", "median"),
    )
    out = out.reset_index()
    order = pd.to_numeric(out["value"], errors="coerce")  # 8 before 16, not after
    out = out.assign(_n=order).sort_values(["choice", "_n", "value"], kind="mergesort")
    return out[columns].reset_index(drop=True)


def importance(df: pd.DataFrame, *, seed: int = 0, limit: int = 1000) -> pd.DataFrame:
    """Optuna's parameter importance (fANOVA) for validation accuracy, over the feasible
    complete trials and the choices every one of them made (a layer that exists only in deeper
    networks is left out): columns ``param``, ``importance`` (summing to 1), largest first.
    fANOVA takes seconds per thousand trials: beyond ``limit``, an even sample of them (by
    trial number) is used; ``attrs`` holds ``trials`` (used) and ``of`` (there were)."""
    import optuna

    done = df[(df.state == "complete") & df.feasible & df.accuracy.notna()]
    counts = {"trials": min(len(done), limit), "of": len(done)}
    if len(done) > limit:
        done = done.iloc[np.linspace(0, len(done) - 1, limit).round().astype(int)]
    cols = [c for c in df.columns if c.startswith("param.") and done[c].notna().all()]
    cols = [c for c in cols if done[c].nunique() > 1]
    if len(done) < 2 or not cols:
        out = pd.DataFrame(columns=["param", "importance"])
        out.attrs |= counts
        return out
    dists: dict[str, optuna.distributions.BaseDistribution] = {
        c.removeprefix("param."): optuna.distributions.CategoricalDistribution(
            sorted(done[c].unique().tolist())
        )
        for c in cols
    }
    quiet = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # no "study created" line per call
    try:
        study = optuna.create_study(direction="maximize")
    finally:
        optuna.logging.set_verbosity(quiet)
    study.add_trials(
        optuna.trial.create_trial(
            params={c.removeprefix("param."): row[c] for c in cols},
            distributions=dists,
            value=float(row["accuracy"]),
        )
        for _, row in done.iterrows()
    )
    evaluator = optuna.importance.FanovaImportanceEvaluator(seed=seed)
    found = optuna.importance.get_param_importances(study, evaluator=evaluator)
    out = pd.DataFrame({"param": list(found), "importance": list(found.values())})
    out.attrs |= counts
    return out
