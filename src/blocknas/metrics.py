"""The one table of metrics (contracts §5): every name a search records, optimises, limits or shows.

Each :class:`Metric` says what its name means, which way is better, its unit, how it is shown,
and when it is known: ``before`` training (from the spec alone, by the cost model, so a budget on
it rejects a candidate before any training) or ``after`` (measured by training). The search
config, the searcher, early stopping, the results, the CLI and the dashboard all read this table,
so adding an objective is one entry::

    >>> from blocknas.metrics import METRICS, Metric
    >>> size = Metric("size_mb", "size", "MB", "before", "minimize", style="float",
    ...               derive=lambda m: m["params"] * 4 / 2**20)
    >>> with METRICS.extended(size):
    ...     METRICS.complete({"macs": 10, "params": 2**18})["size_mb"]
    1.0
    >>> "size_mb" in METRICS
    False

Pure Python: every layer of blocknas may import it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

Direction = Literal["maximize", "minimize"]
Known = Literal["before", "after"]
Style = Literal["fraction", "count", "ms", "float"]

#: FLOPs per multiply-accumulate, the papers' convention (contracts §5: flops = 2 × macs)
FLOPS_PER_MAC = 2


@dataclass(frozen=True)
class Metric:
    """One named quantity.

    ``direction`` None: reported only, never an objective (``test_accuracy``, ``train_macs``).
    ``derive``: how the value follows from other metrics (``flops`` from ``macs``).
    ``predicted``: an ``after`` metric that a latency table predicts before training.
    """

    name: str
    label: str  # short, for column headers and progress lines
    unit: str  # "" for fractions and plain counts
    known: Known
    direction: Direction | None = None
    budget: bool = False  # may be limited under ``budgets:``
    style: Style = "count"
    derive: Callable[[Mapping[str, Any]], float | None] | None = None
    predicted: bool = False
    doc: str = ""

    def show(self, value: Any, *, table: bool = False) -> str:
        """The value as a person reads it: ``0.9612``, ``1.23M``, ``0.412 ms``; ``-`` if missing.
        ``table``: for a column headed by the metric's name: counts in full (``1,234,567``, to
        compare with other outputs), no unit.

        >>> METRICS["macs"].show(1234567), METRICS["macs"].show(1234567, table=True)
        ('1.23M', '1,234,567')
        >>> METRICS["latency_ms"].show(0.41234), METRICS["accuracy"].show(None)
        ('0.412 ms', '-')
        """
        v = number(value)
        if math.isnan(v):
            return "-"
        if self.style == "fraction":
            return f"{v:.4f}"
        if self.style == "count":
            return f"{v:,.0f}" if table else human(v)
        if self.style == "ms":
            return f"{v:.3f}" if table else f"{v:.3f} ms"
        return f"{v:.4g}"


def number(value: Any) -> float:
    """``value`` as a float; NaN for a missing or non-numeric value (never 0)."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def human(value: Any) -> str:
    """A count in short form.

    >>> human(1234567), human(45678), human(999), human(3.2e9), human(None)
    ('1.23M', '45.7K', '999', '3.20G', '-')
    """
    v = number(value)
    if math.isnan(v):
        return "-"
    for scale, unit in ((1e9, "G"), (1e6, "M"), (1e3, "K")):
        if abs(v) >= scale:
            x = v / scale
            digits = 2 if abs(x) < 10 else 1 if abs(x) < 100 else 0
            return f"{x:.{digits}f}{unit}"
    return f"{v:.0f}"


def _flops(m: Mapping[str, Any]) -> float | None:
    macs = m.get("macs")
    return None if macs is None else FLOPS_PER_MAC * macs


#: the names contracts v1 used, and what they are called now (v2)
RENAMED: dict[str, str] = {
    "val_accuracy": "accuracy",
    "deploy_macs": "macs",
    "deploy_params": "params",
}


class MetricTable:
    """The metrics by name, in a fixed order (the order of result columns)."""

    def __init__(self, metrics: list[Metric]) -> None:
        self._items: dict[str, Metric] = {}
        for m in metrics:
            self._add(m)

    def _add(self, metric: Metric) -> None:
        if metric.name in self._items or metric.name in RENAMED:
            raise ValueError(f"metric {metric.name!r} is already defined")
        if metric.direction is not None and metric.direction not in ("maximize", "minimize"):
            raise ValueError(f"metric {metric.name!r}: direction must be maximize or minimize")
        self._items[metric.name] = metric

    def __getitem__(self, name: str) -> Metric:
        return self._items[name]

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[Metric]:
        return iter(list(self._items.values()))

    def names(self) -> list[str]:
        return list(self._items)

    def objectives(self) -> list[str]:
        """Names that may be objectives (they have a direction)."""
        return [m.name for m in self if m.direction is not None]

    def budgets(self) -> list[str]:
        """Names that may be limited under ``budgets:``."""
        return [m.name for m in self if m.budget]

    def lookup(self, name: Any, allowed: list[str], what: str) -> Metric:
        """The metric ``name`` if it is one of ``allowed``; otherwise a one-line ValueError naming
        the new name of a renamed one, or the allowed names."""
        if isinstance(name, str) and name in RENAMED:
            raise ValueError(
                f"{what} {name!r} was renamed to {RENAMED[name]!r} (contracts v2: unqualified "
                "macs/params/accuracy mean the deploy form and the validation split)"
            )
        if name not in allowed:
            raise ValueError(f"unknown {what} {name!r}; valid: {', '.join(allowed)}")
        return self._items[name]

    def show(self, name: str, value: Any, *, table: bool = False) -> str:
        """``value`` as :meth:`Metric.show` shows it; a name outside the table (an objective of
        a study blocknas did not write) as a plain number."""
        if name in self._items:
            return self._items[name].show(value, table=table)
        v = number(value)
        return "-" if math.isnan(v) else f"{v:.4g}"

    def complete(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """``values`` with every derivable metric that is missing filled in (None if not known)."""
        out = dict(values)
        for m in self:
            if out.get(m.name) is None and m.derive is not None:
                try:
                    out[m.name] = m.derive(out)
                except (KeyError, TypeError):
                    out[m.name] = None
        return out

    @contextmanager
    def extended(self, *metrics: Metric) -> Iterator[MetricTable]:
        """The table with ``metrics`` added for the duration of a ``with`` block."""
        added: list[str] = []
        try:
            for m in metrics:
                self._add(m)
                added.append(m.name)
            yield self
        finally:
            for name in added:  # only what this block added: a refused clash leaves the original
                self._items.pop(name, None)

    def register(self, metric: Metric) -> Metric:
        """Add a metric for the rest of the process (a plugin's own cost, say)."""
        self._add(metric)
        return metric


METRICS = MetricTable(
    [
        Metric(
            "accuracy", "accuracy", "", "after", "maximize", style="fraction",
            doc="top-1 on the validation split",
        ),
        Metric(
            "test_accuracy", "test acc", "", "after", style="fraction",
            doc="top-1 on the held-out test split, never used for selection",
        ),
        Metric(
            "macs", "MACs", "MACs", "before", "minimize", budget=True,
            doc="multiply-accumulates per image of the deploy form",
        ),
        Metric(
            "flops", "FLOPs", "FLOPs", "before", "minimize", budget=True, derive=_flops,
            doc="2 × macs (the papers' FLOPs)",
        ),
        Metric(
            "params", "params", "", "before", "minimize", budget=True,
            doc="parameters of the deploy form",
        ),
        Metric(
            "latency_ms", "latency", "ms", "after", "minimize", budget=True, style="ms",
            predicted=True,
            doc="median latency of the deploy form, batch 1 unless configured",
        ),
        Metric(
            "train_macs", "train MACs", "MACs", "before",
            doc="MACs of the training form (ACB branches, unfolded BN)",
        ),
        Metric(
            "train_params", "train params", "", "before",
            doc="parameters of the training form",
        ),
    ]
)  # fmt: skip
