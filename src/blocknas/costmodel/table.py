"""Latency tables: measure each distinct network part once, predict a spec as the sum of its parts.

A spec is split into parts whose latency does not depend on the rest of the network, exactly as
the builder and the MAC counter split it (:func:`~blocknas.spaces.builder.network_parts`: the
stem, each Shape Adaptor, each block, a pre-activation net's final BN-act, and the head). A table
entry is a part's key plus the shape of its input, so the same block at the same shape is
measured once however many specs use it. Shapes come from the cost model's meta-device walk (no
compute); each part is built on its own and timed in deploy form on the target device.
"""

from __future__ import annotations

import json
import platform
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from blocknas.costmodel.counting import part_inputs
from blocknas.costmodel.latency import measure_module, own_rng
from blocknas.spaces import ArchSpec, to_deploy
from blocknas.spaces.builder import NetworkPart
from blocknas.spaces.schema import SearchSpace

#: times one module on one input, in milliseconds (``measure_module`` by default)
Timer = Callable[[nn.Module, torch.Tensor], float]

#: the table file format; version 1 keyed parts differently (its own split of the network)
VERSION = 2


@dataclass(frozen=True)
class Part:
    """One independently timed piece of a network: a part of ``network_parts`` and the shape of
    its input (batch first)."""

    part: NetworkPart
    input_shape: tuple[int, ...]

    @property
    def key(self) -> str:
        """The part's key in the shared decomposition: its fields, not its input shape."""
        return self.part.key

    @property
    def entry(self) -> str:
        """The table's key: the part's key and its input shape without the batch (JSON)."""
        return f'{{"in": {json.dumps(list(self.input_shape[1:]))}, "part": {self.part.key}}}'


def parts(spec: ArchSpec, batch: int = 1) -> list[Part]:
    """The spec's parts (``network_parts``) with their input shapes at ``batch``."""
    return [Part(part, (batch, *shape[1:])) for part, shape in part_inputs(spec)]


def _deployed(part: NetworkPart, x: torch.Tensor) -> nn.Module:
    """The part alone, in deploy form on ``x``'s device; a Shape Adaptor sees ``x`` once first,
    which fixes the size its deploy form produces."""
    return to_deploy(part.make().to(x.device), example_input=x, inplace=True)


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
        return [p for p in parts(spec, self.batch) if p.entry not in self.entries]

    def add(self, spec: ArchSpec, timer: Timer | None = None) -> int:
        """Measure the spec's parts not yet in the table; returns how many were measured.

        Each part is built alone with random weights (forked RNG: the caller's is untouched),
        put in deploy form and timed on a random input of its shape.
        """
        todo = {p.entry: p for p in self.missing(spec)}
        timer = timer or self._default_timer()
        for entry, p in todo.items():
            with own_rng(self.device):
                x = torch.randn(p.input_shape, device=self.device)
                module = _deployed(p.part, x)
            self.entries[entry] = timer(module, x)
        return len(todo)

    def predict(self, spec: ArchSpec) -> float:
        """Predicted latency (ms): the sum of the spec's parts. Unknown parts are an error."""
        ps = parts(spec, self.batch)
        unknown = [p for p in ps if p.entry not in self.entries]
        if unknown:
            raise ValueError(
                f"the latency table has no entry for {len(unknown)} of the spec's {len(ps)} "
                f"parts (first: {unknown[0].entry}); run `blocknas profile` on a space covering it"
            )
        return sum(self.entries[p.entry] for p in ps)

    def _default_timer(self) -> Timer:
        return lambda module, x: measure_module(module, x, threads=self.threads)

    # --- files -----------------------------------------------------------------------------
    def save(self, path: str | Path) -> None:
        data = {
            "version": VERSION,
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
        version = data.get("version") if isinstance(data, dict) else None
        if version == 1:
            raise ValueError(
                f"{path}: a version-1 latency table, keyed by parts this blocknas no longer "
                "uses; delete it and re-run `blocknas profile` to measure a version-2 table"
            )
        if version != VERSION:
            raise ValueError(f"{path}: not a version-{VERSION} latency table (version={version!r})")
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
