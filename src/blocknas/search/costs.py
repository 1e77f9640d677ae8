"""What a candidate costs before it is trained, and whether that is within the budgets.

Costs are analytic (deploy MACs and params, counted on the meta device) plus, when the search
needs it, latency from the latency predictor (profiled from the space first when its file is
missing). Nothing here builds or times a network: costing a candidate takes milliseconds.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from blocknas.costmodel import cost
from blocknas.costmodel.predictor import LatencyPredictor, Target
from blocknas.metrics import METRICS
from blocknas.search.config import SearchConfig
from blocknas.spaces import ArchSpec


def arch_summary(spec: ArchSpec) -> str:
    """A short human summary: ``stem16 basic/conv16 basic/acb32↓ +A inverted/dwsep48↓``."""
    parts = [f"stem{spec.stem.out}"]
    for layer in spec.layers:
        mark = "↓" if layer.stride == 2 else ""
        parts.append(
            ("+A " if layer.adaptor else "") + f"{layer.block}/{layer.op}{layer.out}{mark}"
        )
    return " ".join(parts)


class Coster:
    """Analytic costs of a candidate before training, with its latency predicted when the search
    needs it (:func:`latency_predictor`)."""

    def __init__(self, config: SearchConfig, echo: Callable[[str], None] | None = None) -> None:
        self.config = config
        self.predictor = latency_predictor(config, echo) if config.predicts_latency() else None

    def __call__(self, spec: ArchSpec) -> dict[str, Any]:
        """Every metric known before training, by its name in the metrics table (None: unknown)."""
        out = cost(spec).to_dict()
        if self.predictor is not None:
            out["latency_ms"] = self.predictor.predict(spec)
        return METRICS.complete(out)


def latency_predictor(
    config: SearchConfig, echo: Callable[[str], None] | None = None
) -> LatencyPredictor:
    """The search's latency predictor: ``latency.table`` or ``<run dir>/latency_<device>.json``,
    profiled from the space first when it is missing or unfinished (progress through ``echo``).
    A file measured on another device, thread count, batch size or torch is refused."""
    from blocknas.costmodel.profiling import profile, report_table

    lat = config.latency
    path = predictor_path(config)
    target = Target.here(lat.device, lat.threads, lat.batch)
    predictor = existing_predictor(config)
    if predictor is None or predictor.model is None:
        say = echo or (lambda _line: None)
        say(
            f"latency: profiling {lat.samples} specs of the space (and {lat.holdout} held out) "
            f"on {target.describe()} into {path}"
        )
        every = max(1, (lat.samples + 2 * lat.holdout) // 10)

        def progress(done: int, total: int) -> None:
            if done % every == 0 or done == total:
                say(f"  profiled {done}/{total}")

        predictor = profile(
            config.space, path, target, samples=lat.samples, holdout=lat.holdout,
            seed=config.search.seed, progress=progress,
        )  # fmt: skip
        if predictor.report is not None:
            say(report_table(predictor.report))
    return predictor


def predictor_path(config: SearchConfig) -> Path:
    """``latency.table``, or where the search profiles one: ``<run dir>/latency_<device>.json``."""
    return config.latency.table or config.run_dir / f"latency_{config.latency.device}.json"


def existing_predictor(config: SearchConfig) -> LatencyPredictor | None:
    """The search's latency predictor file as it is (None: not made yet); a damaged one, or one
    measured on another device, thread count, batch size or torch, is a one-line ValueError.
    Checked before the study opens, so a bad file changes nothing."""
    from blocknas.costmodel.profiling import read

    lat, path = config.latency, predictor_path(config)
    if not path.exists():
        return None
    predictor = read(path)
    predictor.check(Target.here(lat.device, lat.threads, lat.batch), path)
    return predictor


def constraint_values(config: SearchConfig, metrics: dict[str, Any]) -> list[float]:
    """``value − limit`` per budget that is set (≤ 0: within budget; unknown: +inf)."""
    out = []
    for name, limit in config.budgets.limits().items():
        value = metrics.get(name)
        out.append(float("inf") if value is None else float(value) - limit)
    return out


def over_budget(config: SearchConfig, metrics: dict[str, Any]) -> str | None:
    """Why ``metrics`` break a budget (one line), or None."""
    broken = [
        f"{name} {float(metrics[name]):.6g} > {limit:.6g}"
        if metrics.get(name) is not None
        else f"{name} unknown"
        for (name, limit), c in zip(
            config.budgets.limits().items(), constraint_values(config, metrics), strict=True
        )
        if c > 0
    ]
    return "over budget: " + ", ".join(broken) if broken else None


def known(metrics: dict[str, Any]) -> dict[str, Any]:
    """The metrics that have a value: what a trial's record holds (missing ones stay missing)."""
    return {k: v for k, v in metrics.items() if k in METRICS and v is not None}
