"""Blocks derive their own layer fields from space choices (``Block.derived_fields``)."""

from __future__ import annotations

from typing import Any

from blocknas.spaces import BLOCKS
from blocknas.spaces.schema import SearchSpace
from tests.spaces.helpers import Scripted


def space(block: list[str]) -> SearchSpace:
    return SearchSpace.from_dict(
        {
            "input": [3, 16, 16],
            "num_classes": 10,
            "stem": {"out": 16},
            "stages": [{"depth": 2, "out": 24, "stride": 2}],
            "layer": {"block": block, "expansion": [3, 6]},
        }
    )


def test_blocks_without_a_hook_derive_nothing() -> None:
    asked: list[str] = []

    def choose(field: str) -> Any:
        asked.append(field)
        return 1

    for name in set(BLOCKS.names()) - {"inverted"}:
        assert BLOCKS.get(name).derived_fields(16, choose) == {}
    assert asked == []
    trial = Scripted()
    spec = space(["basic"]).sample(trial)
    assert not any(name.endswith(".expansion") for name in trial.params)
    assert all(layer.mid is None for layer in spec.layers)


def test_inverted_hook_gives_mid_from_its_expansion() -> None:
    asked: list[str] = []

    def choose(field: str) -> Any:
        asked.append(field)
        return 4

    assert BLOCKS.get("inverted").derived_fields(24, choose) == {"mid": 96}
    assert asked == ["expansion"]
    trial = Scripted({"s0.l0.expansion": 3, "s0.l1.expansion": 6})
    spec = space(["inverted"]).sample(trial)
    assert [layer.mid for layer in spec.layers] == [16 * 3, 24 * 6]  # in · expansion
    assert {"s0.l0.expansion", "s0.l1.expansion"} <= set(trial.params)
