"""Costing part by part (memoised) equals counting the whole network in one pass."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import torch

from blocknas import ArchSpec, build, presets, to_deploy
from blocknas.costmodel import cost, counting
from blocknas.costmodel.counting import Counts, clear_cache, count_module
from blocknas.spaces import BLOCKS, OPS, LearnedAdaptor
from blocknas.spaces.builder import network_parts
from blocknas.spaces.schema import SearchSpace
from blocknas.spaces.selftest import combination_layer, combination_spec, is_forbidden

ROOT = Path(__file__).resolve().parents[2]


def whole(spec: ArchSpec) -> tuple[Counts, Counts]:
    """Reference: the whole network, each form in one FlopCounterMode pass."""
    with torch.device("meta"):
        net = build(spec).eval()
    train = count_module(net, spec.input)
    with torch.device("meta"):
        deployed = to_deploy(net, inplace=True, reuse_sizes=True)
    return train, count_module(deployed, spec.input)


def assert_same(spec: ArchSpec) -> None:
    clear_cache()
    c = cost(spec)
    train, deploy = whole(spec)
    assert (c.train_params, c.train_macs) == (train.params, train.macs)
    assert (c.params, c.macs) == (deploy.params, deploy.macs)
    # the per-part breakdown (the dashboard's layer table) adds up and chains its shapes
    parts = counting.breakdown(spec)
    assert [p.name for p in parts] == [p.name for p in network_parts(spec)]
    assert sum(p.macs for p in parts) == deploy.macs
    assert sum(p.params for p in parts) == deploy.params
    assert parts[0].in_shape == tuple(spec.input) and parts[-1].out_shape == (spec.num_classes,)
    assert all(a.out_shape == b.in_shape for a, b in itertools.pairwise(parts))


@pytest.mark.parametrize("name", presets.names())
def test_presets(name: str) -> None:
    input, classes = presets.intended(name)
    assert_same(presets.get(name, input=input, num_classes=classes))


COMBOS = [(b, o) for b in BLOCKS.names() for o in OPS.names() if not is_forbidden(b, o)]


@pytest.mark.parametrize(("block", "op"), COMBOS)
def test_every_block_and_op_with_an_adaptor(block: str, op: str) -> None:
    layer = combination_layer(block, op, width=32, stride=2, rich=True)
    assert_same(combination_spec(layer, size=12, width=32))


@pytest.mark.parametrize("seed", range(20))
def test_sampled_cifar_specs(seed: int) -> None:
    space = SearchSpace.from_file(ROOT / "examples" / "cifar10.yaml")
    assert_same(space.sample_random(seed))


def test_learned_adaptor_sigma_is_part_of_the_key() -> None:
    spec = presets.get("resnet20_cifar", input=(3, 32, 32), num_classes=10)
    data = spec.to_dict()
    data["layers"][3]["adaptor"] = True
    plain = ArchSpec.from_dict(data)
    large = plain.with_learned([LearnedAdaptor(layer=3, sigma=0.9, size=(30, 30))])
    assert_same(plain)
    assert_same(large)
    assert cost(large).macs > cost(plain).macs  # 30×30 after the adaptor, not 16×16


def test_repeated_parts_are_counted_once() -> None:
    spec = presets.get("resnet20_cifar", input=(3, 32, 32), num_classes=10)
    clear_cache()
    first = cost(spec)
    distinct = len(counting._PARTS)
    # stem, head, and per stage the first block and one repeated block (stages 2 and 3 begin
    # with a stride-2 block), so 7 distinct parts among 11.
    assert len(network_parts(spec)) == 11 and distinct == 7
    assert cost(spec) == first and len(counting._PARTS) == distinct
