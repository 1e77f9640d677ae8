"""Every preset builds and runs; names, inputs and classes are honoured; variants relate as the
papers say."""

from __future__ import annotations

import pytest
import torch

from blocknas import SpecError, build, presets, to_deploy
from blocknas.cost import cost


@pytest.mark.parametrize("name", presets.names())
def test_every_preset_builds_and_runs(name: str) -> None:
    spec = presets.get(name)
    with torch.device("meta"):
        out = build(spec).eval()(torch.empty(1, *spec.input))
    assert out.shape == (1, spec.num_classes)
    expected = 10 if name.endswith(("_cifar", "_cifar_acb")) else 1000
    assert spec.num_classes == expected


def test_input_and_classes_are_honoured() -> None:
    spec = presets.get("mobilenet_v2", num_classes=7, input=(1, 64, 48))
    assert spec.num_classes == 7 and spec.input == (1, 64, 48)
    out = build(spec).eval()(torch.randn(1, 1, 64, 48))
    assert out.shape == (1, 7)


def test_unknown_preset_lists_names() -> None:
    with pytest.raises(SpecError, match=r"unknown preset 'resnet9000'; valid: mobilenet_v1, "):
        presets.get("resnet9000")


def test_acb_variant_deploys_to_its_plain_twin() -> None:
    torch.manual_seed(0)
    acb = to_deploy(build(presets.get("resnet20_cifar_acb")))
    plain = to_deploy(build(presets.get("resnet20_cifar")))
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(acb) == count(plain)
    assert cost(presets.get("resnet18_acb")).deploy_macs == cost(presets.get("resnet18")).macs


def test_spconv_variant_is_cheaper_by_the_papers_ratio() -> None:
    base, sp = cost(presets.get("resnet50")), cost(presets.get("resnet50_spconv"))
    # SPConv paper, ResNet-50 with α = ½: about 18.3 M parameters and 2.9 G MACs.
    assert sp.params == pytest.approx(18.34e6, rel=0.01) and sp.params < base.params
    assert sp.macs < base.macs
