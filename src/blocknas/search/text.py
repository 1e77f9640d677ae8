"""What a search prints: one line per finished trial, progress lines, the front as a table, the
closing summary. Rendering only: the numbers come from :mod:`blocknas.search.results`, the names,
labels and formats from :data:`blocknas.metrics.METRICS`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import optuna
import pandas as pd

from blocknas.metrics import METRICS, Metric, number
from blocknas.search.results import pareto_front, reference_point, summary
from blocknas.search.study import record, shown_url

#: the metrics a front table shows when measured; the objectives are added
FRONT_COLUMNS = ("accuracy", "test_accuracy", "macs", "params", "latency_ms")


def shown_metrics(objectives: Sequence[str]) -> list[Metric]:
    """What a trial line shows: accuracy, then each objective's metric once."""
    names = dict.fromkeys(["accuracy", *objectives])
    return [METRICS[m] for m in names if m in METRICS]


def trial_line(trial: optuna.trial.FrozenTrial, objectives: Sequence[str]) -> str:
    """``trial   12  complete    accuracy 0.9612  MACs 1.23M  latency 0.412 ms  ep 4/4  arch``."""
    a = record(trial)
    state = {"fail": "failed"}.get(trial.state.name.lower(), trial.state.name.lower())
    if state == "complete" and not a.get("feasible", True):
        state = "infeasible"
    if a.get("interrupted"):
        state = "interrupted"
    parts = [f"trial {trial.number:>4}", f"{state:<11}"]
    parts += [f"{m.label} {m.show(a.get(m.name))}" for m in shown_metrics(objectives)]
    planned = a.get("epochs_planned")
    parts.append(f"ep {a.get('epochs', 0)}" + (f"/{planned}" if planned else ""))
    seed = f"[seed {a['warm_start']}] " if a.get("warm_start") else ""
    parts.append(seed + str(a.get("arch", ""))[:70])
    line = "  ".join(p for p in parts if p)
    if a.get("reason") and state != "complete":
        line += f"  ({a['reason']})"
    return line


def progress_line(s: dict[str, Any], wanted: int, running: int) -> str:
    """The running summary printed every few seconds during a search."""
    return (
        f"  done {s['done']}/{wanted}, running {running}, infeasible {s['infeasible']}, "
        f"pruned {s['pruned']}, failed {s['failed']}, front {s['front']}, "
        f"hypervolume {s['hypervolume']:.4f}"
    )


def accounting(s: dict[str, Any]) -> str:
    """``48 trials (…), 17 candidates rejected …, 2 launched trials over budget after training;
    early stopping saved 42 of 192 …``."""
    rejected, over = s["rejected"], s["over_budget_after_training"]
    stopped = s.get("interrupted", 0)
    queued = f", {stopped} interrupted and queued again" if stopped else ""
    return (
        f"{s['done']} trials ({s['complete']} complete, {s['pruned']} pruned, {s['failed']} "
        f"failed{queued}), {rejected} candidate{'' if rejected == 1 else 's'} rejected over budget "
        f"before training, {over} launched trial{'' if over == 1 else 's'} over budget after "
        f"training; early stopping saved {s['epochs_saved']} of "
        f"{s['epochs_planned']} planned epochs ({s['saved_fraction']:.0%})"
    )


def reference_text(df: pd.DataFrame) -> str:
    """What the hypervolume was normalised by: ``macs ÷ 4.00M (budget)``."""
    budgets = df.attrs.get("budgets") or {}
    parts = []
    for metric, ref in reference_point(df).items():
        value = METRICS.show(metric, ref)
        source = "budget" if metric in budgets else "largest feasible"
        parts.append(f"{metric} ÷ {value} ({source})")
    return ", ".join(parts)


def front_table(df: pd.DataFrame, objectives: Any = None, limit: int = 30) -> str:
    """The Pareto front as an aligned plain-text table; counts in full, headers are the
    metrics' names (as in ``blocknas cost --json`` and ``load_results``)."""
    front = pareto_front(df, objectives)
    if front.empty:
        return "(empty front)"
    names = list(FRONT_COLUMNS) + [m for m, _ in df.attrs.get("objectives", [])]
    names = [n for n in dict.fromkeys(names) if n in front.columns and front[n].notna().any()]
    header = ["#", *names, "epochs", "arch"]
    rows = []
    for _, r in front.head(limit).iterrows():
        cells = [str(int(r["number"]))]
        for n in names:
            cells.append(METRICS.show(n, r[n], table=True))
        epochs = number(r.get("epochs"))
        seed = _text(r.get("warm_start"))
        arch = (f"[seed {seed}] " if seed else "") + _text(r.get("arch"))
        cells += ["-" if epochs != epochs else f"{epochs:.0f}", arch]
        rows.append(cells)
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header) - 1)]
    lines = [
        "  ".join([*(c.rjust(w) for c, w in zip(row[:-1], widths, strict=True)), row[-1]]).rstrip()
        for row in [header, *rows]
    ]
    if len(front) > limit:
        lines.append(f"... {len(front) - limit} more on the front")
    return "\n".join(lines)


def _text(value: Any) -> str:
    return "" if value is None or (isinstance(value, float) and value != value) else str(value)


def failures(reasons: list[tuple[str, int]], notes: Sequence[str], limit: int = 5) -> str:
    """Why no trial completed: the reasons, most frequent first (``3× DataError: …``)."""
    lines = ["no trial completed training" + (":" if reasons or notes else "")]
    lines += [f"  {n}× {reason}" for reason, n in reasons[:limit]]
    if len(reasons) > limit:
        lines.append(f"  … and {len(reasons) - limit} other reasons")
    lines += [f"  {note}" for note in notes]
    return "\n".join(lines)


def describe(
    df: pd.DataFrame, *, study: str, storage: str, results_dir: Any, notes: Sequence[str] = ()
) -> str:
    """The closing text of a search: where the results are, the accounting, the front."""
    s = summary(df)
    front = s["front"]
    lines = [
        f"study {study!r} in {shown_url(storage)}; checkpoints and Ray results in {results_dir}",
        accounting(s),
        f"Pareto front: {front} architecture{'' if front == 1 else 's'}, hypervolume "
        f"{s['hypervolume']:.4f} (normalised: {reference_text(df) or 'accuracy alone'})",
        front_table(df),
        *notes,
    ]
    return "\n".join(lines)
