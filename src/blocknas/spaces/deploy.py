"""``to_deploy(model)``: the inference form of a trained network.

A module opts in by defining ``deploy_form() -> nn.Module``, valid in eval mode: ConvBN folds its
BN, ACB fuses its three branches into one conv, SPConv and deformable conv fold their BNs, and a
Shape Adaptor freezes σ and its output size. The walk replaces each such module by its deploy form
and then continues inside the replacement, so nested ops are converted too.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from blocknas.spaces.adaptor import FrozenShapeAdaptor, ShapeAdaptor
from blocknas.spaces.spec import ArchSpec


def to_deploy(
    model: nn.Module,
    example_input: torch.Tensor | None = None,
    *,
    inplace: bool = False,
    reuse_sizes: bool = False,
) -> nn.Module:
    """An eval-mode copy in deploy form; its outputs equal ``model.eval()``'s.

    Shape Adaptors are frozen at the sizes they produce for ``example_input`` (default: zeros
    of the network's spec input, batch 1). ``inplace=True`` converts ``model`` itself instead of
    a copy (for throwaway networks, e.g. cost counting on the meta device). ``reuse_sizes=True``
    freezes the adaptors at the sizes of their last forward instead of running one more.

    >>> from blocknas import ArchSpec, build
    >>> spec = ArchSpec.from_dict({"version": 1, "input": [1, 8, 8], "num_classes": 10,
    ...     "stem": {"out": 8}, "layers": [{"block": "plain", "op": "acb", "out": 8}]})
    >>> net = build(spec).eval()
    >>> x = torch.randn(1, 1, 8, 8)
    >>> bool(torch.allclose(net(x), to_deploy(net)(x), atol=1e-5))
    True
    """
    deployed = (model if inplace else copy.deepcopy(model)).eval()
    adaptors = [m for m in deployed.modules() if isinstance(m, ShapeAdaptor)]
    if reuse_sizes and example_input is not None:
        raise ValueError("to_deploy: give example_input or reuse_sizes=True, not both")
    if reuse_sizes and any(m.last_size is None for m in adaptors):
        raise ValueError("to_deploy(reuse_sizes=True) needs one forward pass of the model first")
    if adaptors and not reuse_sizes:
        if example_input is None:
            shape = getattr(model, "input_shape", None)
            if shape is None:
                raise ValueError(
                    "to_deploy needs example_input for a model with Shape Adaptors that is not "
                    "a blocknas Network"
                )
            p = next(deployed.parameters())
            example_input = torch.zeros(1, *shape, device=p.device, dtype=p.dtype)
        with torch.no_grad():
            deployed(example_input)  # records each adaptor's output size
    with torch.no_grad():
        deployed = _convert(deployed)
    return deployed.eval()


def _convert(module: nn.Module) -> nn.Module:
    deploy_form = getattr(module, "deploy_form", None)
    if callable(deploy_form):
        module = deploy_form()
    for name, child in list(module.named_children()):
        setattr(module, name, _convert(child))
    return module


def build_deploy(spec: ArchSpec) -> nn.Module:
    """The deploy-form network of ``spec``, untrained: the skeleton a deploy state dict loads into.

    Shape Adaptors are frozen at the σ and sizes the spec has learned (``adaptors.learned``),
    exactly as recorded, so a package's ``spec.json`` and ``model.pt`` rebuild its network.

    >>> from blocknas import build
    >>> spec = ArchSpec.from_dict({"version": 1, "input": [1, 8, 8], "num_classes": 10,
    ...     "stem": {"out": 8}, "layers": [{"block": "plain", "op": "acb", "out": 8}]})
    >>> sorted(build_deploy(spec).state_dict()) == sorted(to_deploy(build(spec)).state_dict())
    True
    """
    from blocknas.spaces.builder import build

    adaptors = spec.adaptors.learned
    layers_with = [i for i, layer in enumerate(spec.layers) if layer.adaptor]
    if sorted(a.layer for a in adaptors) != layers_with:
        raise ValueError(
            f"the spec's adaptors.learned covers layers {[a.layer for a in adaptors]}, but "
            f"layers {layers_with} have an adaptor: a deploy spec carries every learned size"
        )
    deployed = to_deploy(build(spec))
    frozen = getattr(deployed, "adaptors", {})
    for a in adaptors:
        frozen[str(a.layer)] = FrozenShapeAdaptor(a.sigma, a.size)
    return deployed
