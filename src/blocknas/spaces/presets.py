"""Classic networks as ArchSpecs: ``presets.get("resnet50")``.

Presets are the baselines a search is judged against and the proof that the block library can
express the networks it generalises: resnet18, resnet50, resnext50_32x4d, mobilenet_v2 and
shufflenet_v2 (alias shufflenet_v2_x1_0) have exactly torchvision's parameters and its MACs
within 0.5% (tests/spaces/test_torchvision_parity.py checks both).

Every factory takes ``num_classes`` and ``input`` from the caller; nothing is inferred from the
name. ImageNet presets are meant for the defaults, input (3, 224, 224) and 1000 classes. The
``*_cifar`` presets are meant for input (3, 32, 32) and 10 classes: pass them explicitly
(:func:`intended` gives the pair for any preset).

Variants (``_acb``, ``_spconv``, ``sknet50``, ...) call the same layout helper as their plain
twin with another ``op`` (or shortcut, attention), so a twin and its variant differ only there.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from blocknas.spaces.registry import Registry
from blocknas.spaces.spec import ArchSpec

Shape = tuple[int, int, int]
#: a preset factory: ``factory(num_classes=..., input=...) -> ArchSpec``
Factory = Callable[..., ArchSpec]

PRESETS: Registry[Factory] = Registry("preset")

IMAGENET: tuple[Shape, int] = ((3, 224, 224), 1000)
CIFAR: tuple[Shape, int] = ((3, 32, 32), 10)
_INTENDED: dict[str, tuple[Shape, int]] = {}


def _preset(*names: str, data: tuple[Shape, int] = IMAGENET) -> Callable[[Factory], Factory]:
    """Register a factory under one or more names, noting the data it is meant for."""

    def deco(fn: Factory) -> Factory:
        for name in names:
            PRESETS.register(name)(fn)
            _INTENDED[name] = data
        return fn

    return deco


def names() -> list[str]:
    """All preset names, sorted."""
    return PRESETS.names()


def intended(name: str) -> tuple[Shape, int]:
    """The (input, num_classes) the preset ``name`` was designed for; not applied by :func:`get`.

    >>> intended("resnet20_cifar")
    ((3, 32, 32), 10)
    """
    PRESETS.get(name)  # a SpecError listing the valid names for an unknown one
    return _INTENDED[name]


def get(name: str, *, num_classes: int = 1000, input: Shape = IMAGENET[0]) -> ArchSpec:
    """The preset ``name`` as a validated ArchSpec for ``input`` images and ``num_classes``.

    An unknown name raises :class:`~blocknas.SpecError` listing the valid ones.

    >>> spec = get("resnet20_cifar", num_classes=10, input=(3, 32, 32))
    >>> len(spec.layers), spec.layers[0].block, spec.input, spec.num_classes
    (9, 'basic', (3, 32, 32), 10)
    >>> get("resnet50").layers[0].mid, get("resnext50_32x4d").layers[0].mid
    (None, 128)
    """
    return PRESETS.get(name)(num_classes=num_classes, input=tuple(input))


# --- helpers -------------------------------------------------------------------------------


def _spec(
    num_classes: int,
    input: Shape,
    stem: dict[str, Any],
    layers: list[dict[str, Any]],
    head: dict[str, Any] | None = None,
) -> ArchSpec:
    """Assemble and validate one ArchSpec v1."""
    data: dict[str, Any] = {
        "version": 1,
        "input": list(input),
        "num_classes": num_classes,
        "stem": stem,
        "layers": layers,
    }
    if head is not None:
        data["head"] = head
    return ArchSpec.from_dict(data)


def _stages(
    block: str,
    depths: list[int],
    widths: list[int],
    *,
    first_stride: int = 1,
    **layer: Any,
) -> list[dict[str, Any]]:
    """ResNet-style stages: ``depths[s]`` layers of width ``widths[s]``; the first layer of each
    stage but the first has stride 2 (the first stage's has ``first_stride``). Every other field
    in ``layer`` is copied into each layer; a list value gives one value per stage."""
    out: list[dict[str, Any]] = []
    for s, (depth, width) in enumerate(zip(depths, widths, strict=True)):
        for i in range(depth):
            entry: dict[str, Any] = {
                "block": block,
                "out": width,
                "stride": (2 if s else first_stride) if i == 0 else 1,
            }
            entry.update({k: v[s] if isinstance(v, list) else v for k, v in layer.items()})
            out.append(entry)
    return out


# torchvision's stem: 7×7 stride 2 conv-BN-ReLU + 3×3 stride-2 max-pool.
IMAGENET_STEM: dict[str, Any] = {"type": "conv", "out": 64, "kernel": 7, "stride": 2, "pool": "max"}
# ResNet-C: three 3×3 convs 32-32-64, the first strided, then the max-pool.
DEEP_STEM: dict[str, Any] = {"type": "deep", "out": 64, "stride": 2, "pool": "max"}
BASIC18 = ("basic", [2, 2, 2, 2], [64, 128, 256, 512])
BASIC34 = ("basic", [3, 4, 6, 3], [64, 128, 256, 512])
BOTTLENECK50 = ("bottleneck", [3, 4, 6, 3], [256, 512, 1024, 2048])
# ResNeXt 32x4d: inner width floor(planes·4/64)·32, 3×3 convs in 32 groups.
RESNEXT_32X4D: dict[str, Any] = {"mid": [128, 256, 512, 1024], "groups": 32}
# The SPConv paper's setting: half the input channels representative, group conv of 2 groups.
SPCONV: dict[str, Any] = {"op": "spconv", "alpha": 0.5, "groups": 2}


def _resnet(
    num_classes: int,
    input: Shape,
    plan: tuple[str, list[int], list[int]],
    *,
    stem: dict[str, Any] = IMAGENET_STEM,
    **layer: Any,
) -> ArchSpec:
    """An ImageNet ResNet of ``plan`` = (block, depths, widths); ``layer`` as in :func:`_stages`."""
    block, depths, widths = plan
    return _spec(num_classes, input, stem, _stages(block, depths, widths, **layer))


# --- ImageNet ResNets and their variants ---------------------------------------------------


@_preset("resnet18")
def _resnet18(num_classes: int, input: Shape) -> ArchSpec:
    return _resnet(num_classes, input, BASIC18)


@_preset("resnet18_acb")
def _resnet18_acb(num_classes: int, input: Shape) -> ArchSpec:
    """ACNet's ImageNet ResNet-18: every 3×3 in the blocks an ACB (the 7×7 stem stays plain)."""
    return _resnet(num_classes, input, BASIC18, op="acb")


@_preset("resnet18_spconv")
def _resnet18_spconv(num_classes: int, input: Shape) -> ArchSpec:
    """SPConv ResNet-18: both 3×3 convs of every basic block as SPConv (α = ½, 2 groups)."""
    return _resnet(num_classes, input, BASIC18, **SPCONV)


@_preset("resnet34")
def _resnet34(num_classes: int, input: Shape) -> ArchSpec:
    return _resnet(num_classes, input, BASIC34)


@_preset("resnet50")
def _resnet50(num_classes: int, input: Shape) -> ArchSpec:
    return _resnet(num_classes, input, BOTTLENECK50)


@_preset("resnet50_spconv")
def _resnet50_spconv(num_classes: int, input: Shape) -> ArchSpec:
    """The SPConv paper's ResNet-50: only the bottleneck 3×3 is SPConv (α = ½, 2 groups)."""
    return _resnet(num_classes, input, BOTTLENECK50, **SPCONV)


@_preset("resnet50d")
def _resnet50d(num_classes: int, input: Shape) -> ArchSpec:
    """Bag of Tricks ResNet-50-D: deep stem 32-32-64 (C) and avg-pool shortcuts (D)."""
    return _resnet(num_classes, input, BOTTLENECK50, stem=DEEP_STEM, shortcut="d")


@_preset("se_resnet50")
def _se_resnet50(num_classes: int, input: Shape) -> ArchSpec:
    """SE-ResNet-50: squeeze-excitation (reduction 16) after each block's last BN."""
    return _resnet(num_classes, input, BOTTLENECK50, attention="se")


@_preset("resnext50_32x4d")
def _resnext50_32x4d(num_classes: int, input: Shape) -> ArchSpec:
    return _resnet(num_classes, input, BOTTLENECK50, **RESNEXT_32X4D)


@_preset("sknet50")
def _sknet50(num_classes: int, input: Shape) -> ArchSpec:
    """SKNet-50: ResNeXt-50 32x4d with every 3×3 replaced by an SK unit (G = 32)."""
    return _resnet(num_classes, input, BOTTLENECK50, **RESNEXT_32X4D, op="sk")


@_preset("resnest50d")
def _resnest50d(num_classes: int, input: Shape) -> ArchSpec:
    """ResNeSt-50-D: split attention (radix 2, cardinality 1), deep stem, ResNet-D shortcut."""
    return _resnet(
        num_classes, input, BOTTLENECK50, stem=DEEP_STEM, op="splat", groups=1, shortcut="d"
    )


# --- mobile networks -----------------------------------------------------------------------


@_preset("mobilenet_v1")
def _mobilenet_v1(num_classes: int, input: Shape) -> ArchSpec:
    """MobileNetV1 1.0: 3×3 stride-2 conv 32, then 13 depthwise-separable layers 64 … 1024."""
    plan = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2)]
    plan += [(512, 1)] * 5 + [(1024, 2), (1024, 1)]
    layers = [{"block": "plain", "op": "dwsep", "out": c, "stride": s} for c, s in plan]
    return _spec(num_classes, input, {"out": 32, "kernel": 3, "stride": 2}, layers)


@_preset("mobilenet_v2")
def _mobilenet_v2(num_classes: int, input: Shape) -> ArchSpec:
    """MobileNetV2 1.0 as in torchvision: stages (t, c, n, s), inner width in·t, ReLU6."""
    layers: list[dict[str, Any]] = []
    ch = 32
    for t, c, n, s in [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
                       (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]:  # fmt: skip
        for i in range(n):
            stride = s if i == 0 else 1
            layers.append({"block": "inverted", "out": c, "stride": stride, "mid": ch * t})
            ch = c
    stem = {"out": 32, "kernel": 3, "stride": 2, "act": "relu6"}
    head = {"conv": 1280, "act": "relu6", "dropout": 0.2}
    return _spec(num_classes, input, stem, layers, head)


@_preset("shufflenet_v2", "shufflenet_v2_x1_0")
def _shufflenet_v2(num_classes: int, input: Shape) -> ArchSpec:
    """ShuffleNetV2 1.0× (torchvision shufflenet_v2_x1_0): 116×4, 232×8, 464×4, conv 1024."""
    stem = {"out": 24, "kernel": 3, "stride": 2, "pool": "max"}
    layers = _stages("shuffle", [4, 8, 4], [116, 232, 464], first_stride=2)
    return _spec(num_classes, input, stem, layers, {"conv": 1024})


# --- CIFAR networks (meant for input (3, 32, 32), 10 classes) ------------------------------


def _cifar_resnet(num_classes: int, input: Shape, depth: int, **layer: Any) -> ArchSpec:
    """He et al.'s CIFAR ResNet-``depth``: 3×3 conv 16, then 3 stages of (depth − 2)/6 basic
    blocks of widths 16/32/64. The paper's option-A (zero-padding) shortcut is not in the block
    library, so the two downsampling blocks use projection shortcuts (option B)."""
    n = (depth - 2) // 6
    stem = {"out": 16, "kernel": 3, "stride": 1}
    return _spec(num_classes, input, stem, _stages("basic", [n] * 3, [16, 32, 64], **layer))


@_preset("resnet20_cifar", data=CIFAR)
def _resnet20_cifar(num_classes: int, input: Shape) -> ArchSpec:
    return _cifar_resnet(num_classes, input, 20)


@_preset("resnet20_cifar_acb", data=CIFAR)
def _resnet20_cifar_acb(num_classes: int, input: Shape) -> ArchSpec:
    """CIFAR ResNet-20 with every block 3×3 an ACB (stems carry no op: the first conv is plain)."""
    return _cifar_resnet(num_classes, input, 20, op="acb")


@_preset("resnet56_cifar", data=CIFAR)
def _resnet56_cifar(num_classes: int, input: Shape) -> ArchSpec:
    return _cifar_resnet(num_classes, input, 56)


@_preset("resnet56_cifar_acb", data=CIFAR)
def _resnet56_cifar_acb(num_classes: int, input: Shape) -> ArchSpec:
    """The ACNet paper's CIFAR ResNet-56 (94.55 → 95.06): every block 3×3 an ACB."""
    return _cifar_resnet(num_classes, input, 56, op="acb")


VGG16 = [(64, 2), (128, 2), (256, 3), (512, 3), (512, 3)]  # (width, convs) per pool-ended group


def _vgg16_cifar(num_classes: int, input: Shape, op: str) -> ArchSpec:
    """VGG-16 with BN on CIFAR: 13 3×3 conv-BN-ReLU layers 64,64,M,128,128,M,256×3,M,512×3,M,
    512×3,M and one linear classifier.

    The block library has no pooling layer, so each of the first four max-pools M becomes
    stride 2 on the *following* conv (the first of the next group). That conv then has the
    output size it has after the pool in VGG, so params and MACs equal VGG-16's exactly;
    striding the *preceding* conv instead would run it at a quarter of VGG's resolution and
    cut its MACs 4×. The fifth M (2×2 → 1×1 on a 32×32 input) is the head's global max-pool.
    The first conv is the stem (a stem carries no op, so in the ACB variant it stays plain);
    the other 12 are plain blocks with ``op``.
    """
    layers = [
        {"block": "plain", "op": op, "out": w, "stride": 2 if g and i == 0 else 1}
        for g, (w, n) in enumerate(VGG16)
        for i in range(n)
    ]
    stem = {"out": 64, "kernel": 3, "stride": 1}
    return _spec(num_classes, input, stem, layers[1:], {"pool": "max"})


@_preset("vgg16_cifar", data=CIFAR)
def _vgg16_cifar_plain(num_classes: int, input: Shape) -> ArchSpec:
    return _vgg16_cifar(num_classes, input, "conv")


@_preset("vgg16_cifar_acb", data=CIFAR)
def _vgg16_cifar_acb(num_classes: int, input: Shape) -> ArchSpec:
    """ACNet's CIFAR VGG-16 (93.99 → 94.54): the 12 block convs as ACBs."""
    return _vgg16_cifar(num_classes, input, "acb")
