"""Search-space schema v1: which architectures a search may sample, and ``sample(trial)``.

A space lists *choices*: a scalar means a fixed value, a list means "pick one". Layer choices
are given once under ``layer:`` and may be overridden per stage. Sampling is define-by-run with
stable parameter names (``stem.out``, ``s1.depth``, ``s1.l0.op``, …) so that TPE and NSGA-II
learn across trials; a field is only sampled when the sampled block/op reads it.

Repair, not resampling: a sampled combination that cannot be built is repaired
deterministically, so every trial yields a valid spec with the same parameter names:

- an op the block cannot run (depthwise blocks with spconv/dwsep/splat) → the first op in the
  layer's ``op`` choices the block can run, else ``conv``;
- a block that cannot take the layer's channels (shuffle at stride 1 with a width change,
  inception with ``out`` not divisible by 4) → the first such block in the choices, else ``basic``;
- ``alpha`` leaving no representative channels → the smallest larger choice that works, else 1.0
  (α is settled first, with groups 1);
- ``groups`` that do not divide the channels (given that α) → the largest smaller choice that
  does, else 1;
- more adaptors than ``adaptors.max`` → the first ``max`` sampled positions are kept;
- a layer that still cannot be built (a width of 1 or 2 leaves a bottleneck no inner width, or
  splat no radix) → a basic block of conv ops with the same width, stride and kernel.

Adaptor positions are a layer field (``s1.l2.adaptor``): any layer may be one, and a stage's
``adaptor`` override limits the candidates to the stages that allow them.

Pure torch/pydantic: the trial is duck-typed (anything with ``suggest_categorical``), so this
module never imports optuna.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Annotated, Any, Literal, Protocol, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from blocknas.spaces.blocks import BLOCKS
from blocknas.spaces.errors import SpecError
from blocknas.spaces.fields import (
    Bool,
    Choices,
    Float,
    Fraction,
    Int,
    Kernel,
    Positive,
    Stride,
    as_fields,
)
from blocknas.spaces.files import read_yaml
from blocknas.spaces.ops import OPS
from blocknas.spaces.spec import ArchSpec, StemSpec, spec_error
from blocknas.spaces.validate import check_space

T = TypeVar("T")
Scalar = int | float | str | bool | None


class Trial(Protocol):
    """The part of ``optuna.trial.Trial`` that sampling uses."""

    def suggest_categorical(self, name: str, choices: Any) -> Any: ...


class RandomTrial:
    """A uniform, seeded stand-in for an Optuna trial (``space sample``, latency profiling)."""

    def __init__(self, seed: int = 0) -> None:
        self.rng = random.Random(seed)
        self.params: dict[str, Any] = {}

    def suggest_categorical(self, name: str, choices: Any) -> Any:
        self.params[name] = value = self.rng.choice(list(choices))
        return value


def _as_list(v: Any) -> Any:
    return v if isinstance(v, list) else [v]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class LayerChoices(_Model):
    """Per-layer choices. In a stage, a field left out (None) inherits the space's ``layer``."""

    block: Choices[str] | None = None
    op: Choices[str] | None = None
    kernel: Choices[Kernel] | None = None
    groups: Choices[Positive] | None = None
    dilation: Choices[Positive] | None = None
    alpha: Choices[Fraction] | None = None
    expansion: Choices[Positive] | None = None  # read by inverted (derived_fields): mid = in · it
    attention: Choices[Literal["none", "se"]] | None = None
    shortcut: Choices[Literal["b", "d"]] | None = None
    act: Choices[Literal["relu", "relu6", "hswish"] | None] | None = None
    adaptor: Choices[Bool] | None = None  # may a Shape Adaptor sit before this layer

    _listify = field_validator(
        "block",
        "op",
        "kernel",
        "groups",
        "dilation",
        "alpha",
        "expansion",
        "attention",
        "shortcut",
        "act",
        "adaptor",
        mode="before",
    )(lambda v: None if v is None else _as_list(v))


DEFAULT_LAYER: dict[str, list[Any]] = {
    "block": ["basic"],
    "op": ["conv"],
    "kernel": [3],
    "groups": [1],
    "dilation": [1],
    "alpha": [0.5],
    "expansion": [6],
    "attention": ["none"],
    "shortcut": ["b"],
    "act": [None],
    "adaptor": [False],
}


#: layers a stage may have (ResNet-1001 has 111 per stage): every sample validates each layer
MAX_DEPTH = 1000


class StageChoices(LayerChoices):
    """A stage: ``depth`` layers of width ``out``; the first takes ``stride``."""

    depth: Choices[Annotated[Positive, Field(le=MAX_DEPTH)]]
    out: Choices[Positive]
    stride: Stride = 1

    _listify2 = field_validator("depth", "out", mode="before")(_as_list)


class StemChoices(_Model):
    type: Choices[str] = ["conv"]
    out: Choices[Positive] = [32]
    kernel: Choices[Positive] = [3]
    stride: Stride = 1
    pool: Literal["none", "max"] = "none"
    act: Literal["relu", "relu6", "hswish"] = "relu"

    _listify = field_validator("type", "out", "kernel", mode="before")(_as_list)


class HeadChoices(_Model):
    conv: Choices[Positive | None] = [None]
    dropout: Choices[Annotated[Float, Field(ge=0.0, lt=1.0)]] = [0.0]
    pool: Literal["avg", "max"] = "avg"

    _listify = field_validator("conv", "dropout", mode="before")(_as_list)


class AdaptorChoices(_Model):
    max: Int = Field(0, ge=0)
    r1: Fraction = 0.5
    r2: Fraction = 1.0

    @model_validator(mode="after")
    def _ordered(self) -> AdaptorChoices:
        if self.r1 > self.r2:
            raise SpecError("r1", f"r1={self.r1} must be ≤ r2={self.r2}")
        return self


class SearchSpace(_Model):
    """The ``space:`` section of a search config.

    >>> space = SearchSpace.from_dict({"input": [1, 16, 16], "num_classes": 10,
    ...     "stem": {"out": 16}, "stages": [{"depth": [1, 2], "out": [16, 32], "stride": 2}],
    ...     "layer": {"block": ["basic", "inverted"], "op": ["conv", "acb"]}})
    >>> class First:  # any object with suggest_categorical; in a search, an optuna Trial
    ...     def suggest_categorical(self, name, choices): return choices[0]
    >>> spec = space.sample(First())
    >>> [(layer.block, layer.op, layer.out) for layer in spec.layers]
    [('basic', 'conv', 16)]
    """

    input: tuple[Positive, Positive, Positive]
    num_classes: Int = Field(ge=1)
    stem: StemChoices = Field(default_factory=StemChoices)
    stages: list[StageChoices] = Field(min_length=1)
    layer: LayerChoices = Field(default_factory=LayerChoices)
    head: HeadChoices = Field(default_factory=HeadChoices)
    adaptors: AdaptorChoices = Field(default_factory=AdaptorChoices)

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as e:
            raise spec_error(e, type(self)) from None
        check_space(self, StemSpec)  # names and stems: what sampling would otherwise meet late

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SearchSpace:
        return cls(**as_fields(data, "a space"))

    @classmethod
    def from_file(cls, path: str | Path) -> SearchSpace:
        """Read a space file, or the ``space:`` section of a search config."""
        data = read_yaml(path, "space file")
        if isinstance(data, dict) and "space" in data:
            try:
                return cls.from_dict(data["space"])
            except SpecError as e:
                raise e.at("space") from None
        return cls.from_dict(data)

    def choices(self, stage: int, field: str) -> list[Any]:
        """The stage's choices for a layer field (stage override, else space, else default)."""
        own = getattr(self.stages[stage], field)
        if own is not None:
            return list(own)
        shared = getattr(self.layer, field)
        return list(shared) if shared is not None else list(DEFAULT_LAYER[field])

    def sample(self, trial: Trial) -> ArchSpec:
        """One valid ArchSpec, sampled define-by-run from ``trial``."""
        return sample(self, trial)

    def sample_random(self, seed: int = 0) -> ArchSpec:
        """One spec drawn uniformly with a fixed seed (the same seed gives the same spec)."""
        return sample(self, RandomTrial(seed))


def sample(space: SearchSpace, trial: Trial) -> ArchSpec:
    """Sample one architecture. Single-valued choices are not suggested, so they do not
    clutter the study."""

    def pick(name: str, choices: list[T]) -> T:
        if len(choices) == 1:
            return choices[0]
        value: T = trial.suggest_categorical(name, choices)
        return value

    stem = space.stem
    stem_out = pick("stem.out", stem.out)
    spec: dict[str, Any] = {
        "version": 1,
        "input": list(space.input),
        "num_classes": space.num_classes,
        "stem": {
            "type": pick("stem.type", stem.type),
            "out": stem_out,
            "kernel": pick("stem.kernel", stem.kernel),
            "stride": stem.stride,
            "pool": stem.pool,
            "act": stem.act,
        },
        "head": {
            "conv": pick("head.conv", space.head.conv),
            "dropout": pick("head.dropout", space.head.dropout),
            "pool": space.head.pool,
        },
        "adaptors": {"r1": space.adaptors.r1, "r2": space.adaptors.r2},
    }
    layers: list[dict[str, Any]] = []
    in_ch, adaptors = stem_out, 0
    for s, stage in enumerate(space.stages):
        depth = pick(f"s{s}.depth", stage.depth)
        out = pick(f"s{s}.out", stage.out)
        for j in range(depth):
            layer = _sample_layer(
                space, s, f"s{s}.l{j}", pick, in_ch, out, stage.stride if j == 0 else 1
            )
            # Asked even once ``max`` is reached, so a position keeps its parameter in every trial.
            wanted = space.adaptors.max > 0 and pick(
                f"s{s}.l{j}.adaptor", space.choices(s, "adaptor")
            )
            if wanted and adaptors < space.adaptors.max:
                layer["adaptor"] = True
                adaptors += 1
            layers.append(layer)
            in_ch = out
    spec["layers"] = layers
    return ArchSpec.from_dict(spec)


def _sample_layer(
    space: SearchSpace, s: int, prefix: str, pick: Any, in_ch: int, out: int, stride: int
) -> dict[str, Any]:
    c = lambda field: space.choices(s, field)  # noqa: E731
    block = pick(f"{prefix}.block", c("block"))
    op = pick(f"{prefix}.op", c("op"))
    layer: dict[str, Any] = {"block": block, "op": op, "out": out, "stride": stride}
    layer["kernel"] = pick(f"{prefix}.kernel", c("kernel"))
    layer["attention"] = pick(f"{prefix}.attention", c("attention"))
    act = pick(f"{prefix}.act", c("act"))
    if act is not None:
        layer["act"] = act
    layer["block"] = _repair_block(layer, in_ch, c("block"))
    layer["op"] = _repair_op(layer, c("op"))
    bcls, ocls = BLOCKS.get(layer["block"]), OPS.get(layer["op"])
    # Define-by-run: only fields the sampled block/op reads are sampled.
    if "dilation" in ocls.uses:
        layer["dilation"] = pick(f"{prefix}.dilation", c("dilation"))
    if "shortcut" in bcls.uses:
        layer["shortcut"] = pick(f"{prefix}.shortcut", c("shortcut"))
    layer.update(bcls.derived_fields(in_ch, lambda field: pick(f"{prefix}.{field}", c(field))))
    # α first (with groups 1), then groups repaired against the chosen α.
    if "alpha" in ocls.uses:
        wanted = pick(f"{prefix}.alpha", c("alpha"))
        layer["alpha"] = _repair(layer, in_ch, "alpha", wanted, sorted(c("alpha")), 1.0)
    if "groups" in bcls.uses and "groups" in ocls.uses:
        wanted = pick(f"{prefix}.groups", c("groups"))
        order = sorted(c("groups"), reverse=True)
        layer["groups"] = _repair(layer, in_ch, "groups", wanted, order, 1)
    if _errors(layer, in_ch) is not None:  # a width too small for what was picked (1, 2…)
        layer = _plainest(layer)
        _check(layer, in_ch, f"stages[{s}]")
    return layer


def _plainest(layer: dict[str, Any]) -> dict[str, Any]:
    """A basic block of conv ops with the layer's width, stride, kernel, dilation, attention and
    act: what builds when no repair above could (a bottleneck of width 1 has no inner width)."""
    kept = ("out", "stride", "kernel", "dilation", "attention", "act")
    return {**{k: layer[k] for k in kept if k in layer}, "block": "basic", "op": "conv"}


def _errors(layer: dict[str, Any], in_ch: int) -> SpecError | None:
    from blocknas.spaces.spec import LayerSpec

    try:
        BLOCKS.get(layer["block"]).check(in_ch, LayerSpec(**layer))
    except SpecError as e:
        return e
    except ValidationError as e:
        return spec_error(e, LayerSpec)
    return None


def _check(layer: dict[str, Any], in_ch: int, stage: str) -> None:
    err = _errors(layer, in_ch)
    if err is not None:  # a space whose fixed choices cannot be built at all
        raise err.at(stage)


def _repair_block(layer: dict[str, Any], in_ch: int, choices: list[str]) -> str:
    probe = {k: layer[k] for k in ("block", "out", "stride")}
    for block in [layer["block"], *choices, "basic"]:
        err = _errors({**probe, "block": block}, in_ch)
        if err is None or err.path not in ("out", "stride"):
            return block
    return "basic"


def _repair_op(layer: dict[str, Any], choices: list[str]) -> str:
    if not BLOCKS.get(layer["block"]).depthwise_op:
        return str(layer["op"])
    for op in [layer["op"], *choices, "conv"]:
        if OPS.get(op).depthwise_ok:
            return str(op)
    return "conv"


def _repair(
    layer: dict[str, Any], in_ch: int, field: str, wanted: Any, order: list[Any], last: Any
) -> Any:
    """``wanted`` if the layer builds with it, else the first candidate in ``order`` that does
    (for groups: smaller ones; for α: larger ones), else ``last``."""
    start = order.index(wanted)
    for value in [wanted, *order[start + 1 :], last]:
        if _errors({**layer, field: value}, in_ch) is None:
            return value
    return last
