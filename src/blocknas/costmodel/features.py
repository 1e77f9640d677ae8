"""What a latency predictor knows of a network part before it is ever timed.

A part (:func:`~blocknas.spaces.builder.network_parts`: stem, adaptor, block, final BN-act,
head) is described by what its **deploy form** runs, found by one forward pass on the meta device
(no compute): each *unit*, a module with weights of its own or no children, counted by class and,
for weighted units, MACs and weights by their shape's kind (``dense``, ``pointwise``, ``grouped``,
``depthwise``), with the elements the units read and write; the torch functions the forward
calls (adds, concatenations, splits, attention arithmetic that no module shows), with the
elements they return; and the part's input shape. :func:`spec_features` adds the part's place
in the network.

Only what runs is described, not the part's name or fields: a stem, an adaptor or a block of an
op never profiled is then predicted from parts that run the same kinds of units (on held-out
specs this predicted better than adding the key's fields). Names are generic (a class name is a
feature's name, never a branch), so a new op's units are described without code here. Features
are memoised per (part key, input shape) like the counts.
"""

from __future__ import annotations

import json
import math
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from blocknas.costmodel.counting import count, part_inputs
from blocknas.spaces import ArchSpec, to_deploy
from blocknas.spaces.builder import NetworkPart

Features = dict[str, float]

_MEMO: OrderedDict[tuple[str, tuple[int, ...]], Features] = OrderedDict()
_MEMO_MAX = 20_000


def entry(part: NetworkPart, shape: tuple[int, ...]) -> str:
    """A part's identity for profiling: its key and its input shape without the batch (JSON)."""
    return f'{{"in": {json.dumps(list(shape[1:]))}, "part": {part.key}}}'


def spec_parts(spec: ArchSpec, batch: int = 1) -> list[tuple[NetworkPart, tuple[int, ...]]]:
    """The spec's parts in forward order with their input shapes at ``batch``."""
    return [(part, (batch, *shape[1:])) for part, shape in part_inputs(spec)]


def _units(module: nn.Module) -> list[nn.Module]:
    """The modules that do the work: those with weights of their own, and the leaves."""
    return [
        m
        for m in module.modules()
        if next(m.children(), None) is None or next(m.parameters(recurse=False), None) is not None
    ]


def _weight_kind(weight: torch.Tensor, groups: int) -> str:
    kernel = math.prod(weight.shape[2:]) if weight.dim() > 2 else 1
    if groups > 1 and weight.shape[1] == 1:
        return "depthwise"
    if groups > 1:
        return "grouped"
    return "pointwise" if kernel == 1 else "dense"


class _Calls(TorchFunctionMode):
    """Counts every torch function a forward calls, by name, with the elements it returns: the
    adds, concatenations, splits, shuffles and attention arithmetic that no module shows."""

    def __init__(self, out: Features) -> None:
        super().__init__()
        self.out = out

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        result = func(*args, **(kwargs or {}))
        name = getattr(func, "__name__", "call").strip("_")
        self.out[f"calls:{name}"] = self.out.get(f"calls:{name}", 0.0) + 1
        if isinstance(result, torch.Tensor):
            self.out[f"elems:{name}"] = self.out.get(f"elems:{name}", 0.0) + result.numel()
        self.out["calls"] = self.out.get("calls", 0.0) + 1
        return result


def _unit_features(module: nn.Module, x: torch.Tensor) -> Features:
    """Counts, MACs and memory traffic of ``module``'s units over one forward of ``x``, and the
    torch functions the forward calls."""
    out: Features = {}

    def add(name: str, value: float) -> None:
        out[name] = out.get(name, 0.0) + value

    def hook(unit: nn.Module, inputs: tuple[Any, ...], result: Any) -> None:
        y = (
            result
            if isinstance(result, torch.Tensor)
            else next((r for r in result if isinstance(r, torch.Tensor)), None)
        )
        if y is None:
            return
        add("units", 1)
        add(f"n:{type(unit).__name__}", 1)
        add("elems_out", y.numel())
        add("elems_in", sum(i.numel() for i in inputs if isinstance(i, torch.Tensor)))
        weight = getattr(unit, "weight", None)
        if isinstance(weight, torch.Tensor) and weight.dim() >= 2:
            kind = _weight_kind(weight, int(getattr(unit, "groups", 1)))
            add(f"macs:{kind}", y.numel() * (weight.numel() // weight.shape[0]))
            add(f"weights:{kind}", weight.numel())
            add(f"n:{kind}", 1)

    hooks = [u.register_forward_hook(hook) for u in _units(module)]
    try:
        with torch.no_grad(), _Calls(out):
            module(x)
    finally:
        for h in hooks:
            h.remove()
    return out


def _shape_features(shape: tuple[int, ...]) -> Features:
    """The input shape, batch first."""
    return {f"in:{i}": float(size) for i, size in enumerate(shape)}


def part_features(part: NetworkPart, shape: tuple[int, ...]) -> Features:
    """All features of one part at its input ``shape`` (batch first); counts as log1p, so that
    trees split on ratios. Memoised: a part's features depend on nothing else."""
    memo_key = (part.key, shape)
    cached = _MEMO.get(memo_key)
    if cached is not None:
        return cached
    with torch.device("meta"):
        module = part.make().eval()
    x = torch.empty(shape, device="meta")
    module(x)  # a Shape Adaptor fixes its size here, as it would in the network
    with torch.device("meta"):
        deployed = to_deploy(module, inplace=True, reuse_sizes=True)
    units = _unit_features(deployed, x)
    features = _shape_features(shape) | {k: math.log1p(v) for k, v in units.items()}
    _MEMO[memo_key] = features
    if len(_MEMO) > _MEMO_MAX:
        _MEMO.popitem(last=False)
    return features


def spec_features(
    spec: ArchSpec,
    batch: int = 1,
    parts_in: list[tuple[NetworkPart, tuple[int, ...]]] | None = None,
) -> list[Features]:
    """Each part's features with its place in the network: its position, and the whole
    network's parameters, MACs and activations. A part's time depends a little on what runs
    around it (whose weights and activations share the cache); on held-out specs these raised
    the share predicted within ±10 %. ``parts_in``: the spec's :func:`spec_parts` at ``batch``
    when the caller has them (a prediction then walks the spec once less)."""
    walked = spec_parts(spec, batch) if parts_in is None else parts_in
    parts = [part_features(p, s) for p, s in walked]
    _, deploy = count(spec)
    around = {
        "net:params": math.log1p(deploy.params),
        "net:macs": math.log1p(deploy.macs),
        "net:elems": math.log1p(sum(math.expm1(f.get("elems_out", 0.0)) for f in parts)),
        "net:parts": float(len(parts)),
    }
    return [f | around | {"pos": i / len(parts)} for i, f in enumerate(parts)]


def matrix(index: dict[str, int], rows: Sequence[Features]) -> np.ndarray:
    """Rows of features as a matrix over ``index``'s names (a name it lacks is left out)."""
    x = np.zeros((len(rows), len(index)))
    for i, row in enumerate(rows):
        for name, value in row.items():
            j = index.get(name)
            if j is not None:
                x[i, j] = value
    return x


def clear_cache() -> None:
    """Forget the memoised features (benchmarks measure a cold start with it)."""
    _MEMO.clear()
