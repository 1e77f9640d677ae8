"""ArchSpec v1: one architecture, as JSON/YAML (contracts §1).

Validation happens on construction in two passes: pydantic checks types and ranges, then every
stem, block and op checks the values it receives given the channels flowing into it. Both raise
:class:`SpecError` with the field path (``layers[3].groups``), the value and what is allowed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from blocknas.spaces.fields import Bool, Float, Int, NoBool, Stride, as_fields, spec_error
from blocknas.spaces.files import read_yaml

Act = Literal["relu", "relu6", "hswish"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class StemSpec(_Model):
    """``conv``: k×k conv-BN-act. ``deep``: three 3×3 conv-BN-act (out/2, out/2, out), the first
    strided (ResNet-C). ``pool: max`` adds a 3×3 stride-2 max-pool."""

    type: str = "conv"
    out: Int = Field(32, ge=1)
    kernel: Int = Field(3, ge=1)
    stride: Stride = 1
    pool: Literal["none", "max"] = "none"
    act: Act = "relu"


class LayerSpec(_Model):
    """One macro block. Fields a block or op does not use must keep their defaults."""

    block: str
    op: str = "conv"
    out: Int = Field(ge=1)
    stride: Stride = 1
    kernel: Int = Field(3, ge=1)
    groups: Int = Field(1, ge=1)
    dilation: Int = Field(1, ge=1)
    alpha: Float = Field(0.5, gt=0.0, le=1.0)
    mid: Int | None = Field(None, ge=1)
    pw_groups: Int = Field(1, ge=1)
    attention: Literal["none", "se"] = "none"
    shortcut: Literal["b", "d"] = "b"
    act: Act = "relu"
    adaptor: Bool = False

    @model_validator(mode="before")
    @classmethod
    def _default_act(cls, data: Any) -> Any:
        # The default activation depends on the block (inverted: relu6), so resolve it here and
        # keep `act` concrete in every serialized spec.
        if isinstance(data, dict) and data.get("act") is None:
            from blocknas.spaces.blocks import BLOCKS

            block = data.get("block")
            if isinstance(block, str) and block in BLOCKS:
                data = {**data, "act": BLOCKS.get(block).default_act}
            else:
                data = {k: v for k, v in data.items() if k != "act"}
        return data


class HeadSpec(_Model):
    """Optional 1×1 conv-BN-act of width ``conv``, global pooling, dropout, linear classifier."""

    conv: Int | None = Field(None, ge=1)
    pool: Literal["avg", "max"] = "avg"
    dropout: Float = Field(0.0, ge=0.0, lt=1.0)
    act: Act = "relu"


class LearnedAdaptor(_Model):
    """A trained Shape Adaptor: its σ and the output size it produced."""

    layer: Int = Field(ge=0)
    sigma: Float = Field(gt=0.0, lt=1.0)
    size: tuple[Int, Int]


class AdaptorSpec(_Model):
    """Shape Adaptor settings: scale range [r1, r2], initial α (None: the paper's rule)."""

    r1: Float = Field(0.5, gt=0.0, le=1.0)
    r2: Float = Field(1.0, gt=0.0, le=1.0)
    alpha_init: Float | None = None
    learned: list[LearnedAdaptor] = Field(default_factory=list)


class ArchSpec(_Model):
    """One architecture. ``ArchSpec.from_file("net.yaml")``, ``spec.to_json()``.

    >>> spec = ArchSpec.from_dict({
    ...     "version": 1, "input": [1, 16, 16], "num_classes": 10, "stem": {"out": 16},
    ...     "layers": [{"block": "basic", "out": 32, "stride": 2, "op": "acb"}]})
    >>> spec.layers[0].op
    'acb'
    """

    version: Annotated[Literal[1], NoBool]
    input: tuple[Int, Int, Int]
    num_classes: Int = Field(ge=1)
    stem: StemSpec
    layers: list[LayerSpec] = Field(min_length=1)
    head: HeadSpec = Field(default_factory=HeadSpec)
    adaptors: AdaptorSpec = Field(default_factory=AdaptorSpec)

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as e:
            raise spec_error(e, type(self)) from None

    @model_validator(mode="after")
    def _check_buildable(self) -> ArchSpec:
        from blocknas.spaces.validate import check_spec

        check_spec(self)
        return self

    # --- I/O -------------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ArchSpec:
        return cls(**as_fields(data, "a spec"))

    @classmethod
    def from_json(cls, text: str) -> ArchSpec:
        return cls.from_dict(json.loads(text))

    @classmethod
    def from_file(cls, path: str | Path) -> ArchSpec:
        """Read a spec from a .json, .yaml or .yml file."""
        return cls.from_dict(read_yaml(path, "spec file"))

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def to_json(self, **kwargs: Any) -> str:
        return json.dumps(self.to_dict(), **kwargs)

    def with_learned(self, learned: list[LearnedAdaptor]) -> ArchSpec:
        """A copy carrying the learned adaptor σ and sizes (validated again)."""
        data = self.to_dict()
        data["adaptors"]["learned"] = [a.model_dump(mode="json") for a in learned]
        return ArchSpec.from_dict(data)
