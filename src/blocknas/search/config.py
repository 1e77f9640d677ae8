"""The search config: one YAML file with the space, objectives, budgets, training and resources.

Every section but ``name`` and ``space`` has defaults; ``docs/search.md`` explains each field.
Validation errors are one-line :class:`~blocknas.SpecError` naming the field path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    RootModel,
    ValidationError,
    field_validator,
    model_validator,
)

from blocknas.costmodel.memory import check_space_memory
from blocknas.metrics import METRICS
from blocknas.runners.config import DataConfig, Device, TrainConfig
from blocknas.spaces.errors import SpecError
from blocknas.spaces.fields import Bool, FilePath, Float, Int, as_fields, field_path
from blocknas.spaces.files import read_yaml
from blocknas.spaces.schema import SearchSpace
from blocknas.spaces.spec import ArchSpec, spec_error

SAMPLERS = ("nsga2", "tpe", "random", "gp")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Objective(_Model):
    """One objective: a metric of :data:`blocknas.metrics.METRICS` that has a direction."""

    metric: str
    direction: Literal["maximize", "minimize"] | None = None

    @field_validator("metric")
    @classmethod
    def _known(cls, v: str) -> str:
        METRICS.lookup(v, METRICS.objectives(), "objective")
        return v

    @model_validator(mode="after")
    def _direction(self) -> Objective:
        wanted = METRICS[self.metric].direction
        if self.direction is None:
            object.__setattr__(self, "direction", wanted)
        elif self.direction != wanted:
            raise ValueError(
                f"objective {self.metric!r} is always {wanted}d, not {self.direction}d"
            )
        return self


class Budgets(RootModel[dict[str, Float | None]]):
    """Limits, by metric name (``macs``, ``flops``, ``params``, ``latency_ms``); a candidate over
    any of them is never trained when the metric is known before training."""

    model_config = ConfigDict(frozen=True, allow_inf_nan=False)
    root: dict[str, Float | None] = Field(default_factory=dict)

    @field_validator("root")
    @classmethod
    def _known(cls, v: dict[str, float | None]) -> dict[str, float | None]:
        for name, limit in v.items():
            try:
                METRICS.lookup(name, METRICS.budgets(), "budget")
            except ValueError as e:
                raise SpecError(field_path((name,)), str(e)) from None
            if limit is not None and not limit > 0:
                raise SpecError(name, f"{name}={limit} must be > 0 (or null: no limit)")
        return v

    def limits(self) -> dict[str, float]:
        """The budgets that are set, in the metrics table's order (the constraints' order)."""
        return {m: float(v) for m in METRICS.budgets() if (v := self.root.get(m)) is not None}


class EarlyStopping(_Model):
    """Which stopping rule, and its settings (``docs/search.md``; ``search/early_stop.py``).

    ``halving`` (default): multi-objective successive halving (``min_epoch``, ``eta``,
    ``min_trials``); ``dominance``: stop when ``min_dominators`` cheaper trials are more
    accurate (``min_epoch``, ``min_dominators``, ``cost_tolerance``, ``margin``). A setting of
    the other rule is an error, not silently ignored.
    """

    enabled: Bool = True
    rule: Literal["halving", "dominance"] = "halving"
    min_epoch: Int | None = Field(None, ge=1)  # first decision (halving: 1, dominance: 2)
    eta: Float | None = Field(None, gt=1.0)  # halving: keep the best 1/eta at each rung (2.5)
    min_trials: Int | None = Field(None, ge=2)  # halving: judge a rung from this many on (2)
    min_dominators: Int | None = Field(None, ge=1)  # dominance (3)
    cost_tolerance: Float | None = Field(None, ge=0.0)  # dominance (0.1)
    margin: Float | None = Field(None, ge=0.0)  # dominance (0.01)

    @model_validator(mode="after")
    def _one_rule(self) -> EarlyStopping:
        other = RULE_FIELDS["dominance" if self.rule == "halving" else "halving"]
        other = other - RULE_FIELDS[self.rule]
        wrong = sorted(f for f in self.model_fields_set & other if getattr(self, f) is not None)
        if wrong:
            raise ValueError(
                f"{', '.join(wrong)} belong(s) to the other rule, not to rule {self.rule!r}; "
                f"{self.rule} takes {', '.join(sorted(RULE_FIELDS[self.rule]))}"
            )
        return self

    def settings(self) -> dict[str, Any]:
        """The rule's settings that are set (the rule's own defaults fill the others)."""
        return {f: v for f in RULE_FIELDS[self.rule] if (v := getattr(self, f)) is not None}


RULE_FIELDS = {
    "halving": {"min_epoch", "eta", "min_trials"},
    "dominance": {"min_epoch", "min_dominators", "cost_tolerance", "margin"},
}


class SearchSettings(_Model):
    sampler: Literal["nsga2", "tpe", "random", "gp"] = "tpe"
    trials: Int = Field(20, ge=1)  # trained trials; rejected candidates do not count
    concurrency: Int = Field(2, ge=1)
    seed: Int = 0
    population: Int | None = Field(None, ge=2)  # NSGA-II population (default: Optuna's 50)
    max_rejections: Int = Field(2000, ge=1)  # candidates over budget in a row before giving up
    max_failures: Int = Field(2, ge=0)  # retries of a trial whose worker died
    # warm start: specs trained first (a preset name, a spec file, or an inline spec mapping)
    seed_specs: list[str | dict[str, Any]] = Field(default_factory=list)
    # and the space's cheapest architecture first of all (anchors the cheap end of the front)
    warm_start: Literal["cheapest", "none"] = "cheapest"
    early_stopping: EarlyStopping = Field(default_factory=EarlyStopping)


class Resources(_Model):
    """What one trial gets; fractional GPUs share a device between trials."""

    cpus: Float = Field(1.0, gt=0)
    gpus: Float = Field(0.0, ge=0)


class LatencySettings(_Model):
    device: Device = "cpu"  # where latency is predicted and measured
    threads: Int = Field(1, ge=1)
    batch: Int = Field(1, ge=1)
    # the latency predictor file (`blocknas profile`); by default
    # <results>/<name>/latency_<device>.json, profiled from the space when missing
    table: FilePath | None = None
    samples: Int = Field(120, ge=8)  # training specs profiled when the search builds a predictor
    holdout: Int = Field(30, ge=0)  # held-out specs it reports its error on


class SearchConfig(_Model):
    """A whole search.

    >>> cfg = SearchConfig.from_dict({"name": "demo", "space": {"input": [1, 8, 8],
    ...     "num_classes": 10, "stages": [{"depth": 1, "out": 16}]}})
    >>> [o.metric for o in cfg.objectives], cfg.search.sampler, cfg.storage_url()
    (['accuracy', 'macs'], 'tpe', 'sqlite:///runs/demo/study.db')
    """

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    space: SearchSpace
    objectives: list[Objective] = Field(
        default_factory=lambda: [Objective(metric="accuracy"), Objective(metric="macs")],
        min_length=1,
    )
    budgets: Budgets = Field(default_factory=Budgets)
    data: DataConfig = Field(default_factory=DataConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    search: SearchSettings = Field(default_factory=SearchSettings)
    resources: Resources = Field(default_factory=Resources)
    latency: LatencySettings = Field(default_factory=LatencySettings)
    # an Optuna RDB URL; default: SQLite under results/<name>/
    storage: str | None = Field(None, min_length=1)
    results: FilePath = Path("runs")  # Ray Tune results, checkpoints, latency table

    @field_validator("space", mode="before")
    @classmethod
    def _space_keys(cls, v: Any) -> Any:
        # SearchSpace has its own __init__, which pydantic calls with **v: string keys only
        return as_fields(v, "a space") if isinstance(v, dict) else v

    @field_validator("objectives", mode="before")
    @classmethod
    def _short_form(cls, v: Any) -> Any:
        return [{"metric": o} if isinstance(o, str) else o for o in v] if isinstance(v, list) else v

    @model_validator(mode="after")
    def _consistent(self) -> SearchConfig:
        metrics = [o.metric for o in self.objectives]
        if len(set(metrics)) != len(metrics):
            raise ValueError(f"objectives name a metric twice: {metrics}")
        self.seeds()  # every seed spec must load and lie in the space: fail now, not mid-search
        try:  # a space reaching absurd widths: refused now, not when a trial builds one
            check_space_memory(self.space)
        except SpecError as e:
            raise e.at("space") from None
        return self

    def seeds(self) -> list[tuple[str, dict[str, Any]]]:
        """``search.seed_specs`` as (label, trial parameters of the space), in order.

        >>> cfg = SearchConfig.from_dict({"name": "s", "space": {"input": [3, 32, 32],
        ...     "num_classes": 10, "stem": {"out": 16}, "stages": [{"depth": [1, 3], "out": 16},
        ...     {"depth": 3, "out": 32, "stride": 2}, {"depth": 3, "out": 64, "stride": 2}]},
        ...     "search": {"seed_specs": ["resnet20_cifar"]}})
        >>> cfg.seeds()
        [('resnet20_cifar', {'s0.depth': 3})]
        """
        from blocknas.spaces import presets
        from blocknas.spaces.seeds import params_for

        out = []
        for i, item in enumerate(self.search.seed_specs):
            where = f"search.seed_specs[{i}]"
            try:
                if isinstance(item, dict):
                    label, spec = f"inline {i}", ArchSpec.from_dict(item)
                elif item in presets.names():
                    space = self.space
                    label = item
                    spec = presets.get(item, num_classes=space.num_classes, input=space.input)
                else:
                    label, spec = Path(item).stem, ArchSpec.from_file(item)
                out.append((label, params_for(self.space, spec)))
            except SpecError as e:
                raise e.at(where) from None
        return out

    # --- reading -----------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: Any) -> SearchConfig:
        try:
            return cls(**as_fields(data, "a search config"))
        except ValidationError as e:
            raise spec_error(e, cls) from None

    @classmethod
    def from_file(cls, path: str | Path) -> SearchConfig:
        data = read_yaml(path, "search config")  # its errors name the file already
        try:
            return cls.from_dict(data)
        except SpecError as e:
            raise SpecError(f"{path}: {e.path}" if e.path else str(path), e.message) from None

    # --- derived -----------------------------------------------------------------------------
    @property
    def run_dir(self) -> Path:
        """Where this search writes: results/<name>/."""
        return self.results / self.name

    def storage_url(self) -> str:
        return self.storage or f"sqlite:///{self.run_dir / 'study.db'}"

    def predicts_latency(self) -> bool:
        """Whether candidates get a latency predicted before training: whenever a predicted
        metric is an objective or a budget (the budget rejects before training, early stopping
        compares costs from the first epoch), or when a predictor file is given."""
        named = [o.metric for o in self.objectives] + list(self.budgets.limits())
        return any(METRICS[m].predicted for m in named) or self.latency.table is not None
