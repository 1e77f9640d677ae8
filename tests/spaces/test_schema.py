"""Search-space schema: validation, stable names, define-by-run fields, deterministic repair."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from blocknas import SpecError
from blocknas.spaces.schema import RandomTrial, SearchSpace
from tests.spaces.helpers import Scripted

ROOT = Path(__file__).resolve().parents[2]


def space(**layer: Any) -> SearchSpace:
    return SearchSpace.from_dict(
        {
            "input": [3, 16, 16],
            "num_classes": 10,
            "stem": {"out": [16, 32]},
            "stages": [
                {"depth": [1, 2], "out": [16, 32]},
                {"depth": [1, 2], "out": [32, 64], "stride": 2, "adaptor": [False, True]},
            ],
            "layer": layer,
            "adaptors": {"max": 1},
        }
    )


def test_parameter_names_are_stable_and_define_by_run() -> None:
    sp = space(block=["basic", "inverted"], op=["conv", "spconv"], alpha=[0.25, 0.5])
    base = {"s0.depth": 1, "s1.depth": 1, "s0.out": 32, "s1.out": 64, "stem.out": 32}
    conv = Scripted({**base, "s0.l0.block": "basic", "s0.l0.op": "conv"})
    spconv = Scripted({**base, "s0.l0.block": "basic", "s0.l0.op": "spconv"})
    sp.sample(conv)
    sp.sample(spconv)
    assert "s0.l0.alpha" not in conv.params  # conv does not read α: not sampled
    assert "s0.l0.alpha" in spconv.params
    assert set(spconv.params) - set(conv.params) == {"s0.l0.alpha"} | (
        {"s1.l0.alpha"} if spconv.params["s1.l0.op"] == "spconv" else set()
    ) - ({"s1.l0.alpha"} if conv.params["s1.l0.op"] == "spconv" else set())
    # Single-valued choices (kernel 3 here) never reach the study.
    assert not any(name.endswith(".kernel") for name in conv.params)


def test_forbidden_op_is_repaired_to_first_allowed_choice() -> None:
    sp = space(block=["inverted"], op=["spconv", "dwsep", "acb", "conv"])
    spec = sp.sample(Scripted({"s0.l0.op": "spconv", "s0.depth": 1, "s1.depth": 1}))
    assert spec.layers[0].op == "acb"


def test_groups_and_alpha_are_repaired_deterministically() -> None:
    sp = space(block=["bottleneck"], op=["spconv"], groups=[1, 2, 8], alpha=[0.25, 0.5])
    # out 16 → mid 4; α ¼ → 1 representative channel: groups 8 and 2 cannot divide it.
    answers = {"stem.out": 16, "s0.depth": 1, "s0.out": 16, "s0.l0.groups": 8, "s0.l0.alpha": 0.25}
    a = sp.sample(Scripted(answers, seed=1))
    b = sp.sample(Scripted(answers, seed=1))
    assert a == b
    assert (a.layers[0].groups, a.layers[0].alpha) == (1, 0.25)


def test_shuffle_width_change_at_stride_one_repairs_the_block() -> None:
    sp = space(block=["shuffle", "basic"])
    spec = sp.sample(
        Scripted({"stem.out": 16, "s0.out": 32, "s0.depth": 1, "s0.l0.block": "shuffle"})
    )
    assert spec.layers[0].block == "basic"


def test_adaptor_count_never_exceeds_max() -> None:
    sp = SearchSpace.from_dict(
        {
            "input": [3, 32, 32],
            "num_classes": 10,
            "stem": {"out": 16},
            "stages": [{"depth": 1, "out": 16, "adaptor": [True]} for _ in range(4)],
            "adaptors": {"max": 2},
        }
    )
    spec = sp.sample(Scripted())
    assert [i for i, layer in enumerate(spec.layers) if layer.adaptor] == [0, 1]


def test_adaptor_positions_are_chosen_per_layer() -> None:
    sp = SearchSpace.from_dict(
        {
            "input": [3, 32, 32],
            "num_classes": 10,
            "stem": {"out": 16},
            "layer": {"adaptor": [False, True]},
            "stages": [
                {"depth": 3, "out": 16},
                {"depth": 2, "out": 32, "stride": 2, "adaptor": False},  # no positions here
            ],
            "adaptors": {"max": 2},
        }
    )
    seen: set[tuple[int, ...]] = set()
    for seed in range(40):
        trial = RandomTrial(seed)
        spec = sp.sample(trial)
        positions = tuple(i for i, layer in enumerate(spec.layers) if layer.adaptor)
        assert len(positions) <= 2 and all(i < 3 for i in positions)
        seen.add(positions)
        # every position of stage 0 is asked, in every trial; stage 1 offers none
        assert {f"s0.l{j}.adaptor" for j in range(3)} <= set(trial.params)
        assert not any(name.startswith("s1.") and "adaptor" in name for name in trial.params)
    assert {(1,), (2,), (0, 1)} <= seen  # the middle and last layer of a stage are positions too


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"layer": {"block": ["resnet"]}}, r"^layer\.block: unknown block 'resnet'; valid: "),
        ({"stages": [{"depth": 1, "out": 8, "op": ["conv9"]}]}, r"^stages\[0\]\.op: unknown op"),
        ({"stages": []}, r"^stages: \[\] must have at least 1 item"),
        ({"stages": [{"depth": 1, "out": 8, "stride": 3}]}, r"^stages\[0\]\.stride: 3 is not 1 or"),
        ({"layer": {"colour": ["red"]}}, r"^layer\.colour: unknown field; known: block, op, "),
    ],
)
def test_bad_space_is_a_one_line_spec_error(data: dict[str, Any], message: str) -> None:
    base = {"input": [3, 8, 8], "num_classes": 2, "stages": [{"depth": 1, "out": 8}]}
    with pytest.raises(SpecError, match=message):
        SearchSpace.from_dict({**base, **data})


def test_example_configs_load_their_space_section() -> None:
    for name in ("digits", "cifar10"):
        sp = SearchSpace.from_file(ROOT / "examples" / f"{name}.yaml")
        assert sp.num_classes == 10
