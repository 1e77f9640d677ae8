"""Every preset builds and runs at the input it is meant for; `get` honours the caller's input and
classes; variants differ from their plain twin only where their paper says, and cost what it says.

Networks are built on the meta device (shapes only) except where values are compared.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
import torch
from torch import nn

from blocknas import SpecError, build, presets, to_deploy
from blocknas.spaces.builder import Network


def count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def shapes(model: nn.Module) -> list[tuple[int, ...]]:
    return sorted(tuple(p.shape) for p in model.parameters())


def meta_net(name: str, **kwargs: Any) -> Network:
    with torch.device("meta"):
        return build(presets.get(name, **kwargs)).eval()


@pytest.mark.parametrize("name", presets.names())
def test_every_preset_builds_and_runs_at_its_intended_input(name: str) -> None:
    input, num_classes = presets.intended(name)
    assert input == ((3, 32, 32) if "_cifar" in name else (3, 224, 224))
    assert num_classes == (10 if "_cifar" in name else 1000)
    spec = presets.get(name, num_classes=num_classes, input=input)
    assert spec.input == input and spec.num_classes == num_classes
    with torch.device("meta"):
        out = build(spec).eval()(torch.empty(1, *input))
    assert out.shape == (1, num_classes)


@pytest.mark.parametrize("name", presets.names())
def test_num_classes_and_input_are_honoured(name: str) -> None:
    spec = presets.get(name, num_classes=7, input=(1, 40, 56))
    assert spec.input == (1, 40, 56) and spec.num_classes == 7
    with torch.device("meta"):
        net = build(spec).eval()
        out = net(torch.empty(2, 1, 40, 56))
    assert out.shape == (2, 7)
    first_conv = next(m for m in net.modules() if isinstance(m, nn.Conv2d))
    assert first_conv.in_channels == 1


def test_defaults_are_the_contracts_even_for_cifar_presets() -> None:
    for name in ("resnet50", "resnet20_cifar"):
        spec = presets.get(name)
        assert spec.input == (3, 224, 224) and spec.num_classes == 1000


def test_a_preset_trains_on_cpu() -> None:
    torch.manual_seed(0)
    net = build(presets.get("resnet20_cifar", num_classes=3, input=(3, 16, 16)))
    out = net(torch.randn(2, 3, 16, 16))
    out.sum().backward()
    assert out.shape == (2, 3) and torch.isfinite(out).all()
    assert all(p.grad is not None for p in net.parameters())


def test_unknown_preset_lists_the_valid_names() -> None:
    valid = ", ".join(presets.names())
    with pytest.raises(SpecError, match=re.escape(f"unknown preset 'resnet9000'; valid: {valid}")):
        presets.get("resnet9000")
    with pytest.raises(SpecError, match="unknown preset 'nope'"):
        presets.intended("nope")
    assert "resnet50" in valid and "shufflenet_v2_x1_0" in valid


ALPHA, GROUPS = 0.5, 2  # the SPConv paper's setting
SPCONV: dict[str, Any] = {"op": "spconv", "alpha": ALPHA, "groups": GROUPS}
# (plain twin, variant, the layer fields the variant changes); stem and head are shared
VARIANTS = [
    ("resnet18", "resnet18_acb", {"op": "acb"}),
    ("resnet20_cifar", "resnet20_cifar_acb", {"op": "acb"}),
    ("resnet56_cifar", "resnet56_cifar_acb", {"op": "acb"}),
    ("vgg16_cifar", "vgg16_cifar_acb", {"op": "acb"}),
    ("resnet18", "resnet18_spconv", SPCONV),
    ("resnet50", "resnet50_spconv", SPCONV),
    ("resnet50", "se_resnet50", {"attention": "se"}),
    ("resnext50_32x4d", "sknet50", {"op": "sk"}),
    ("resnet50d", "resnest50d", {"op": "splat"}),
    ("shufflenet_v2", "shufflenet_v2_x1_0", {}),
]


@pytest.mark.parametrize(("twin", "variant", "change"), VARIANTS)
def test_variant_differs_from_its_twin_only_in_the_op(
    twin: str, variant: str, change: dict[str, Any]
) -> None:
    a, b = presets.get(twin), presets.get(variant)
    assert b.stem == a.stem and b.head == a.head
    assert b.layers == [layer.model_copy(update=change) for layer in a.layers]


def test_resnet50d_is_resnet50_with_tricks_c_and_d() -> None:
    r50, r50d = presets.get("resnet50"), presets.get("resnet50d")
    assert r50d.layers == [layer.model_copy(update={"shortcut": "d"}) for layer in r50.layers]
    assert (r50d.stem.type, r50d.stem.out, r50d.stem.stride, r50d.stem.pool) == (
        "deep",
        64,
        2,
        "max",
    )


# conv layers per block on the main path
CONVS = {"basic": 2, "bottleneck": 3, "plain": 1}


@pytest.mark.parametrize(
    ("name", "depth", "fc"),
    [
        ("resnet18", 18, 1),
        ("resnet34", 34, 1),
        ("resnet50", 50, 1),
        ("resnext50_32x4d", 50, 1),
        ("resnet20_cifar", 20, 1),
        ("resnet56_cifar", 56, 1),
        ("vgg16_cifar", 16, 3),  # VGG-16's 3 FC layers; the CIFAR preset keeps one classifier
    ],
)
def test_depth_in_the_name_counts_the_weighted_layers(name: str, depth: int, fc: int) -> None:
    spec = presets.get(name)
    assert 1 + sum(CONVS[layer.block] for layer in spec.layers) == depth - fc  # stem + blocks


@pytest.mark.parametrize(
    ("twin", "variant"), [(a, b) for a, b, change in VARIANTS if change == {"op": "acb"}]
)
def test_acb_variant_deploys_to_its_plain_twins_parameters(twin: str, variant: str) -> None:
    with torch.device("meta"):
        plain, acb = build(presets.get(twin)), build(presets.get(variant))
        assert count(acb) > count(plain)  # the k×1 and 1×k branches while training
        plain, acb = to_deploy(plain, inplace=True), to_deploy(acb, inplace=True)
    assert count(acb) == count(plain)
    assert shapes(acb) == shapes(plain)


def test_resnet20_cifar_acb_deploys_on_cpu_with_the_same_outputs() -> None:
    torch.manual_seed(0)
    cifar = {"num_classes": 10, "input": (3, 32, 32)}
    acb = build(presets.get("resnet20_cifar_acb", **cifar))
    plain = build(presets.get("resnet20_cifar", **cifar))
    for m in acb.modules():  # non-trivial BN statistics so the folding is exercised
        if isinstance(m, nn.BatchNorm2d):
            nn.init.uniform_(m.weight, 0.5, 1.5)
            nn.init.uniform_(m.bias, -0.2, 0.2)
            assert m.running_mean is not None and m.running_var is not None
            nn.init.uniform_(m.running_mean, -0.2, 0.2)
            nn.init.uniform_(m.running_var, 0.5, 1.5)
    deployed = to_deploy(acb)
    assert count(deployed) == count(to_deploy(plain)) < count(acb)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        expected, got = acb.eval()(x), deployed(x)
    assert torch.allclose(got, expected, rtol=1e-4, atol=1e-4 * expected.abs().max().item())


@pytest.mark.parametrize("twin", ["resnet18", "resnet50"])
def test_spconv_variant_saves_what_the_papers_formula_says(twin: str) -> None:
    plain, sp = meta_net(twin), meta_net(f"{twin}_spconv")
    assert count(sp) < count(plain)
    # Each 3×3 conv of a block (params 9·C_in·C_out, one BN) becomes an SPConv with
    # C_in·C_out·(1 + α·9/g) params, α = ½, g = 2, and one BN per branch.
    convs = [
        m for m in plain.layers.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3)
    ]
    assert convs
    saved = sum(
        c.in_channels * c.out_channels * (9 - 1 - ALPHA * 9 / GROUPS) - 2 * c.out_channels
        for c in convs
    )
    assert count(sp) == count(plain) - saved
