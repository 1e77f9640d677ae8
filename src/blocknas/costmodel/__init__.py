"""Cost model: MACs, params and latency of specs, and latency tables. Reads spaces only."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from blocknas.cost.counting import count
from blocknas.cost.latency import measure_latency
from blocknas.spaces import ArchSpec


@dataclass(frozen=True)
class Cost:
    """Costs of one architecture (MACs per image)."""

    params: int
    macs: int
    deploy_params: int
    deploy_macs: int
    latency_ms: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def cost(
    spec: ArchSpec, *, device: str | None = None, batch: int = 1, threads: int | None = None
) -> Cost:
    """Params and MACs of the training and deploy forms; deploy latency when ``device`` is given.

    >>> from blocknas.spaces.selftest import combination_spec
    >>> spec = combination_spec({"block": "plain", "op": "acb", "out": 8}, size=8, width=8)
    >>> c = cost(spec)
    >>> c.deploy_macs < c.macs and c.latency_ms is None
    True
    """
    train, deploy = count(spec)
    latency = (
        None
        if device is None
        else measure_latency(spec, device=device, batch=batch, threads=threads)
    )
    return Cost(train.params, train.macs, deploy.params, deploy.macs, latency)


__all__ = ["Cost", "cost", "measure_latency"]
