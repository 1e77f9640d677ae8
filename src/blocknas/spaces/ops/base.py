"""The contract every spatial op follows.

An op is a drop-in for "k×k conv → BN": it maps ``in_ch`` to ``out_ch`` channels with the given
kernel, stride (1 or 2, output ceil(H / stride)), groups and dilation. Every op takes the same
constructor argument, an :class:`OpArgs`, and declares which optional fields it reads in
``uses``; a field it does not read must keep its default, so nothing is silently dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import ClassVar

import torch
from torch import nn

from blocknas.spaces.errors import SpecError
from blocknas.spaces.registry import Registry


@dataclass(frozen=True)
class OpArgs:
    """Arguments of a spatial op.

    ``norm=False`` drops the op's output BN (pre-activation blocks end a branch with a bare
    conv). ``act`` is the activation used *inside* multi-stage ops (dwsep, sk, splat).
    """

    in_ch: int
    out_ch: int
    kernel: int = 3
    stride: int = 1
    groups: int = 1
    dilation: int = 1
    alpha: float = 0.5
    norm: bool = True
    act: str = "relu"

    @property
    def depthwise(self) -> bool:
        return self.groups > 1 and self.groups == self.in_ch == self.out_ch


_DEFAULTS = {f.name: f.default for f in fields(OpArgs)}
_OPTIONAL = ("groups", "dilation", "alpha")


class Op(nn.Module):
    """Base class of registered ops. Subclasses set ``uses`` and may extend :meth:`check`."""

    registry_name: ClassVar[str]
    #: optional OpArgs fields the op reads (the others must keep their defaults)
    uses: ClassVar[frozenset[str]] = frozenset({"groups", "dilation"})
    #: whether the op can run depthwise (groups == in == out), as inverted and shuffle need
    depthwise_ok: ClassVar[bool] = True
    #: what ``groups`` means for this op, for error messages
    groups_of: ClassVar[str] = "the op's"

    def __init__(self, args: OpArgs) -> None:
        super().__init__()
        type(self).check(args)
        self.args = args

    @classmethod
    def check(cls, args: OpArgs) -> None:
        """Raise :class:`SpecError` (path = the OpArgs field) if the op cannot be built."""
        name = cls.registry_name
        for field in _OPTIONAL:
            value = getattr(args, field)
            if field not in cls.uses and value != _DEFAULTS[field]:
                raise SpecError(
                    field,
                    f"{field}={value} is not used by op {name}; leave it at {_DEFAULTS[field]}",
                )
        if args.in_ch < 1 or args.out_ch < 1:
            raise SpecError("out", f"channels must be ≥ 1, got {args.in_ch=}, {args.out_ch=}")
        if args.kernel < 1 or args.kernel % 2 == 0:
            raise SpecError("kernel", f"kernel={args.kernel} must be odd and ≥ 1")
        if args.stride not in (1, 2):
            raise SpecError("stride", f"stride={args.stride} must be 1 or 2")
        if args.dilation < 1:
            raise SpecError("dilation", f"dilation={args.dilation} must be ≥ 1")
        if args.groups < 1:
            raise SpecError("groups", f"groups={args.groups} must be ≥ 1")
        if args.depthwise and not cls.depthwise_ok:
            raise SpecError("op", f"op {name} cannot run depthwise (groups == channels)")
        cls.check_groups(args)

    def uncounted_macs(self, out: torch.Tensor) -> int:
        """MACs per image of one forward that ``FlopCounterMode`` cannot see (a kernel it does
        not know, such as ``deform_conv2d``), from the op's output ``out``. The cost model adds
        them for ops that override this; ops built from ordinary convs have none."""
        return 0

    @classmethod
    def check_groups(cls, args: OpArgs) -> None:
        """Default: groups divide both the input and the output channels."""
        check_divides("groups", args.groups, args.in_ch, f"{cls.groups_of} input channels")
        check_divides("groups", args.groups, args.out_ch, f"{cls.groups_of} output channels")


def check_divides(field: str, value: int, total: int, what: str) -> None:
    """``SpecError(field, "groups=3 must divide the op's input channels 32")`` unless it does."""
    if total % value:
        raise SpecError(field, f"{field}={value} must divide {what} {total}")


OPS: Registry[type[Op]] = Registry("op")
