"""The cost model: MACs, params and latency of specs, and latency tables. Reads spaces only.

Named ``costmodel`` so that no module shadows the public function ``blocknas.cost``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from blocknas.costmodel.counting import PartCost, breakdown, count
from blocknas.costmodel.latency import measure_latency
from blocknas.metrics import FLOPS_PER_MAC
from blocknas.spaces import ArchSpec


@dataclass(frozen=True)
class Cost:
    """Costs of one architecture, per image, named as in contracts §5.

    ``macs``/``params`` count the deploy form (ACB fused, BN folded): what runs after export and
    what budgets limit. ``train_macs``/``train_params`` count the training form. ``flops`` is
    2 × ``macs``; ``latency_ms`` is measured only when a device is given.
    """

    macs: int
    params: int
    train_macs: int
    train_params: int
    flops: int = field(init=False)
    latency_ms: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "flops", FLOPS_PER_MAC * self.macs)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def cost(
    spec: ArchSpec, *, device: str | None = None, batch: int = 1, threads: int | None = None
) -> Cost:
    """Params and MACs of the deploy and training forms; deploy latency when ``device`` is given.

    >>> import blocknas
    >>> c = blocknas.cost(blocknas.presets.get("resnet18_acb"))
    >>> c.macs == blocknas.cost(blocknas.presets.get("resnet18")).macs < c.train_macs
    True
    >>> c.flops == 2 * c.macs and c.latency_ms is None
    True
    """
    train, deploy = count(spec)
    latency = (
        None
        if device is None
        else measure_latency(spec, device=device, batch=batch, threads=threads)
    )
    return Cost(
        macs=deploy.macs,
        params=deploy.params,
        train_macs=train.macs,
        train_params=train.params,
        latency_ms=latency,
    )


__all__ = ["Cost", "PartCost", "breakdown", "cost", "measure_latency"]
