"""What the trial page (and the report, per front architecture) shows of one trial, as data:
its learning curve and the command that exports it (its layers: blocknas.costmodel.summary).
:mod:`blocknas.dashboards.figures` draws them; the tests check these numbers."""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping
from typing import Any

from blocknas.search.study import shown_url


def learning_curve(row: Mapping[str, Any]) -> dict[str, Any]:
    """A trial's validation accuracy per epoch, the epochs it was planned, and the epoch it
    was stopped at (None unless pruned)."""
    curve = row.get("curve") or []
    if isinstance(curve, str):
        curve = json.loads(curve)
    pruned = row.get("state") == "pruned"
    return {
        "epoch": list(range(1, len(curve) + 1)),
        "accuracy": [float(a) for a in curve],
        "planned": row.get("epochs_planned"),
        "stopped_at": int(row["epochs"]) if pruned and row.get("epochs") else None,
    }


def export_command(storage: str, study: str, trial: int, out: str | None = None) -> str:
    """The ``blocknas export`` command line for one trial (contracts §3), quoted for a shell; a
    literal password in the storage URL shows as ``***`` (``${VAR}`` is kept)."""
    out = out or f"export/{study}-trial{trial}"
    args = ["blocknas", "export", "--storage", shown_url(storage), "--study", study]
    return shlex.join([*args, "--trial", str(trial), "--out", out])
