"""Warm start: a spec is translated back into the parameters the space samples it from."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from blocknas.spaces import ArchSpec, presets
from blocknas.spaces.errors import SpecError
from blocknas.spaces.schema import SearchSpace, sample
from blocknas.spaces.seeds import params_for
from blocknas.spaces.spec import read_yaml

ROOT = Path(__file__).resolve().parents[2]
SPACES = [ROOT / "examples" / "digits.yaml", ROOT / "examples" / "cifar10.yaml"]
SPACES.append(ROOT / "bench" / "spaces" / "mobile.yaml")


class Fixed:
    """A trial that answers from a parameter dict (what an enqueued Optuna trial does)."""

    def __init__(self, params: dict[str, Any]) -> None:
        self.params, self.asked = params, set()

    def suggest_categorical(self, name: str, choices: Any) -> Any:
        self.asked.add(name)
        return self.params[name]


@pytest.mark.parametrize("path", SPACES, ids=lambda p: p.stem)
def test_every_sampled_spec_comes_back_from_its_parameters(path: Path) -> None:
    space = SearchSpace.from_dict(read_yaml(path)["space"])
    for seed in range(60):
        spec = space.sample_random(seed)
        params = params_for(space, spec)
        trial = Fixed(params)
        assert sample(space, trial) == spec
        assert trial.asked == set(params)  # exactly the space's own parameters, no extras


def test_a_preset_that_fits_the_space_is_a_seed() -> None:
    space = SearchSpace.from_dict(
        {
            "input": [3, 32, 32],
            "num_classes": 10,
            "stem": {"out": 16},
            "layer": {"block": ["basic", "inverted"], "op": ["conv", "acb"]},
            "stages": [
                {"depth": [1, 2, 3], "out": [16, 32]},
                {"depth": [2, 3], "out": [32, 64], "stride": 2},
                {"depth": 3, "out": [64, 128], "stride": 2},
            ],
        }
    )
    spec = presets.get("resnet20_cifar_acb", input=(3, 32, 32), num_classes=10)
    params = params_for(space, spec)
    assert sample(space, Fixed(params)) == spec
    assert params["s0.depth"] == 3 and params["s1.l0.op"] == "acb"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"stem": {"out": 24}}, r"stem\.out=24 is not among its choices \[8, 16\]"),
        ({"layers": 0}, r"layers: 2 of them, the space gives 1"),
        ({"num_classes": 7}, r"num_classes=7 but the space has 10"),
        ({"op": "sk"}, r"s0\.l0\.op='sk' is not among its choices \['conv', 'dwsep'\]"),
    ],
)
def test_a_spec_outside_the_space_is_refused_naming_the_field(
    change: dict[str, Any], message: str
) -> None:
    space = SearchSpace.from_dict(
        {
            "input": [1, 8, 8],
            "num_classes": 10,
            "stem": {"out": [8, 16]},
            "layer": {"block": "basic", "op": ["conv", "dwsep"]},
            "stages": [{"depth": 1, "out": [8, 16]}],
        }
    )
    spec = space.sample_random(0).to_dict()
    if "layers" in change:
        spec["layers"] = spec["layers"] * 2
    elif "op" in change:
        spec["layers"][0]["op"] = change["op"]
    elif "stem" in change:
        spec["stem"] = {**spec["stem"], **change["stem"]}
    else:
        spec |= change

    with pytest.raises(SpecError, match=message):
        params_for(space, ArchSpec.from_dict(spec))
