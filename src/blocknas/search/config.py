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

from blocknas.metrics import METRICS
from blocknas.runners.config import DataConfig, TrainConfig
from blocknas.spaces.errors import SpecError
from blocknas.spaces.schema import SearchSpace
from blocknas.spaces.spec import read_yaml, spec_error

SAMPLERS = ("nsga2", "tpe", "random", "gp")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


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


class Budgets(RootModel[dict[str, float | None]]):
    """Limits, by metric name (``macs``, ``flops``, ``params``, ``latency_ms``); a candidate over
    any of them is never trained when the metric is known before training."""

    model_config = ConfigDict(frozen=True)
    root: dict[str, float | None] = Field(default_factory=dict)

    @field_validator("root")
    @classmethod
    def _known(cls, v: dict[str, float | None]) -> dict[str, float | None]:
        for name, limit in v.items():
            try:
                METRICS.lookup(name, METRICS.budgets(), "budget")
            except ValueError as e:
                raise SpecError(str(name), str(e)) from None
            if limit is not None and not limit > 0:
                raise SpecError(name, f"{name}={limit} must be > 0 (or null: no limit)")
        return v

    def limits(self) -> dict[str, float]:
        """The budgets that are set, in the metrics table's order (the constraints' order)."""
        return {m: float(v) for m in METRICS.budgets() if (v := self.root.get(m)) is not None}


class EarlyStopping(_Model):
    enabled: bool = True
    min_epoch: int = Field(2, ge=1)  # grace period
    min_dominators: int = Field(2, ge=1)
    cost_tolerance: float = Field(0.1, ge=0.0)
    margin: float = Field(0.0, ge=0.0)


class SearchSettings(_Model):
    sampler: Literal["nsga2", "tpe", "random", "gp"] = "nsga2"
    trials: int = Field(20, ge=1)  # trained trials; rejected candidates do not count
    concurrency: int = Field(2, ge=1)
    seed: int = 0
    population: int | None = Field(None, ge=2)  # NSGA-II population (default: Optuna's 50)
    max_rejections: int = Field(2000, ge=1)  # candidates over budget in a row before giving up
    max_failures: int = Field(2, ge=0)  # retries of a trial whose worker died
    early_stopping: EarlyStopping = Field(default_factory=EarlyStopping)


class Resources(_Model):
    """What one trial gets; fractional GPUs share a device between trials."""

    cpus: float = Field(1.0, gt=0)
    gpus: float = Field(0.0, ge=0)


class LatencySettings(_Model):
    device: str = "cpu"  # where latency is predicted and measured
    threads: int = Field(1, ge=1)
    batch: int = Field(1, ge=1)
    table: Path | None = None  # default: <results>/<name>/latency_<device>.json, filled as needed


class SearchConfig(_Model):
    """A whole search.

    >>> cfg = SearchConfig.from_dict({"name": "demo", "space": {"input": [1, 8, 8],
    ...     "num_classes": 10, "stages": [{"depth": 1, "out": 16}]}})
    >>> [o.metric for o in cfg.objectives], cfg.search.sampler, cfg.storage_url()
    (['accuracy', 'macs'], 'nsga2', 'sqlite:///runs/demo/study.db')
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
    storage: str | None = None  # an Optuna RDB URL; default: SQLite under results/<name>/
    results: Path = Path("runs")  # Ray Tune results, checkpoints, latency table

    @field_validator("objectives", mode="before")
    @classmethod
    def _short_form(cls, v: Any) -> Any:
        return [{"metric": o} if isinstance(o, str) else o for o in v] if isinstance(v, list) else v

    @model_validator(mode="after")
    def _consistent(self) -> SearchConfig:
        metrics = [o.metric for o in self.objectives]
        if len(set(metrics)) != len(metrics):
            raise ValueError(f"objectives name a metric twice: {metrics}")
        return self

    # --- reading -----------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: Any) -> SearchConfig:
        if not isinstance(data, dict):
            raise SpecError(
                "config", f"a search config must be a mapping, got {type(data).__name__}"
            )
        try:
            return cls(**data)
        except ValidationError as e:
            raise spec_error(e) from None

    @classmethod
    def from_file(cls, path: str | Path) -> SearchConfig:
        try:
            return cls.from_dict(read_yaml(path, "search config"))
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
        """Whether candidates get a latency predicted from the table before training: for a
        budget on a predicted metric, or when a table is given. A latency objective alone needs
        no prediction: trained trials report their measured latency, and timing new parts costs
        seconds."""
        predicted = any(METRICS[m].predicted for m in self.budgets.limits())
        return predicted or self.latency.table is not None
