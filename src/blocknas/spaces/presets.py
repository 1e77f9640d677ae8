"""Classic networks as ArchSpecs.

The five torchvision models (resnet18, resnet50, resnext50_32x4d, mobilenet_v2,
shufflenet_v2 / shufflenet_v2_x1_0) match torchvision's parameter counts exactly and its MACs
within 0.5%; the tests check both against torchvision. ImageNet presets default to
(3, 224, 224) and 1000 classes, the ``*_cifar`` ones to (3, 32, 32) and 10 classes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from blocknas.spaces.registry import Registry
from blocknas.spaces.spec import ArchSpec

Factory = Callable[[], dict[str, Any]]
PRESETS: Registry[Factory] = Registry("preset")
IMAGENET = ((3, 224, 224), 1000)
CIFAR = ((3, 32, 32), 10)
_NATURAL: dict[str, tuple[tuple[int, int, int], int]] = {}


def _register(
    *names: str, data: tuple[tuple[int, int, int], int] = IMAGENET
) -> Callable[[Factory], Factory]:
    def deco(fn: Factory) -> Factory:
        for name in names:
            PRESETS.register(name)(fn)
            _NATURAL[name] = data
        return fn

    return deco


def names() -> list[str]:
    """All preset names."""
    return PRESETS.names()


def get(
    name: str,
    *,
    num_classes: int | None = None,
    input: tuple[int, int, int] | None = None,
) -> ArchSpec:
    """The preset ``name`` as an ArchSpec (default input and classes: the preset's dataset).

    >>> spec = get("resnet50", num_classes=10)
    >>> len(spec.layers), spec.layers[0].block, spec.num_classes
    (16, 'bottleneck', 10)
    """
    factory = PRESETS.get(name)
    natural_input, natural_classes = _NATURAL[name]
    data = factory()
    data.update(
        version=1,
        input=list(input or natural_input),
        num_classes=num_classes or natural_classes,
    )
    return ArchSpec.from_dict(data)


def _stages(
    block: str, depths: list[int], widths: list[int], *, first_stride: int = 1, **layer: Any
) -> list[dict[str, Any]]:
    """ResNet-style stages: the first layer of every stage but the first has stride 2.
    A list value in ``layer`` gives one value per stage."""
    out = []
    for s, (n, width) in enumerate(zip(depths, widths, strict=True)):
        for i in range(n):
            entry = {
                "block": block,
                "out": width,
                "stride": (2 if s else first_stride) if i == 0 else 1,
            }
            entry.update({k: (v[s] if isinstance(v, list) else v) for k, v in layer.items()})
            out.append(entry)
    return out


IMAGENET_STEM: dict[str, Any] = {"type": "conv", "out": 64, "kernel": 7, "stride": 2, "pool": "max"}
DEEP_STEM: dict[str, Any] = {
    "type": "deep",
    "out": 64,
    "stride": 2,
    "pool": "max",
}  # ResNet-C: 32-32-64
R50 = ([3, 4, 6, 3], [256, 512, 1024, 2048])
R18, R34 = ([2, 2, 2, 2], [64, 128, 256, 512]), ([3, 4, 6, 3], [64, 128, 256, 512])
SPCONV: dict[str, Any] = {"op": "spconv", "alpha": 0.5, "groups": 2}  # the SPConv paper's setting


@_register("resnet18")
def _resnet18() -> dict[str, Any]:
    return {"stem": IMAGENET_STEM, "layers": _stages("basic", *R18)}


@_register("resnet18_acb")
def _resnet18_acb() -> dict[str, Any]:
    return {"stem": IMAGENET_STEM, "layers": _stages("basic", *R18, op="acb")}


@_register("resnet18_spconv")
def _resnet18_spconv() -> dict[str, Any]:
    return {"stem": IMAGENET_STEM, "layers": _stages("basic", *R18, **SPCONV)}


@_register("resnet34")
def _resnet34() -> dict[str, Any]:
    return {"stem": IMAGENET_STEM, "layers": _stages("basic", *R34)}


@_register("resnet50")
def _resnet50() -> dict[str, Any]:
    return {"stem": IMAGENET_STEM, "layers": _stages("bottleneck", *R50)}


@_register("resnet50_spconv")
def _resnet50_spconv() -> dict[str, Any]:
    return {"stem": IMAGENET_STEM, "layers": _stages("bottleneck", *R50, **SPCONV)}


@_register("resnet50d")
def _resnet50d() -> dict[str, Any]:
    return {"stem": DEEP_STEM, "layers": _stages("bottleneck", *R50, shortcut="d")}


@_register("se_resnet50")
def _se_resnet50() -> dict[str, Any]:
    return {"stem": IMAGENET_STEM, "layers": _stages("bottleneck", *R50, attention="se")}


RESNEXT: dict[str, Any] = {"mid": [128, 256, 512, 1024], "groups": 32}  # 32x4d


@_register("resnext50_32x4d")
def _resnext50() -> dict[str, Any]:
    return {"stem": IMAGENET_STEM, "layers": _stages("bottleneck", *R50, **RESNEXT)}


@_register("sknet50")
def _sknet50() -> dict[str, Any]:
    """SKNet-50: ResNeXt-50 32x4d with every 3×3 replaced by an SK unit (G = 32)."""
    return {"stem": IMAGENET_STEM, "layers": _stages("bottleneck", *R50, **RESNEXT, op="sk")}


@_register("resnest50d")
def _resnest50d() -> dict[str, Any]:
    """ResNeSt-50-D: split attention (radix 2, cardinality 1), deep stem, ResNet-D shortcut."""
    return {"stem": DEEP_STEM, "layers": _stages("bottleneck", *R50, op="splat", shortcut="d")}


@_register("mobilenet_v1")
def _mobilenet_v1() -> dict[str, Any]:
    plan = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2)]
    plan += [(512, 1)] * 5 + [(1024, 2), (1024, 1)]
    layers = [{"block": "plain", "op": "dwsep", "out": c, "stride": s} for c, s in plan]
    return {"stem": {"out": 32, "stride": 2}, "layers": layers}


@_register("mobilenet_v2")
def _mobilenet_v2() -> dict[str, Any]:
    layers, ch = [], 32
    for t, c, n, s in [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
                       (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]:  # fmt: skip
        for i in range(n):
            layers.append(
                {"block": "inverted", "out": c, "stride": s if i == 0 else 1, "mid": ch * t}
            )
            ch = c
    return {
        "stem": {"out": 32, "stride": 2, "act": "relu6"},
        "layers": layers,
        "head": {"conv": 1280, "act": "relu6", "dropout": 0.2},
    }


@_register("shufflenet_v2", "shufflenet_v2_x1_0")
def _shufflenet_v2() -> dict[str, Any]:
    return {
        "stem": {"out": 24, "stride": 2, "pool": "max"},
        "layers": _stages("shuffle", [4, 8, 4], [116, 232, 464], first_stride=2),
        "head": {"conv": 1024},
    }


CIFAR_STEM: dict[str, Any] = {"out": 16, "kernel": 3}


@_register("resnet20_cifar", data=CIFAR)
def _resnet20_cifar() -> dict[str, Any]:
    """He et al.'s CIFAR ResNet-20 (projection shortcuts, option B)."""
    return {"stem": CIFAR_STEM, "layers": _stages("basic", [3, 3, 3], [16, 32, 64])}


@_register("resnet20_cifar_acb", data=CIFAR)
def _resnet20_cifar_acb() -> dict[str, Any]:
    return {"stem": CIFAR_STEM, "layers": _stages("basic", [3, 3, 3], [16, 32, 64], op="acb")}


@_register("resnet56_cifar", data=CIFAR)
def _resnet56_cifar() -> dict[str, Any]:
    return {"stem": CIFAR_STEM, "layers": _stages("basic", [9, 9, 9], [16, 32, 64])}


@_register("resnet56_cifar_acb", data=CIFAR)
def _resnet56_cifar_acb() -> dict[str, Any]:
    """The ACNet paper's CIFAR ResNet-56 with every 3×3 as an ACB."""
    return {"stem": CIFAR_STEM, "layers": _stages("basic", [9, 9, 9], [16, 32, 64], op="acb")}


def _vgg16(op: str) -> dict[str, Any]:
    """VGG-16 on CIFAR: 13 conv-BN-ReLU layers. Each 2×2 max-pool of the original becomes
    stride 2 on the first conv of the next group (the last pool is the head's global pool)."""
    groups = [(64, 2), (128, 2), (256, 3), (512, 3), (512, 3)]
    layers = [
        {"block": "plain", "op": op, "out": w, "stride": 2 if g and i == 0 else 1}
        for g, (w, n) in enumerate(groups)
        for i in range(n)
    ]
    stem = {"out": 64, "kernel": 3}
    return {"stem": stem, "layers": layers[1:]}  # the stem is the first 64-wide conv


@_register("vgg16_cifar", data=CIFAR)
def _vgg16_cifar() -> dict[str, Any]:
    return _vgg16("conv")


@_register("vgg16_cifar_acb", data=CIFAR)
def _vgg16_cifar_acb() -> dict[str, Any]:
    return _vgg16("acb")
