"""Params and MACs of a spec's training and deploy forms, counted without computing anything.

The network is built on the meta device and run once under ``FlopCounterMode``; MACs are its
flops ÷ 2 (conv and linear multiply-accumulates, torch's convention). An op whose kernel
FlopCounterMode does not know (``deform_conv2d``) reports those MACs itself through
:meth:`Op.uncounted_macs`, which is hooked for the ops that override it. Shape Adaptors on the
meta device use the spec's σ (the learned one when the spec carries it), so learned sizes are
what gets counted.

A spec is counted part by part (stem, adaptors, blocks, head: :func:`network_parts`), each part
in its training and its deploy form, and the counts are memoised per (part, input shape). The
sums equal a count of the whole network (the tests check this on every preset and sampled specs).
The same walk gives each part's input shape (:func:`part_inputs`), which the latency table keys
its entries by.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import cast

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from blocknas.spaces import ArchSpec, Op, SpecError, to_deploy
from blocknas.spaces.builder import NetworkPart, network_parts


@dataclass(frozen=True)
class Counts:
    params: int
    macs: int


#: Modules that keep the shape and have no MACs. On the meta device their Python reference
#: kernels cost more than the convs, so they are skipped while counting.
SHAPE_KEEPING: tuple[type[nn.Module], ...] = (
    nn.BatchNorm1d,
    nn.BatchNorm2d,
    nn.BatchNorm3d,
    nn.SyncBatchNorm,
    nn.ReLU,
    nn.ReLU6,
    nn.Hardswish,
    nn.Sigmoid,
    nn.SiLU,
)


@contextmanager
def _bypassed(model: nn.Module) -> Iterator[None]:
    """Replace every :data:`SHAPE_KEEPING` module's forward by the identity while counting."""
    skipped = [m for m in model.modules() if isinstance(m, SHAPE_KEEPING)]
    for m in skipped:
        m.forward = _identity
    try:
        yield
    finally:
        for m in skipped:
            del m.forward


def _identity(x: torch.Tensor) -> torch.Tensor:
    return x


def _has_uncounted(module: nn.Module) -> bool:
    """Whether ``module`` is an op with MACs of its own beyond what FlopCounterMode sees."""
    return isinstance(module, Op) and type(module).uncounted_macs is not Op.uncounted_macs


def _counted(model: nn.Module, x: torch.Tensor) -> tuple[Counts, torch.Tensor]:
    """Run ``model`` (on the meta device) once under FlopCounterMode: its counts and output."""
    extra = [0]

    def add_uncounted(mod: nn.Module, _inputs: object, out: torch.Tensor) -> None:
        extra[0] += cast(Op, mod).uncounted_macs(out)

    hooks = [m.register_forward_hook(add_uncounted) for m in model.modules() if _has_uncounted(m)]
    try:
        with torch.no_grad(), _bypassed(model), FlopCounterMode(display=False) as counter:
            out = model(x)
    finally:
        for h in hooks:
            h.remove()
    params = sum(p.numel() for p in model.parameters())
    return Counts(params=params, macs=counter.get_total_flops() // 2 + extra[0]), out


def count_module(model: nn.Module, input_shape: tuple[int, ...]) -> Counts:
    """Params and per-image MACs of ``model`` (already on the meta device) at ``input_shape``."""
    return _counted(model, torch.empty(1, *input_shape, device="meta"))[0]


@dataclass(frozen=True)
class PartCounts:
    train: Counts
    deploy: Counts
    out_shape: tuple[int, ...]


#: Counts of every part seen in this process, by (part key, input shape). A pure memo: a part's
#: counts depend on nothing else, and searches meet the same parts again and again.
_PARTS: OrderedDict[tuple[str, tuple[int, ...]], PartCounts] = OrderedDict()
_PARTS_MAX = 20_000


def clear_cache() -> None:
    """Forget the memoised part counts (benchmarks measure a cold start with it)."""
    _PARTS.clear()


def _count_part(part: NetworkPart, shape: tuple[int, ...]) -> PartCounts:
    cached = _PARTS.get((part.key, shape))
    if cached is not None:
        return cached
    with torch.device("meta"):
        module = part.make().eval()  # eval: batch-1 BN on 1×1 attention features is fine
    # The counted passes run outside the device context: its per-op hop costs more than counting.
    x = torch.empty(shape, device="meta")
    train, out = _counted(module, x)
    with torch.device("meta"):  # the deploy form's new convs are created on meta too
        # A throwaway module whose adaptor just recorded its size: no copy, no extra forward.
        deployed = to_deploy(module, inplace=True, reuse_sizes=True)
    deploy, _ = _counted(deployed, x)
    counts = PartCounts(train, deploy, tuple(out.shape))
    _PARTS[(part.key, shape)] = counts
    if len(_PARTS) > _PARTS_MAX:
        _PARTS.popitem(last=False)
    return counts


def part_path(spec: ArchSpec, name: str) -> str:
    """Where a part (:func:`network_parts`) comes from in the spec: ``layers.3`` → ``layers[3]``,
    ``adaptors.3`` → ``layers[3].adaptor``, ``final`` → the last layer; ``stem``, ``head``."""
    kind, _, index = name.partition(".")
    if kind == "layers":
        return f"layers[{index}]"
    if kind == "adaptors":
        return f"layers[{index}].adaptor"
    return f"layers[{len(spec.layers) - 1}]" if kind == "final" else kind


def walk(spec: ArchSpec) -> Iterator[tuple[NetworkPart, tuple[int, ...], PartCounts]]:
    """Each part of ``spec`` in forward order, with its batch-1 input shape and its counts
    (memoised; a caller may stop early, and later parts are then never counted).

    A part with a tensor of 2**63 or more elements cannot even be described on the meta device;
    torch's overflow error becomes a :class:`SpecError` naming the part (never built either)."""
    shape: tuple[int, ...] = (1, *spec.input)
    for part in network_parts(spec):
        try:
            counts = _count_part(part, shape)
        except (RuntimeError, TypeError, OverflowError) as e:
            if not isinstance(e, OverflowError) and "overflow" not in str(e).lower():
                raise
            raise SpecError(
                part_path(spec, part.name),
                f"needs a tensor of 2**63 elements or more (input {list(shape[1:])}): "
                "too large to count or build",
            ) from None
        yield part, shape, counts
        shape = counts.out_shape


def part_inputs(spec: ArchSpec) -> list[tuple[NetworkPart, tuple[int, ...]]]:
    """Each part of ``spec`` (:func:`network_parts`) with the shape of its input at batch 1.

    Shapes come from the memoised meta-device counting walk, so they cost no compute and agree
    with what :func:`count` counted (learned adaptor sizes included).
    """
    return [(part, shape) for part, shape, _ in walk(spec)]


@dataclass(frozen=True)
class PartCost:
    """One part of a network (:func:`network_parts`) with its batch-1 shapes and deploy costs."""

    name: str  # "stem", "adaptors.3", "layers.3", "final" or "head"
    in_shape: tuple[int, ...]  # (C, H, W) of its input, or (features,) for the head
    out_shape: tuple[int, ...]
    macs: int  # deploy form, per image
    params: int  # deploy form


def breakdown(spec: ArchSpec) -> list[PartCost]:
    """Each part of ``spec`` in forward order with its shapes and deploy MACs and params: what
    each layer costs and what it outputs (their sums are :func:`count`'s deploy counts).

    >>> from blocknas import presets
    >>> parts = breakdown(presets.get("resnet20_cifar", num_classes=10, input=(3, 32, 32)))
    >>> parts[0].name, parts[0].out_shape, parts[-1].name, parts[-1].out_shape
    ('stem', (16, 32, 32), 'head', (10,))
    """
    return [
        PartCost(part.name, shape[1:], c.out_shape[1:], c.deploy.macs, c.deploy.params)
        for part, shape, c in walk(spec)
    ]


def count(spec: ArchSpec) -> tuple[Counts, Counts]:
    """(training form, deploy form) counts of ``spec``: the sums over its parts.

    Each distinct part (same fields, same input shape) is built and counted once per process, so
    repeated blocks within a spec, and the blocks specs of one search share, cost nothing more.
    """
    train = deploy = Counts(0, 0)
    for _, _, c in walk(spec):
        train = Counts(train.params + c.train.params, train.macs + c.train.macs)
        deploy = Counts(deploy.params + c.deploy.params, deploy.macs + c.deploy.macs)
    return train, deploy
