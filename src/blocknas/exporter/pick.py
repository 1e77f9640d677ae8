"""Which trial to export: an explicit one, or a pick from the feasible front under budgets.

The front is taken over complete trials that are feasible under the study's budgets and under
any tighter ones given at export (``budgets={"macs": 2e6}``), on the study's objectives. Picks:

- ``best``: the most accurate (ties: fewer macs, then the earlier trial);
- ``smallest``: the fewest macs among those within one point (0.01) of the best accuracy;
- ``knee``: the front's knee, the point nearest the ideal point (the best value of every
  objective at once) once each objective is scaled to [0, 1] over the front.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from blocknas.metrics import METRICS
from blocknas.search.results import pareto_front

Pick = Literal["best", "smallest", "knee"]
PICKS: tuple[str, ...] = ("best", "smallest", "knee")
#: ``smallest`` keeps trials within this much accuracy of the best (one point)
SMALLEST_WITHIN = 0.01


@dataclass(frozen=True)
class Choice:
    """The trial to export, why it was chosen, and the budgets it was chosen under."""

    row: dict[str, Any]  # its load_results row
    how: str  # "pick best of a front of 7 trials" or "trial 12"
    budgets: dict[str, float] = field(default_factory=dict)

    @property
    def number(self) -> int:
        return int(self.row["number"])


def budgets_for(df: pd.DataFrame, given: dict[str, float] | None) -> dict[str, float]:
    """The study's budgets tightened by ``given``; an unknown name or a bad value is an error."""
    out = dict(df.attrs.get("budgets", {}))
    for name, limit in (given or {}).items():
        METRICS.lookup(name, METRICS.budgets(), "budget")
        if not (isinstance(limit, int | float) and math.isfinite(limit) and limit > 0):
            raise ValueError(f"budget {name}={limit!r} must be a number > 0")
        out[name] = min(float(limit), out.get(name, math.inf))
    return out


def within(df: pd.DataFrame, budgets: dict[str, float]) -> pd.Series:
    """Which rows are within every budget (a missing value is not)."""
    ok = pd.Series(True, index=df.index)
    for name, limit in budgets.items():
        ok &= df[name].le(limit).fillna(False).astype(bool)
    return ok


def choose(
    df: pd.DataFrame,
    *,
    trial: int | None = None,
    pick: str | None = None,
    budgets: dict[str, float] | None = None,
    retrain: bool = False,
) -> Choice:
    """The trial to export (``trial``, else ``pick``, default ``best``) from a study's results.

    An explicit trial must be complete unless it is retrained (then any trial with a spec will
    do), and within the budgets; a pick comes from the feasible front within them.
    """
    if trial is not None and pick is not None:
        raise ValueError("give --trial or --pick, not both")
    limits = budgets_for(df, budgets)
    if trial is not None:
        return Choice(_explicit(df, trial, limits, retrain), f"trial {trial}", limits)
    pick = pick or "best"
    if pick not in PICKS:
        raise ValueError(f"--pick={pick!r} is not a pick; valid: {', '.join(PICKS)}")
    front = pareto_front(df[within(df, limits)])
    if front.empty:
        shown = ", ".join(f"{k} ≤ {METRICS.show(k, v)}" for k, v in limits.items())
        raise ValueError(
            f"study {df.attrs.get('study')!r} has no complete feasible trial"
            + (f" within {shown}" if shown else "")
        )
    rows = front.reset_index(drop=True)
    index = {"best": _best, "smallest": _smallest, "knee": _knee}[pick](rows, df.attrs)
    how = f"pick {pick} of a front of {len(rows)} trial{'s' if len(rows) != 1 else ''}"
    return Choice(rows.iloc[index].to_dict(), how, limits)


def _explicit(df: pd.DataFrame, number: int, limits: dict[str, float], retrain: bool) -> Any:
    match = df[df["number"] == number]
    if match.empty:
        last = int(df["number"].max()) if len(df) else -1
        raise ValueError(f"--trial {number}: no such trial in the study (trials 0 to {last})")
    row = match.iloc[0].to_dict()
    if not retrain and row["state"] != "complete":
        raise ValueError(
            f"--trial {number} is {row['state']}, not complete: it has no finished training to "
            "export; retrain it with --epochs N"
        )
    if not isinstance(row.get("spec"), str):
        raise ValueError(f"--trial {number} has no architecture recorded ({row['state']})")
    for name, limit in limits.items():
        value = row.get(name)
        if value is not None and not pd.isna(value) and value > limit:
            raise ValueError(
                f"--trial {number} has {name}={METRICS.show(name, value)}, over the budget "
                f"{name} ≤ {METRICS.show(name, limit)}"
            )
    return row


def _best(front: pd.DataFrame, attrs: dict[str, Any]) -> int:
    order = front.sort_values(
        ["accuracy", "macs", "number"], ascending=[False, True, True], kind="mergesort"
    )
    return int(order.index[0])


def _smallest(front: pd.DataFrame, attrs: dict[str, Any]) -> int:
    close = front[front["accuracy"] >= front["accuracy"].max() - SMALLEST_WITHIN]
    order = close.sort_values(
        ["macs", "accuracy", "number"], ascending=[True, False, True], kind="mergesort"
    )
    return int(order.index[0])


def _knee(front: pd.DataFrame, attrs: dict[str, Any]) -> int:
    """Nearest the ideal point on the front scaled to [0, 1] per objective (1 = best)."""
    objectives = attrs.get("objectives") or [("accuracy", "maximize"), ("macs", "minimize")]
    scaled = []
    for metric, direction in objectives:
        v = front[metric].to_numpy(dtype="float64")
        low, high = float(np.nanmin(v)), float(np.nanmax(v))
        if high <= low:
            scaled.append(np.ones_like(v))
        else:
            scaled.append(
                (v - low) / (high - low) if direction == "maximize" else (high - v) / (high - low)
            )
    distance = np.sqrt(((1.0 - np.stack(scaled, axis=1)) ** 2).sum(axis=1))
    return int(np.argmin(distance))
