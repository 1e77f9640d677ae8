"""Whether an architecture fits in memory, judged from the cost model's counts before it is built.

A spec is refused before anything is built when its float32 parameters plus the activations of
one image (the input and every part's output at batch 1) exceed the memory limit: 16 GiB by
default, or ``BLOCKNAS_MAX_MEMORY_GB`` (GiB) from the environment, read at each check. The
estimate is a floor of what building and one forward pass need (training adds gradients,
optimizer state and a whole batch of activations), so the limit stops the absurd (a layer 10**9
channels wide, which torch would try to allocate as hundreds of GB) and never a network that
trains on a real machine. Counting happens on the meta device: nothing is allocated, whatever
the size, and the counts are the ones ``cost()`` memoises.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any, NoReturn

from blocknas.costmodel.counting import part_path, walk
from blocknas.spaces import ArchSpec, SpecError
from blocknas.spaces.schema import SearchSpace

ENV = "BLOCKNAS_MAX_MEMORY_GB"
DEFAULT_GB = 16.0
BYTES = 4  # float32


def memory_limit() -> int:
    """The limit in bytes: ``BLOCKNAS_MAX_MEMORY_GB`` GiB if set (and not empty), else 16 GiB."""
    text = os.environ.get(ENV, "").strip()
    if not text:
        return int(DEFAULT_GB * 2**30)
    try:
        gb = float(text)
    except ValueError:
        gb = math.nan
    if not (math.isfinite(gb) and gb > 0):
        raise ValueError(f"{ENV}={text!r} must be a number of GiB > 0, e.g. {DEFAULT_GB:g}")
    return int(gb * 2**30)


def show_bytes(n: float) -> str:
    """``n`` bytes, three significant digits in the largest binary unit below it: ``33.5 GiB``.

    >>> show_bytes(512), show_bytes(3 * 2**30), show_bytes(2**80)
    ('512 B', '3 GiB', '1.05e+06 EiB')
    """
    units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"]
    i = 0
    while n >= 1024 and i < len(units) - 1:
        n, i = n / 1024, i + 1
    return f"{n:.3g} {units[i]}"


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes of float32 parameters and batch-1 activations, in all and by spec path."""

    total: int
    parts: dict[str, int]


def check_memory(spec: ArchSpec, limit: int | None = None) -> MemoryEstimate:
    """The estimate of ``spec``; a one-line :class:`SpecError` naming the largest part (its
    path, its widths, the estimate and the limit) when it is over ``limit`` bytes (default
    :func:`memory_limit`). Stops counting at the part that crosses the limit.

    >>> from blocknas import presets
    >>> spec = presets.get("resnet18")
    >>> check_memory(spec).total < 2**30
    True
    >>> check_memory(spec, limit=2**25)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    blocknas.spaces.errors.SpecError: layers[7]: out=512 needs an estimated 18.1 MiB ...
    """
    limit = memory_limit() if limit is None else limit
    parts = {"input": math.prod(spec.input) * BYTES}
    total = parts["input"]
    try:
        for part, _, counts in walk(spec) if total <= limit else ():
            size = (counts.train.params + math.prod(counts.out_shape)) * BYTES
            path = part_path(spec, part.name)
            parts[path] = parts.get(path, 0) + size
            total += size
            if total > limit:
                break
    except SpecError as e:  # a tensor beyond 2**63 elements: counting itself overflowed
        _refuse(spec, e.path, e.message, limit)
    if total > limit:
        path = max(parts, key=lambda p: parts[p])
        need = f"needs an estimated {show_bytes(parts[path])} (float32 parameters and "
        _refuse(spec, path, f"{need}activations at batch 1; {show_bytes(total)} up to here)", limit)
    return MemoryEstimate(total, parts)


def _refuse(spec: ArchSpec, path: str, need: str, limit: int) -> NoReturn:
    raise SpecError(
        path,
        f"{_widths(spec, path)}{need}, over the memory limit of {show_bytes(limit)} "
        f"(set {ENV} to change it)",
    )


def _widths(spec: ArchSpec, path: str) -> str:
    """The sizes that make the part at ``path`` large, as a message prefix: ``out=512 ``."""
    fields: dict[str, Any] = {}
    if path == "input":
        fields = {"input": list(spec.input)}
    elif path == "stem":
        fields = {"out": spec.stem.out, "kernel": spec.stem.kernel}
    elif path == "head":
        fields = {"conv": spec.head.conv, "num_classes": spec.num_classes}
    elif path.startswith("layers[") and not path.endswith(".adaptor"):
        layer = spec.layers[_index(path)]
        fields = {"out": layer.out, "mid": layer.mid, "kernel": layer.kernel}
    shown = [f"{k}={v}" for k, v in fields.items() if v is not None and (k, v) != ("kernel", 3)]
    return " ".join(shown) + " " if shown else ""


def _index(path: str) -> int:
    """The layer of a ``layers[i]…`` path."""
    return int(path[len("layers[") : path.index("]")])


class _Widest:
    """A trial that picks the largest choice of every size (the fewest groups, no adaptor) and
    the first choice of everything else."""

    def suggest_categorical(self, name: str, choices: Any) -> Any:
        choices = list(choices)
        numbers = [c for c in choices if isinstance(c, int | float) and not isinstance(c, bool)]
        if numbers:
            return min(numbers) if name.endswith(".groups") else max(numbers)
        return False if False in choices else choices[0]


def check_space_memory(space: SearchSpace, limit: int | None = None) -> MemoryEstimate:
    """:func:`check_memory` of the space's widest architecture (largest width, depth, kernel,
    expansion, head of every choice; the first block and op), so that a space whose choices
    reach absurd sizes is refused when it is read, not when a trial builds such a candidate.

    An estimate of the space's largest candidate, not a bound: another block can be larger, and
    a candidate over the limit is still refused before it is built.
    """
    spec = space.sample(_Widest())
    try:
        return check_memory(spec, limit)
    except SpecError as e:
        raise SpecError(_space_path(space, spec, e.path), f"its widest architecture: {e}") from None


def _space_path(space: SearchSpace, spec: ArchSpec, path: str) -> str:
    """The space field behind a path of its widest spec: ``layers[4]`` → ``stages[1]``."""
    if not path.startswith("layers["):
        return path  # input, stem and head are named alike in a space
    index = _index(path)
    for s, stage in enumerate(space.stages):
        index -= max(stage.depth)
        if index < 0:
            return f"stages[{s}]"
    return f"stages[{len(space.stages) - 1}]"
