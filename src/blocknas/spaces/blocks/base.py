"""The contract every macro block follows.

Every block is built as ``Block(in_ch, layer)`` from the channels flowing in and its
:class:`~blocknas.spaces.spec.LayerSpec`. A block lists the optional layer fields it reads in
``uses`` (the rest must keep their defaults) and says which ops it runs in :meth:`op_args`; the
same method drives validation and construction, so the two cannot disagree. A block whose layer
fields follow from search-space choices of its own says how in :meth:`derived_fields`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

from torch import nn

from blocknas.spaces.errors import SpecError
from blocknas.spaces.ops import OPS, Op, OpArgs
from blocknas.spaces.registry import Registry

if TYPE_CHECKING:
    from blocknas.spaces.spec import LayerSpec

#: optional LayerSpec fields that only some blocks read, with their defaults
BLOCK_FIELDS: dict[str, object] = {"mid": None, "pw_groups": 1, "groups": 1, "shortcut": "b"}


class Block(nn.Module):
    """Base class of registered blocks."""

    registry_name: ClassVar[str]
    #: which of BLOCK_FIELDS the block reads
    uses: ClassVar[frozenset[str]] = frozenset({"groups"})
    #: the block runs its op depthwise (groups = channels), so the op must support that
    depthwise_op: ClassVar[bool] = False
    #: activation when the layer does not name one
    default_act: ClassVar[str] = "relu"
    #: a network whose last block is pre-activation ends with BN-act before pooling
    preact: ClassVar[bool] = False

    def __init__(self, in_ch: int, layer: LayerSpec) -> None:
        super().__init__()
        type(self).check(in_ch, layer)
        self.in_ch, self.layer = in_ch, layer

    # --- validation ------------------------------------------------------------------------
    @classmethod
    def check(cls, in_ch: int, layer: LayerSpec) -> None:
        """Raise :class:`SpecError` (path relative to the layer) unless the layer can be built."""
        name = cls.registry_name
        op_cls = OPS.get(layer.op, path="op")
        for field, default in BLOCK_FIELDS.items():
            value = getattr(layer, field)
            if field not in cls.uses and value != default:
                keep = "unset" if default is None else f"at {default!r}"
                raise SpecError(
                    field, f"{field}={value!r} is not used by block {name}; leave it {keep}"
                )
        if cls.depthwise_op and not op_cls.depthwise_ok:
            ok = ", ".join(n for n in OPS if OPS.get(n).depthwise_ok)
            raise SpecError(
                "op",
                f"op {layer.op} cannot run depthwise, which block {name} needs; use one of {ok}",
            )
        cls.check_layer(in_ch, layer)
        for args in cls.op_args(in_ch, layer):
            op_cls.check(args)

    @classmethod
    def check_layer(cls, in_ch: int, layer: LayerSpec) -> None:
        """Block-specific checks that do not concern the op (channel arithmetic)."""

    @classmethod
    def op_args(cls, in_ch: int, layer: LayerSpec) -> list[OpArgs]:
        """The distinct op instantiations the block makes, in construction order."""
        raise NotImplementedError

    @classmethod
    def derived_fields(cls, in_ch: int, choose: Callable[[str], Any]) -> dict[str, Any]:
        """Layer fields the block derives from its own search-space choices, when sampled.

        ``choose(name)`` samples the layer's choices for the space field ``name`` (a stable
        parameter ``<layer>.<name>``); only blocks that read such a field ask for it, so other
        blocks' trials never carry it. Default: none.
        """
        return {}

    # --- construction helpers --------------------------------------------------------------
    def make_op(self, args: OpArgs) -> Op:
        return OPS.get(self.layer.op)(args)


def layer_op_args(
    layer: LayerSpec,
    in_ch: int,
    out_ch: int,
    *,
    stride: int | None = None,
    groups: int | None = None,
    norm: bool = True,
) -> OpArgs:
    """OpArgs from a layer's spatial fields, with per-position overrides."""
    return OpArgs(
        in_ch=in_ch,
        out_ch=out_ch,
        kernel=layer.kernel,
        stride=layer.stride if stride is None else stride,
        groups=layer.groups if groups is None else groups,
        dilation=layer.dilation,
        alpha=layer.alpha,
        norm=norm,
        act=layer.act,
    )


def check_mid(layer: LayerSpec, default: int, what: str) -> int:
    """The inner width: ``layer.mid`` or ``default``; a SpecError if that is < 1."""
    mid = layer.mid if layer.mid is not None else default
    if mid < 1:
        raise SpecError("mid", f"the default inner width {what} is {mid}; set mid ≥ 1")
    return mid


def bottleneck_mid(layer: LayerSpec) -> int:
    """A (pre-activation) bottleneck's inner width: ``mid``, by default out/4."""
    return check_mid(layer, layer.out // 4, f"out/4 = {layer.out}//4")


BLOCKS: Registry[type[Block]] = Registry("block")
