"""Fuzzed search spaces: every mutation of a valid space is accepted or refused in one line
naming the field; an accepted one samples specs, and its widest architecture is costed (or
refused as too large) without building anything."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from hypothesis import given

from blocknas.costmodel.memory import check_space_memory
from blocknas.spaces.schema import SearchSpace
from tests.fuzz import FUZZ, accepted_or_refused, one_of

ROOT = Path(__file__).resolve().parents[2]
BASES: dict[str, Any] = {
    name: yaml.safe_load((ROOT / "examples" / f"{name}.yaml").read_text())["space"]
    for name in ("digits", "cifar10")
}
BASES["small"] = {  # scalars where the examples have lists, every section given
    "input": [3, 16, 16],
    "num_classes": 10,
    "stem": {"type": "deep", "out": 16, "kernel": 3, "stride": 2, "pool": "max", "act": "relu6"},
    "layer": {"block": "inverted", "op": "dwsep", "expansion": 4, "act": "hswish"},
    "stages": [{"depth": 2, "out": 24, "stride": 2, "groups": [1, 2], "adaptor": True}],
    "head": {"conv": 64, "dropout": 0.1, "pool": "max"},
    "adaptors": {"max": 1, "r1": 0.5, "r2": 1.0},
}
FIELDS = set(SearchSpace.model_fields)


@FUZZ
@given(one_of(BASES))
def test_a_mutated_space_is_accepted_or_refused_in_one_line(case: tuple[str, Any]) -> None:
    _, data = case
    fields = FIELDS | {str(k) for k in data}
    space = accepted_or_refused(lambda: SearchSpace.from_dict(data), fields)
    if space is not None:
        for seed in range(2):
            spec = space.sample_random(seed)
            assert spec.input == space.input
        accepted_or_refused(lambda: check_space_memory(space), fields)
