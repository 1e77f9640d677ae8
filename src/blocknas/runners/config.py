"""Training settings: the ``train:`` and ``data:`` sections of a search config, validated.

Defaults follow common practice for small CNNs (SGD with Nesterov momentum, cosine schedule,
weight decay on conv/linear weights only) and the Shape Adaptor paper for α (its own SGD, lr 0.1,
momentum 0.9, Nesterov, no weight decay, cosine to 0).
"""

from __future__ import annotations

import re
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator

from blocknas.spaces.fields import Bool, FilePath, Float, Int, as_fields, show
from blocknas.spaces.files import read_yaml
from blocknas.spaces.spec import spec_error

if TYPE_CHECKING:
    from blocknas.runners.data import DatasetInfo, DataSplits


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None, where: str) -> Any:
        """Validate ``data``; errors become one-line SpecErrors under ``where`` (``train.lr``)."""
        try:
            return cls(**as_fields({} if data is None else data, "a section", where))
        except ValidationError as e:
            raise spec_error(e, cls).at(where) from None


def _device(value: Any, allowed: str = r"cpu|cuda(:\d+)?") -> Any:
    """``cpu``, ``cuda`` or ``cuda:N``; whether the device exists is checked where it is used
    (a search's driver may have no GPU that its workers have)."""
    if isinstance(value, str) and re.fullmatch(allowed, value):
        return value
    raise ValueError(f"{show(value)} is not a device; use cpu, cuda or cuda:N")


#: a torch device by name
Device = Annotated[str, BeforeValidator(_device)]
#: a torch device by name, or ``auto``: cuda when there is one, else cpu
AutoDevice = Annotated[str, BeforeValidator(partial(_device, allowed=r"auto|cpu|cuda(:\d+)?"))]


class DataConfig(_Model):
    """Which dataset to train on and where its files are."""

    name: str = "digits"
    root: FilePath | None = None  # None: ~/.cache/blocknas/data, torchvision's layout below it
    download: Bool = False  # torchvision datasets only
    val_fraction: Float = Field(0.1, gt=0.0, lt=0.5)
    memory_limit_mb: Int = Field(2048, ge=0)  # splits that fit live as tensors on the device

    @field_validator("name")
    @classmethod
    def _known(cls, name: str) -> str:
        from blocknas.runners.datasets import dataset

        dataset(name)  # a one-line error listing the datasets there are
        return name

    def load(self, input: tuple[int, ...] | list[int], *, seed: int) -> DataSplits:
        """The dataset as splits at ``input`` size; ``seed`` picks the val split."""
        from blocknas.runners.datasets import load_data

        return load_data(
            self.name,
            input=input,
            root=self.root,
            download=self.download,
            seed=seed,
            val_fraction=self.val_fraction,
            memory_limit_mb=self.memory_limit_mb,
        )

    def check(self, input: tuple[int, ...] | list[int], num_classes: int) -> DatasetInfo:
        """Check the data against a spec's ``input`` and ``num_classes`` without loading it.

        Cheap (file names only), so a search can fail before it starts any worker; raises a
        one-line DataError whose ``field`` names the field at fault.

        >>> DataConfig(name="digits").check([1, 8, 8], num_classes=10).num_classes
        10
        """
        from blocknas.runners.datasets import check_data

        return check_data(
            self.name,
            input=input,
            num_classes=num_classes,
            root=self.root,
            download=self.download,
        )


class TrainConfig(_Model):
    """How one candidate is trained.

    >>> TrainConfig(epochs=3, optimizer="adamw", lr=1e-3).nesterov
    True
    """

    epochs: Int = Field(10, ge=1)
    batch_size: Int = Field(128, ge=2)  # ≥ 2: BN on 1×1 attention features needs two samples
    optimizer: Literal["sgd", "adamw"] = "sgd"
    lr: Float = Field(0.1, gt=0.0)
    momentum: Float = Field(0.9, ge=0.0, lt=1.0)  # SGD only
    nesterov: Bool = True  # SGD only
    weight_decay: Float = Field(5e-4, ge=0.0)  # on conv/linear weights, not on BN or biases
    warmup_epochs: Float = Field(0.0, ge=0.0)  # linear warm-up, then cosine to 0
    label_smoothing: Float = Field(0.0, ge=0.0, lt=1.0)
    augment: Bool = True  # random crop (+ flip where the dataset allows it)
    # Shape Adaptor α: its own optimizer, the paper's defaults
    adaptor_lr: Float = Field(0.1, gt=0.0)
    adaptor_momentum: Float = Field(0.9, ge=0.0, lt=1.0)
    adaptor_every: Int = Field(1, ge=1)  # α steps every N batches (the paper's repo: 20)
    # where and how
    device: AutoDevice = "auto"  # auto: cuda when available, else cpu
    amp: Literal["auto", "bf16", "fp16", "off"] = "auto"  # auto: bf16 (or fp16) on CUDA, off on CPU
    channels_last: Bool | None = None  # None: on CUDA only
    threads: Int | None = Field(None, ge=1)  # CPU threads for this process
    workers: Int = Field(2, ge=0)  # DataLoader workers for datasets that stream
    seed: Int = 0
    # final metrics
    latency_device: Device | None = None  # None: the training device
    latency_batch: Int = Field(1, ge=1)
    latency_threads: Int | None = Field(None, ge=1)  # None: the training threads


def read_train_config(path: str | Path) -> tuple[DataConfig, TrainConfig]:
    """The ``data:`` and ``train:`` sections of a YAML config (each may be absent)."""
    data = read_yaml(path, "config")
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a config must be a mapping, got {type(data).__name__}")
    return (
        DataConfig.from_dict(data.get("data"), "data"),
        TrainConfig.from_dict(data.get("train"), "train"),
    )
