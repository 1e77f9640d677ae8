"""Shape Adaptor: sizes, initialisation, learned state in the spec, frozen deploy form."""

from __future__ import annotations

import math

import pytest
import torch

from blocknas import ArchSpec, build, to_deploy
from blocknas.spaces import FrozenShapeAdaptor, ShapeAdaptor
from blocknas.spaces.adaptor import initial_alpha


def test_paper_initialisation_for_cifar() -> None:
    alpha = initial_alpha(32, 4)
    s = 0.5 + 0.5 / (1 + math.exp(-alpha))
    assert s == pytest.approx(2**-0.5, abs=1e-4)
    assert 32 * s**4 == pytest.approx(8, rel=1e-3)


def test_sizes_compound_by_flooring() -> None:
    adaptors = [ShapeAdaptor(alpha_init=initial_alpha(32, 4)) for _ in range(4)]
    x = torch.randn(1, 3, 32, 32)
    sizes = []
    for a in adaptors:
        x = a(x)
        sizes.append(x.shape[-1])
    assert sizes == [22, 15, 10, 7]


def test_output_size_never_below_one() -> None:
    a = ShapeAdaptor(alpha_init=-10.0)
    assert a(torch.randn(1, 2, 1, 1)).shape == (1, 2, 1, 1)


def test_sigma_mixes_the_two_branches() -> None:
    # With s = 1 the r2 branch is x itself; the r1 branch is the upsampled max-pool.
    a = ShapeAdaptor(r1=1.0, r2=1.0, alpha_init=0.0)
    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    low = torch.nn.functional.interpolate(
        torch.nn.functional.max_pool2d(x, 2), size=(4, 4), mode="bilinear", align_corners=True
    )
    assert torch.allclose(a(x), 0.5 * low + 0.5 * x)


SPEC = {
    "version": 1,
    "input": [3, 20, 20],
    "num_classes": 4,
    "stem": {"out": 8},
    "layers": [
        {"block": "basic", "out": 8, "adaptor": True},
        {"block": "bottleneck", "op": "acb", "out": 16, "adaptor": True},
        {"block": "basic", "out": 16},
    ],
}


def test_learned_adaptors_round_trip_through_the_spec() -> None:
    torch.manual_seed(0)
    spec = ArchSpec.from_dict(SPEC)
    net = build(spec)
    opt = torch.optim.SGD(net.adaptor_parameters(), lr=1.0)
    start = [p.item() for p in net.adaptor_parameters()]
    for _ in range(3):
        opt.zero_grad()
        net(torch.randn(4, 3, 20, 20)).square().mean().backward()
        opt.step()
    assert all(p.item() != s for p, s in zip(net.adaptor_parameters(), start, strict=True))

    learned = net.learned_adaptors()
    assert [a.layer for a in learned] == [0, 1]
    trained = spec.with_learned(learned)
    again = ArchSpec.from_json(trained.to_json())
    assert again == trained and again.adaptors.learned[0].size == learned[0].size

    rebuilt = build(again)
    rebuilt.load_state_dict(net.state_dict())
    x = torch.randn(2, 3, 20, 20)
    d1, d2 = to_deploy(net), to_deploy(rebuilt)
    frozen = [m for m in d2.modules() if isinstance(m, FrozenShapeAdaptor)]
    assert [f.size for f in frozen] == [tuple(a.size) for a in learned]
    with torch.no_grad():
        assert torch.equal(d1(x), d2(x))


def test_learned_sigma_initialises_rebuilt_adaptor() -> None:
    data = {**SPEC, "adaptors": {"learned": [{"layer": 1, "sigma": 0.3, "size": [14, 14]}]}}
    net = build(ArchSpec.from_dict(data))
    assert net.adaptors["1"].sigma == pytest.approx(0.3)


def test_meta_device_build_uses_the_specs_sigma() -> None:
    # Cost counting builds on the meta device, where α has no value: the sizes come from the
    # spec (learned σ, else the initial α), and match a real build.
    data = {**SPEC, "adaptors": {"learned": [{"layer": 1, "sigma": 0.3, "size": [14, 14]}]}}
    spec = ArchSpec.from_dict(data)
    real = build(spec)
    with torch.device("meta"):
        meta = build(spec)
        out = meta.features(torch.empty(1, 3, 20, 20))
    assert out.is_meta
    real.features(torch.zeros(1, 3, 20, 20))
    assert [m.last_size for m in meta.adaptors.values()] == [
        m.last_size for m in real.adaptors.values()
    ]
    assert meta.adaptors["1"].sigma == pytest.approx(0.3)
