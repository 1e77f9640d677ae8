"""Latency tables: measure each distinct network part once, predict a spec as the sum of its parts.

A spec is split into parts whose latency does not depend on the rest of the network: the stem,
each Shape Adaptor, each block, and the head (with a pre-activation net's final BN-act). A part's
key is its spec fields plus the shape of its input, so the same block at the same shape is
measured once however many specs use it. Shapes come from a forward pass on the meta device (no
compute); each part is timed in deploy form on the target device.
"""

from __future__ import annotations

import json
import platform
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from blocknas.spaces import ArchSpec, Network, build, to_deploy
from blocknas.spaces.schema import SearchSpace

#: times one module on one input, in milliseconds (``measure_module`` by default)
Timer = Callable[[nn.Module, torch.Tensor], float]


@dataclass(frozen=True)
class Part:
    """One independently timed piece of a network: its key and the shape of its input."""

    key: str
    input_shape: tuple[int, ...]


def _key(kind: str, fields: dict[str, Any], shape: tuple[int, ...]) -> str:
    return json.dumps({"part": kind, **fields, "in": list(shape[1:])}, sort_keys=True)


def _modules(net: Network) -> Iterable[tuple[str, nn.Module]]:
    """The parts of a (training- or deploy-form) Network, in forward order."""
    yield "stem", net.stem
    for i, block in enumerate(net.layers):
        if str(i) in net.adaptors:
            yield f"adaptor{i}", net.adaptors[str(i)]
        yield f"layer{i}", block
    yield "head", nn.Sequential(net.final, net.head)


def _input_shapes(net: Network, x: torch.Tensor) -> dict[str, tuple[int, ...]]:
    shapes: dict[str, tuple[int, ...]] = {}

    def record(name: str) -> Callable[[nn.Module, tuple[torch.Tensor, ...]], None]:
        return lambda _m, args: shapes.__setitem__(name, tuple(args[0].shape))

    modules = dict(_modules(net))
    modules["head"] = net.final  # the head part starts at the final BN-act
    hooks = [m.register_forward_pre_hook(record(name)) for name, m in modules.items()]
    try:
        net(x)
    finally:
        for h in hooks:
            h.remove()
    return shapes


def parts(spec: ArchSpec, batch: int = 1) -> list[Part]:
    """The spec's parts with their input shapes (meta-device forward: no compute)."""
    with torch.device("meta"):
        net = build(spec).eval()  # eval: batch-1 BN on 1×1 attention features is fine
        shapes = _input_shapes(net, torch.empty(batch, *spec.input))
    out = [Part(_key("stem", spec.stem.model_dump(), shapes["stem"]), shapes["stem"])]
    sizes = {name: m.last_size for name, m in _modules(net) if name.startswith("adaptor")}
    for i, layer in enumerate(spec.layers):
        if layer.adaptor:
            name = f"adaptor{i}"
            fields = {"r1": spec.adaptors.r1, "r2": spec.adaptors.r2, "size": sizes[name]}
            out.append(Part(_key("adaptor", fields, shapes[name]), shapes[name]))
        fields = layer.model_dump(exclude={"adaptor"})
        out.append(Part(_key("block", fields, shapes[f"layer{i}"]), shapes[f"layer{i}"]))
    head = {**spec.head.model_dump(), "classes": spec.num_classes, "last": spec.layers[-1].block}
    out.append(Part(_key("head", head, shapes["head"]), shapes["head"]))
    return out


@dataclass
class LatencyTable:
    """Measured part latencies on one device, thread count and batch size.

    >>> from blocknas.spaces.selftest import combination_spec
    >>> spec = combination_spec({"block": "basic", "out": 8}, size=8, width=8)
    >>> table = LatencyTable(device="cpu", threads=1)
    >>> table.add(spec, timer=lambda module, x: 1.0)  # parts measured: stem, block, head
    3
    >>> table.predict(spec)
    3.0
    """

    device: str
    threads: int
    batch: int = 1
    entries: dict[str, float] = field(default_factory=dict)
    meta: dict[str, str] = field(default_factory=dict)

    def missing(self, spec: ArchSpec) -> list[Part]:
        return [p for p in parts(spec, self.batch) if p.key not in self.entries]

    def add(self, spec: ArchSpec, timer: Timer | None = None) -> int:
        """Measure the spec's parts not yet in the table; returns how many were measured."""
        todo = {p.key: p for p in self.missing(spec)}
        if not todo:
            return 0
        timer = timer or self._default_timer()
        torch.manual_seed(0)
        net = to_deploy(build(spec).to(self.device))
        assert isinstance(net, Network)
        shapes_seen: set[str] = set()
        for (_, module), part in zip(_modules(net), parts(spec, self.batch), strict=True):
            if part.key in todo and part.key not in shapes_seen:
                x = torch.randn(part.input_shape, device=self.device)
                self.entries[part.key] = timer(module, x)
                shapes_seen.add(part.key)
        return len(shapes_seen)

    def predict(self, spec: ArchSpec) -> float:
        """Predicted latency (ms): the sum of the spec's parts. Unknown parts are an error."""
        ps = parts(spec, self.batch)
        unknown = [p for p in ps if p.key not in self.entries]
        if unknown:
            raise ValueError(
                f"the latency table has no entry for {len(unknown)} of the spec's {len(ps)} "
                f"parts (first: {unknown[0].key}); run `blocknas profile` on a space covering it"
            )
        return sum(self.entries[p.key] for p in ps)

    def _default_timer(self) -> Timer:
        from blocknas.cost.latency import measure_module

        return lambda module, x: measure_module(module, x, threads=self.threads)

    # --- files -----------------------------------------------------------------------------
    def save(self, path: str | Path) -> None:
        data = {
            "version": 1,
            "device": self.device,
            "threads": self.threads,
            "batch": self.batch,
            "meta": self.meta or {"torch": torch.__version__, "machine": platform.machine()},
            "entries": self.entries,
        }
        Path(path).write_text(json.dumps(data, indent=1, sort_keys=True))

    @classmethod
    def load(cls, path: str | Path) -> LatencyTable:
        try:
            data = json.loads(Path(path).read_text())
        except OSError as e:
            raise ValueError(f"cannot read latency table {str(path)!r}: {e.strerror}") from None
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}: not a latency table (invalid JSON: {e})") from None
        if not isinstance(data, dict) or data.get("version") != 1:
            raise ValueError(f"{path}: not a version-1 latency table")
        return cls(
            device=data["device"],
            threads=int(data["threads"]),
            batch=int(data["batch"]),
            entries={k: float(v) for k, v in data["entries"].items()},
            meta=dict(data.get("meta", {})),
        )


def profile(
    space: SearchSpace,
    table: LatencyTable,
    *,
    samples: int = 100,
    seed: int = 0,
    timer: Timer | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Measure every distinct part of ``samples`` specs drawn from ``space`` (seeds ``seed`` …).
    Returns the number of parts measured; ``progress(done, total)`` after each spec."""
    measured = 0
    for i in range(samples):
        measured += table.add(space.sample_random(seed + i), timer)
        if progress is not None:
            progress(i + 1, samples)
    return measured
