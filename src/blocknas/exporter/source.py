"""Where an export's weights come from: the trial's own checkpoint, or a retrain from scratch.

Both give a :class:`Trained`: the training-form network (eval mode), its spec with the learned
Shape Adaptor sizes, the test accuracy recorded for it, and how it was trained. A retrain uses
the study's data and training settings with only the epochs changed, checkpoints every epoch
into the export's staging folder, and resumes from there when a killed export is run again.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from blocknas.runners.checkpoint import load_checkpoint, network
from blocknas.runners.config import DataConfig, TrainConfig
from blocknas.runners.data import DataSplits
from blocknas.runners.train import EpochReport, StepCallback, train
from blocknas.spaces import ArchSpec, Network

#: the float precision (relative) logits were computed at, by training precision
PRECISION = {"fp32": 1e-4, "bf16": 2.0**-7, "fp16": 2.0**-10}


@dataclass
class StudySettings:
    """What an export needs of the study's config: data, training and latency settings."""

    data: DataConfig
    train: TrainConfig
    split_seed: int
    gpus: float  # per trial: whether trials ran on CUDA
    latency: dict[str, Any] = field(default_factory=dict)  # device, threads, batch
    config: dict[str, Any] = field(default_factory=dict)  # the whole config, as recorded

    @classmethod
    def from_config(cls, config: dict[str, Any] | None, study: str) -> StudySettings:
        if not config:
            raise ValueError(
                f"study {study!r} records no search config (not written by blocknas search): "
                "its data and training settings are unknown"
            )
        return cls(
            data=DataConfig(**config.get("data", {})),
            train=TrainConfig(**config.get("train", {})),
            split_seed=int(config.get("search", {}).get("seed", 0)),
            gpus=float(config.get("resources", {}).get("gpus", 0.0)),
            latency=dict(config.get("latency", {})),
            config=config,
        )

    def load_data(self, spec: ArchSpec) -> DataSplits:
        """The study's dataset with the trials' validation split."""
        return self.data.load(spec.input, seed=self.split_seed)


@dataclass
class Trained:
    """The network to export, in training form, and what is known of its training."""

    model: Network
    spec: ArchSpec  # with the learned adaptor sizes
    test_accuracy: float  # as recorded for the trial, or measured after the retrain
    accuracy: float
    epochs: int
    source: dict[str, Any]  # what manifest.json and the card say about the weights
    precision: float  # relative precision its recorded accuracies were computed at


def precision_of(train_cfg: TrainConfig, on_cuda: bool) -> tuple[str, float]:
    """The precision a network's logits were evaluated at in training (AMP on CUDA only)."""
    if not on_cuda or train_cfg.amp == "off" or train_cfg.device == "cpu":
        return "fp32", PRECISION["fp32"]
    name = "fp16" if train_cfg.amp == "fp16" else "bf16"
    return name, PRECISION[name]


def resolve_checkpoint(recorded: str | None, storage: str, number: int) -> Path:
    """The trial's checkpoint: as recorded (relative to where the search ran), else beside a
    SQLite study (``<db folder>/checkpoints/<name>``), so an export works from any folder."""
    if not recorded:
        raise ValueError(f"trial {number} recorded no checkpoint; retrain it with --epochs N")
    tried = [Path(recorded)]
    if storage.startswith("sqlite:///"):
        db = Path(storage.removeprefix("sqlite:///").split("?")[0])
        tried.append(db.parent / "checkpoints" / Path(recorded).name)
    for path in tried:
        if path.is_file():
            return path
    where = " or ".join(str(p) for p in dict.fromkeys(tried))
    raise ValueError(
        f"trial {number}'s checkpoint is not at {where}; export from the folder the search ran "
        "in, or retrain with --epochs N"
    )


def from_checkpoint(row: dict[str, Any], storage: str, settings: StudySettings) -> Trained:
    """The trial's trained network as its checkpoint holds it (weights-only load)."""
    number = int(row["number"])
    path = resolve_checkpoint(row.get("checkpoint"), storage, number)
    data = load_checkpoint(path)
    model, spec = network(data, path)
    if spec.to_dict()["layers"] != ArchSpec.from_json(row["spec"]).to_dict()["layers"]:
        raise ValueError(f"{path} holds another architecture than trial {number}")
    recorded = row.get("test_accuracy")
    if recorded is None or (isinstance(recorded, float) and math.isnan(recorded)):
        recorded = data["metrics"].get("test_accuracy")
    if recorded is None:
        raise ValueError(f"trial {number} recorded no test accuracy; retrain it with --epochs N")
    train_cfg = TrainConfig(**data.get("config", {}))
    name, precision = precision_of(train_cfg, on_cuda=settings.gpus > 0)
    return Trained(
        model=model.eval(),
        spec=spec,
        test_accuracy=float(recorded),
        accuracy=float(row.get("accuracy", data["metrics"].get("accuracy", math.nan))),
        epochs=int(data["epoch"]),
        source={"weights": "trial checkpoint", "checkpoint": str(path), "precision": name},
        precision=precision,
    )


def retrain(
    row: dict[str, Any],
    settings: StudySettings,
    epochs: int,
    checkpoint: Path,
    *,
    on_step: StepCallback | None = None,
    on_epoch: Callable[[EpochReport], None] | None = None,
) -> Trained:
    """Train the trial's architecture from scratch for ``epochs`` with the study's settings;
    resumes from ``checkpoint`` when an earlier run of the same retrain left one."""
    spec = ArchSpec.from_json(row["spec"]).with_learned([])  # adaptors start afresh too
    train_cfg = TrainConfig(**{**settings.train.model_dump(), "epochs": epochs})
    if checkpoint.is_file():  # a killed export's retrain: resume it if it is this one
        left = load_checkpoint(checkpoint)
        if (
            left["config"].get("epochs") != epochs
            or left["spec"]["layers"] != spec.to_dict()["layers"]
        ):
            checkpoint.unlink()
    result = train(
        spec,
        settings.load_data(spec),
        train_cfg,
        on_step=on_step,
        on_epoch=on_epoch,
        checkpoint=checkpoint,
        resume=True,
    )
    on_cuda = next(result.model.parameters()).device.type == "cuda"
    name, precision = precision_of(train_cfg, on_cuda=on_cuda)
    return Trained(
        model=result.model.cpu().float().eval(),
        spec=result.spec,
        test_accuracy=float(result.metrics["test_accuracy"]),
        accuracy=float(result.metrics["accuracy"]),
        epochs=epochs,
        source={"weights": "retrained", "epochs": epochs, "precision": name},
        precision=precision,
    )
