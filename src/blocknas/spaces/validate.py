"""Semantic validation of an ArchSpec: walks the channels through stem, layers and head and lets
each registered stem, block and op check what it receives; and of a search space's choices."""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING

from blocknas.spaces.blocks import BLOCKS
from blocknas.spaces.errors import SpecError
from blocknas.spaces.ops import OPS
from blocknas.spaces.stems import STEMS

if TYPE_CHECKING:
    from blocknas.spaces.schema import SearchSpace
    from blocknas.spaces.spec import ArchSpec, StemSpec


def check_spec(spec: ArchSpec) -> None:
    """Raise the first :class:`SpecError` found (path from the spec's root)."""
    if min(spec.input) < 1:
        raise SpecError("input", f"input={list(spec.input)} must be C, H, W, each ≥ 1")
    stem_cls = STEMS.get(spec.stem.type, path="stem.type")
    try:
        stem_cls.check(spec.input[0], spec.stem)
    except SpecError as e:
        raise e.at("stem") from None
    ch = spec.stem.out
    for i, layer in enumerate(spec.layers):
        where = f"layers[{i}]"
        block_cls = BLOCKS.get(layer.block, path=f"{where}.block")
        OPS.get(layer.op, path=f"{where}.op")
        try:
            block_cls.check(ch, layer)
        except SpecError as e:
            raise e.at(where) from None
        ch = layer.out
    _check_adaptors(spec)


def _check_adaptors(spec: ArchSpec) -> None:
    a = spec.adaptors
    if a.r1 > a.r2:
        raise SpecError("adaptors.r1", f"r1={a.r1} must be ≤ r2={a.r2}")
    positions = {i for i, layer in enumerate(spec.layers) if layer.adaptor}
    seen: set[int] = set()
    for j, learned in enumerate(a.learned):
        where = f"adaptors.learned[{j}]"
        if learned.layer not in positions:
            allowed = sorted(positions) or "none"
            raise SpecError(
                f"{where}.layer",
                f"layer={learned.layer} has no adaptor; layers with adaptors: {allowed}",
            )
        if learned.layer in seen:
            raise SpecError(f"{where}.layer", f"layer={learned.layer} is listed twice")
        seen.add(learned.layer)
        if min(learned.size) < 1:
            raise SpecError(f"{where}.size", f"size={list(learned.size)} must be ≥ 1 each")


def check_space(space: SearchSpace, stem_spec: type[StemSpec]) -> None:
    """Every block, op and stem a space names exists, and every stem its choices make can be
    built (a few combinations of ``stem_spec``), so that sampling never meets a choice that
    cannot work. Raise the first :class:`SpecError` found (path from the space's root)."""
    stem = space.stem
    fixed = {"stride": stem.stride, "pool": stem.pool, "act": stem.act}
    for i, name in enumerate(stem.type):
        cls = STEMS.get(name, path=f"stem.type[{i}]")
        for out, kernel in itertools.product(stem.out, stem.kernel):
            try:
                cls.check(space.input[0], stem_spec(type=name, out=out, kernel=kernel, **fixed))
            except SpecError as e:
                raise e.at("stem") from None
    stages = [(f"stages[{i}]", s) for i, s in enumerate(space.stages)]
    for where, choices in [("layer", space.layer), *stages]:
        for b in choices.block or []:
            BLOCKS.get(b, path=f"{where}.block")
        for o in choices.op or []:
            OPS.get(o, path=f"{where}.op")
