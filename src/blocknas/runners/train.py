"""Train one ArchSpec: the loop every search trial runs.

The network's weights and its Shape Adaptors' α learn with separate optimizers (the adaptor
paper's setup). After each epoch the model is evaluated on the validation split and a
:class:`EpochReport` goes to the callback (the search forwards it to Ray Tune and its early
stopping). The test split is evaluated once, at the end, and never used for selection. Final
costs are taken from the spec carrying the learned adaptor sizes.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from blocknas.costmodel import cost, measure_latency
from blocknas.costmodel.memory import check_memory
from blocknas.metrics import RENAMED
from blocknas.runners.checkpoint import load_checkpoint, save_checkpoint
from blocknas.runners.config import TrainConfig
from blocknas.runners.data import DataSplits, Source, batches, num_examples
from blocknas.runners.recipe import (
    amp_dtype,
    autocast,
    make_optimizer,
    resolve_device,
    schedule,
)
from blocknas.spaces import ArchSpec, Network, build
from blocknas.spaces.files import first_line


class TrainingError(ValueError):
    """Training cannot go on (a non-finite loss); the message says where and what to try."""


@dataclass(frozen=True)
class EpochReport:
    """What one epoch produced; ``epoch`` counts from 1."""

    epoch: int
    train_loss: float
    train_accuracy: float
    val_loss: float
    accuracy: float  # on the validation split (contracts §5)
    lr: float
    seconds: float
    sigmas: list[float] = field(default_factory=list)  # the adaptors' σ, in layer order

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EpochReport:
        """A report as a checkpoint's history holds it (v1 names read as their v2 ones)."""
        return cls(**{RENAMED.get(k, k): v for k, v in data.items()})


@dataclass
class TrainResult:
    """A trained candidate: metrics, the spec with learned adaptors, the model, its history."""

    metrics: dict[str, Any]
    spec: ArchSpec
    model: Network
    history: list[EpochReport]
    stopped_early: bool = False


#: called after every epoch; returning True stops training (early stopping, a Tune scheduler)
EpochCallback = Callable[[EpochReport], bool | None]
#: called after every batch with (steps done, total steps, running training loss)
StepCallback = Callable[[int, int, float], None]


@torch.no_grad()
def evaluate(
    model: nn.Module,
    source: Source,
    data: DataSplits,
    *,
    device: torch.device,
    batch_size: int = 256,
    amp: torch.dtype | None = None,
    channels_last: bool = False,
    workers: int = 0,
) -> tuple[float, float]:
    """(mean cross-entropy, accuracy) of ``model`` over a split, in eval mode."""
    was_training = model.training
    model.eval()
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.long)
    n = 0
    for x, y in batches(
        source,
        batch_size=batch_size,
        mean=data.mean,
        std=data.std,
        device=device,
        channels_last=channels_last,
        workers=workers,
    ):
        with autocast(device, amp):
            logits = model(x)
        loss_sum += F.cross_entropy(logits.float(), y, reduction="sum")
        correct += (logits.argmax(1) == y).sum()
        n += len(y)
    model.train(was_training)
    if n == 0:
        raise ValueError(f"dataset {data.name!r}: a split to evaluate on is empty")
    return float(loss_sum) / n, float(correct) / n


def _sigmas(model: Network) -> list[float]:
    return [float(torch.sigmoid(a.detach())) for a in model.adaptor_parameters()]


class _Run:
    """Everything one training run owns: model, both optimizers and schedules, scaler, RNG."""

    def __init__(self, spec: ArchSpec, data: DataSplits, config: TrainConfig) -> None:
        self.spec, self.config = spec, config
        self.device = resolve_device(config.device)
        if config.threads is not None and self.device.type == "cpu":
            torch.set_num_threads(config.threads)
        self.amp = amp_dtype(config, self.device)
        self.channels_last = (
            config.channels_last if config.channels_last is not None else self.device.type == "cuda"
        )
        self.data = data.to(self.device)
        torch.manual_seed(config.seed)
        self.model = build(spec).to(self.device)
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.optimizer = make_optimizer(self.model, config)
        alphas = self.model.adaptor_parameters()
        self.adaptor_opt = (
            torch.optim.SGD(
                alphas, lr=config.adaptor_lr, momentum=config.adaptor_momentum, nesterov=True
            )
            if alphas
            else None
        )
        n_train = num_examples(self.data.train)
        self.drop_last = n_train > config.batch_size  # a last batch of 1 breaks BN on 1×1 maps
        self.steps_per_epoch = n_train // config.batch_size if self.drop_last else 1
        self.total = self.steps_per_epoch * config.epochs
        warmup = round(config.warmup_epochs * self.steps_per_epoch)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, schedule(self.total, warmup)
        )
        self.adaptor_sched = (
            torch.optim.lr_scheduler.LambdaLR(self.adaptor_opt, schedule(self.total, 0))
            if self.adaptor_opt is not None
            else None
        )
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp is torch.float16)
        self.generator = torch.Generator().manual_seed(config.seed)
        self.step = 0

    # --- resume ------------------------------------------------------------------------------
    def resume_state(self) -> dict[str, Any]:
        """What a resumed run needs besides the weights (all weights_only-loadable)."""
        return {
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "adaptor_optimizer": self.adaptor_opt.state_dict() if self.adaptor_opt else {},
            "adaptor_scheduler": self.adaptor_sched.state_dict() if self.adaptor_sched else {},
            "scaler": self.scaler.state_dict(),
            "rng": {"data": self.generator.get_state(), "torch": torch.get_rng_state()},
        }

    def load(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["state_dict"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if self.adaptor_opt is not None and self.adaptor_sched is not None:
            self.adaptor_opt.load_state_dict(state["adaptor_optimizer"])
            self.adaptor_sched.load_state_dict(state["adaptor_scheduler"])
        if state["scaler"]:
            self.scaler.load_state_dict(state["scaler"])
        self.generator.set_state(state["rng"]["data"])
        torch.set_rng_state(state["rng"]["torch"])
        self.step = int(state["epoch"]) * self.steps_per_epoch

    # --- one epoch ---------------------------------------------------------------------------
    def train_epoch(self, epoch: int, on_step: StepCallback | None) -> tuple[float, float]:
        """(mean training loss, training accuracy) of one pass over the training split."""
        cfg, model = self.config, self.model
        model.train()
        loss_sum = torch.zeros((), device=self.device)
        correct = torch.zeros((), device=self.device, dtype=torch.long)
        seen = 0
        for x, y in batches(
            self.data.train,
            batch_size=cfg.batch_size,
            mean=self.data.mean,
            std=self.data.std,
            device=self.device,
            shuffle=True,
            drop_last=self.drop_last,
            generator=self.generator,
            augment=cfg.augment,
            flip=self.data.flip,
            channels_last=self.channels_last,
            workers=cfg.workers,
        ):
            with autocast(self.device, self.amp):
                logits = model(x)
            loss = F.cross_entropy(logits.float(), y, label_smoothing=cfg.label_smoothing)
            self.optimizer.zero_grad(set_to_none=True)
            if self.adaptor_opt is not None:
                self.adaptor_opt.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            if self.adaptor_opt is not None and self.step % cfg.adaptor_every == 0:
                self.scaler.step(self.adaptor_opt)
            self.scaler.update()
            self.scheduler.step()
            if self.adaptor_sched is not None:
                self.adaptor_sched.step()
            self.step += 1
            loss_sum += loss.detach() * len(y)
            correct += (logits.detach().argmax(1) == y).sum()
            seen += len(y)
            if on_step is not None:
                on_step(self.step, self.total, float(loss_sum) / seen)
        train_loss = float(loss_sum) / max(seen, 1)
        if not math.isfinite(train_loss):
            raise TrainingError(
                f"the training loss became {train_loss} in epoch {epoch}; "
                f"lower train.lr (now {cfg.lr}) or check the data"
            )
        return train_loss, float(correct) / max(seen, 1)

    def evaluate(self, source: Source) -> tuple[float, float]:
        return evaluate(
            self.model,
            source,
            self.data,
            device=self.device,
            batch_size=max(self.config.batch_size, 256),
            amp=self.amp,
            channels_last=self.channels_last,
            workers=self.config.workers,
        )

    def save(self, path: Path, metrics: dict[str, Any], history: list[EpochReport]) -> None:
        save_checkpoint(
            path,
            spec=self.spec.with_learned(self.model.learned_adaptors()),
            model=self.model,
            metrics=metrics,
            epoch=history[-1].epoch,
            history=[h.to_dict() for h in history],
            config=self.config.model_dump(mode="json"),
            resume_state=self.resume_state(),
        )


def train(
    spec: ArchSpec,
    data: DataSplits,
    config: TrainConfig | None = None,
    *,
    on_epoch: EpochCallback | None = None,
    on_step: StepCallback | None = None,
    checkpoint: str | Path | None = None,
    resume: bool = False,
) -> TrainResult:
    """Train ``spec`` on ``data``; checkpoint after every epoch when ``checkpoint`` is a path.

    ``resume=True`` continues from ``checkpoint`` if it exists (it must hold the same spec).

    >>> from blocknas.runners.datasets import load_data
    >>> from blocknas.spaces.selftest import combination_spec
    >>> spec = combination_spec({"block": "plain", "out": 8}, size=8, width=8, in_ch=1,
    ...                         num_classes=10)
    >>> result = train(spec, load_data("digits", input=(1, 8, 8)), TrainConfig(epochs=1))
    >>> 0.0 <= result.metrics["accuracy"] <= 1.0 and result.metrics["epochs"] == 1
    True
    """
    config = config or TrainConfig()
    _check_fits(spec, data)
    check_memory(spec)  # refused before build() tries to allocate it
    run = _Run(spec, data, config)
    ckpt_path = Path(checkpoint) if checkpoint is not None else None
    history: list[EpochReport] = []
    if resume and ckpt_path is not None and ckpt_path.exists():
        state = load_checkpoint(ckpt_path)
        if state["spec"].get("layers") != spec.to_dict()["layers"]:
            raise ValueError(f"{ckpt_path}: the checkpoint holds a different architecture")
        try:
            run.load(state)
            history = [EpochReport.from_dict(h) for h in state["history"]]
        except (KeyError, TypeError, ValueError, RuntimeError, IndexError, AttributeError) as e:
            raise ValueError(
                f"{ckpt_path}: a damaged blocknas checkpoint, cannot resume from it "
                f"({type(e).__name__}: {first_line(e)})"
            ) from None

    t_start = time.perf_counter()
    stopped = False
    for epoch in range(len(history) + 1, config.epochs + 1):
        t0 = time.perf_counter()
        train_loss, train_acc = run.train_epoch(epoch, on_step)
        val_loss, val_acc = run.evaluate(run.data.val)
        report = EpochReport(
            epoch=epoch,
            train_loss=train_loss,
            train_accuracy=train_acc,
            val_loss=val_loss,
            accuracy=val_acc,
            lr=float(run.optimizer.param_groups[0]["lr"]),
            seconds=time.perf_counter() - t0,
            sigmas=_sigmas(run.model),
        )
        history.append(report)
        if ckpt_path is not None:
            run.save(ckpt_path, report.to_dict(), history)
        if on_epoch is not None and on_epoch(report):
            stopped = epoch < config.epochs
            break
    if not history:
        raise ValueError(f"{ckpt_path}: nothing to train, the run has no epochs")
    return _finish(run, history, time.perf_counter() - t_start, stopped, ckpt_path)


def _check_fits(spec: ArchSpec, data: DataSplits) -> None:
    if tuple(spec.input) != tuple(data.input_shape):
        raise ValueError(
            f"spec input {list(spec.input)} does not match the data's {list(data.input_shape)}"
        )
    if spec.num_classes != data.num_classes:
        raise ValueError(
            f"spec num_classes={spec.num_classes} but dataset {data.name!r} has "
            f"{data.num_classes} classes"
        )


def _finish(
    run: _Run, history: list[EpochReport], seconds: float, stopped: bool, ckpt: Path | None
) -> TrainResult:
    """Test accuracy (reported, never selected on) and the costs at the learned sizes."""
    test_loss, test_acc = run.evaluate(run.data.test)
    learned = run.spec.with_learned(run.model.learned_adaptors())
    latency = measure_latency(
        _plain_copy(run.model, learned),
        device=run.config.latency_device or run.device.type,
        batch=run.config.latency_batch,
        threads=run.config.latency_threads,
    )
    last = history[-1]
    metrics: dict[str, Any] = {  # the names of contracts §5, plus the losses and the time
        "accuracy": last.accuracy,
        "test_accuracy": test_acc,
        **cost(learned).to_dict(),
        "latency_ms": latency,
        "train_loss": last.train_loss,
        "val_loss": last.val_loss,
        "test_loss": test_loss,
        "epochs": last.epoch,
        "wall_seconds": seconds,
    }
    if ckpt is not None:
        run.save(ckpt, metrics, history)
    return TrainResult(metrics, learned, run.model, history, stopped_early=stopped)


def _plain_copy(model: Network, spec: ArchSpec) -> Network:
    """The trained weights in a fresh contiguous-format network (latency of the deployable)."""
    copy = build(spec)
    copy.load_state_dict({k: v.detach().cpu() for k, v in model.state_dict().items()})
    return copy.eval()
