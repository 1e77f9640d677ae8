"""Search quality as compute is spent: hypervolume against epochs trained, and at a budget.

A search is only as good as the front it has found *for the compute it used*, so runs are
compared at equal epochs (or equal wall time), not at equal trial counts: early stopping and a
sampler that avoids hopeless candidates both buy more trials for the same epochs. Trials are
ordered by when they finished; a trial's epochs count once it has finished, and it joins the
front only if it completed (a pruned trial spends epochs but never enters the front).

Pure pandas on a :func:`~blocknas.search.results.load_results` frame (or any frame with the
columns ``state``, ``feasible``, ``epochs``, ``datetime_complete`` and the objectives).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from blocknas.search.results import Objectives, hypervolume


def spent(df: pd.DataFrame) -> pd.DataFrame:
    """The trials that trained, in the order they finished, with running totals.

    Adds ``epochs_spent`` (epochs trained by every trial finished so far) and ``seconds`` (since
    the first trial started). Trials that never trained (rejected over budget) are left out.

    >>> import pandas as pd
    >>> t = pd.Timestamp("2026-01-01")
    >>> df = pd.DataFrame({"state": ["complete", "pruned", "complete"], "epochs": [4, 2, 0],
    ...     "datetime_start": [t] * 3, "datetime_complete": [t + pd.Timedelta(seconds=9),
    ...     t + pd.Timedelta(seconds=5), t]})
    >>> spent(df)[["epochs", "epochs_spent", "seconds"]].values.tolist()
    [[2.0, 2.0, 5.0], [4.0, 6.0, 9.0]]
    """
    out = df[df["epochs"].fillna(0) > 0].copy()
    out["epochs"] = out["epochs"].astype(float)
    out = out.sort_values(["datetime_complete", "number" if "number" in out else "epochs"])
    out["epochs_spent"] = out["epochs"].cumsum()
    start = df["datetime_start"].min()
    out["seconds"] = (out["datetime_complete"] - start).dt.total_seconds()
    return out


def within(
    df: pd.DataFrame, *, epochs: float | None = None, seconds: float | None = None
) -> pd.DataFrame:
    """The trials finished within ``epochs`` trained (and/or ``seconds`` of wall time)."""
    out = spent(df)
    if epochs is not None:
        out = out[out["epochs_spent"] <= epochs + 1e-9]
    if seconds is not None:
        out = out[out["seconds"] <= seconds + 1e-9]
    return out


def anytime(
    df: pd.DataFrame,
    objectives: Objectives = None,
    reference: Mapping[str, float] | None = None,
) -> pd.DataFrame:
    """Normalised hypervolume after each finished trial: columns ``epochs_spent``, ``seconds``,
    ``hypervolume`` (one row per trial that trained, in the order they finished)."""
    s = spent(df)
    hv = [
        hypervolume(s.iloc[: i + 1], objectives, reference) if len(s) else 0.0
        for i in range(len(s))
    ]
    return pd.DataFrame(
        {
            "epochs_spent": s["epochs_spent"].values,
            "seconds": s["seconds"].values,
            "hypervolume": hv,
        }
    )


def hypervolume_at(
    curve: pd.DataFrame, budgets: Sequence[float], by: str = "epochs_spent"
) -> list[float]:
    """A step curve from :func:`anytime` read at each budget (0.0 before the first trial)."""
    x = curve[by].to_numpy(dtype=float)
    y = curve["hypervolume"].to_numpy(dtype=float)
    out = []
    for b in budgets:
        i = int(np.searchsorted(x, b + 1e-9, side="right"))
        out.append(float(y[i - 1]) if i else 0.0)
    return out
