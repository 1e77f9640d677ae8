"""ArchSpec v1: one architecture, as JSON/YAML (contracts §1).

Validation happens on construction in two passes: pydantic checks types and ranges, then every
stem, block and op checks the values it receives given the channels flowing into it. Both raise
:class:`SpecError` with the field path (``layers[3].groups``), the value and what is allowed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from blocknas.spaces.errors import SpecError

Act = Literal["relu", "relu6", "hswish"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StemSpec(_Model):
    """``conv``: k×k conv-BN-act. ``deep``: three 3×3 conv-BN-act (out/2, out/2, out), the first
    strided (ResNet-C). ``pool: max`` adds a 3×3 stride-2 max-pool."""

    type: str = "conv"
    out: int = Field(32, ge=1)
    kernel: int = Field(3, ge=1)
    stride: Literal[1, 2] = 1
    pool: Literal["none", "max"] = "none"
    act: Act = "relu"


class LayerSpec(_Model):
    """One macro block. Fields a block or op does not use must keep their defaults."""

    block: str
    op: str = "conv"
    out: int = Field(ge=1)
    stride: Literal[1, 2] = 1
    kernel: int = Field(3, ge=1)
    groups: int = Field(1, ge=1)
    dilation: int = Field(1, ge=1)
    alpha: float = Field(0.5, gt=0.0, le=1.0)
    mid: int | None = Field(None, ge=1)
    pw_groups: int = Field(1, ge=1)
    attention: Literal["none", "se"] = "none"
    shortcut: Literal["b", "d"] = "b"
    act: Act = "relu"
    adaptor: bool = False

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

    conv: int | None = Field(None, ge=1)
    pool: Literal["avg", "max"] = "avg"
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    act: Act = "relu"


class LearnedAdaptor(_Model):
    """A trained Shape Adaptor: its σ and the output size it produced."""

    layer: int = Field(ge=0)
    sigma: float = Field(gt=0.0, lt=1.0)
    size: tuple[int, int]


class AdaptorSpec(_Model):
    """Shape Adaptor settings: scale range [r1, r2], initial α (None: the paper's rule)."""

    r1: float = Field(0.5, gt=0.0, le=1.0)
    r2: float = Field(1.0, gt=0.0, le=1.0)
    alpha_init: float | None = None
    learned: list[LearnedAdaptor] = Field(default_factory=list)


class ArchSpec(_Model):
    """One architecture. ``ArchSpec.from_file("net.yaml")``, ``spec.to_json()``.

    >>> spec = ArchSpec.from_dict({
    ...     "version": 1, "input": [1, 16, 16], "num_classes": 10, "stem": {"out": 16},
    ...     "layers": [{"block": "basic", "out": 32, "stride": 2, "op": "acb"}]})
    >>> spec.layers[0].op
    'acb'
    """

    version: Literal[1]
    input: tuple[int, int, int]
    num_classes: int = Field(ge=1)
    stem: StemSpec
    layers: list[LayerSpec] = Field(min_length=1)
    head: HeadSpec = Field(default_factory=HeadSpec)
    adaptors: AdaptorSpec = Field(default_factory=AdaptorSpec)

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as e:
            raise spec_error(e) from None

    @model_validator(mode="after")
    def _check_buildable(self) -> ArchSpec:
        from blocknas.spaces.validate import check_spec

        check_spec(self)
        return self

    # --- I/O -------------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ArchSpec:
        if not isinstance(data, dict):
            raise SpecError("", f"a spec must be a mapping, got {type(data).__name__}")
        return cls(**data)

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


def read_yaml(path: str | Path, what: str = "file") -> Any:
    """The data in a YAML (or JSON) file; a one-line SpecError if it cannot be read or parsed."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise SpecError("", f"cannot read {what} {str(path)!r}: {e.strerror}") from None
    try:
        return yaml.safe_load(text)  # YAML is a superset of JSON
    except yaml.YAMLError as e:
        raise SpecError("", f"{path}: not valid YAML/JSON: {e}".splitlines()[0]) from None


def _path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def spec_error(e: ValidationError) -> SpecError:
    """The first pydantic error as a one-line SpecError (or the SpecError a validator raised)."""
    err = e.errors()[0]
    original = (err.get("ctx") or {}).get("error")
    path = _path(tuple(err["loc"]))
    if isinstance(original, SpecError):
        return original.at(path)
    msg = err["msg"]
    if err["type"] == "extra_forbidden":
        return SpecError(path, "unknown field")
    if err["type"] == "missing":
        return SpecError(path, "required field is missing")
    if err["type"] == "value_error":  # a validator's own message already names the value
        return SpecError(path, msg.removeprefix("Value error, "))
    return SpecError(path, f"{msg}, got {err['input']!r}")
