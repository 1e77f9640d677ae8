"""The trainer on the real digits data: metrics, determinism, adaptors, checkpoints, errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from blocknas import ArchSpec, to_deploy
from blocknas.runners.checkpoint import load_checkpoint, load_model
from blocknas.runners.config import TrainConfig
from blocknas.runners.data import DataSplits
from blocknas.runners.datasets import load_data
from blocknas.runners.train import EpochReport, TrainingError, train

SMALL: dict[str, Any] = {
    "version": 1,
    "input": [1, 8, 8],
    "num_classes": 10,
    "stem": {"out": 16},
    "layers": [{"block": "basic", "out": 16}, {"block": "basic", "out": 32, "stride": 2}],
}
FAST = TrainConfig(epochs=2, batch_size=64, lr=0.05, threads=1, workers=0)


@pytest.fixture(scope="module")
def digits8() -> DataSplits:
    return load_data("digits", input=(1, 8, 8))


def spec(**changes: Any) -> ArchSpec:
    return ArchSpec.from_dict({**SMALL, **changes})


def test_metrics_and_history(digits8: DataSplits) -> None:
    reports: list[EpochReport] = []
    steps: list[tuple[int, int]] = []
    result = train(
        spec(),
        digits8,
        FAST,
        on_epoch=reports.append,
        on_step=lambda done, total, _loss: steps.append((done, total)),
    )
    m = result.metrics
    for key in ("accuracy", "test_accuracy", "train_loss", "params", "macs", "train_macs"):
        assert key in m
    assert m["epochs"] == 2 and len(reports) == 2 and reports == result.history
    assert m["accuracy"] == reports[-1].accuracy > 0.5  # the last epoch's val accuracy
    assert m["latency_ms"] > 0 and m["wall_seconds"] > 0
    assert m["params"] < m["train_params"]  # BN folded in the deploy form
    # every step reported once, and the last one is the total
    assert [d for d, _ in steps] == list(range(1, len(steps) + 1)) and steps[-1][0] == steps[-1][1]
    assert reports[1].train_loss < reports[0].train_loss


def test_deterministic_on_cpu(digits8: DataSplits) -> None:
    a = train(spec(), digits8, FAST)
    b = train(spec(), digits8, FAST)
    assert [r.train_loss for r in a.history] == [r.train_loss for r in b.history]
    for (k, va), vb in zip(
        a.model.state_dict().items(), b.model.state_dict().values(), strict=True
    ):
        assert torch.equal(va, vb), k
    c = train(spec(), digits8, FAST.model_copy(update={"seed": 1}))
    assert c.history[0].train_loss != a.history[0].train_loss


def test_adaptors_learn_and_the_checkpointed_spec_rebuilds(tmp_path: Path) -> None:
    data = load_data("digits", input=(1, 16, 16))
    layers = [
        {"block": "basic", "out": 16},
        {"block": "basic", "out": 32, "adaptor": True},
        {"block": "basic", "out": 32, "adaptor": True},
    ]
    s = spec(input=[1, 16, 16], layers=layers)
    ckpt = tmp_path / "model.pt"
    result = train(s, data, FAST.model_copy(update={"epochs": 3}), checkpoint=ckpt)

    initial = torch.sigmoid(torch.tensor(result.model.adaptors["1"].alpha_init)).item()  # type: ignore[union-attr]
    sigmas = result.history[-1].sigmas
    assert len(sigmas) == 2 and all(abs(sg - initial) > 1e-3 for sg in sigmas)

    saved = load_checkpoint(ckpt)  # torch.load(weights_only=True) inside
    learned = saved["spec"]["adaptors"]["learned"]
    assert [a["layer"] for a in learned] == [1, 2]
    assert [a["sigma"] for a in learned] == pytest.approx(sigmas)
    assert saved["metrics"]["test_accuracy"] == result.metrics["test_accuracy"]
    assert torch.load(ckpt, weights_only=True)["epoch"] == 3

    rebuilt, rebuilt_spec = load_model(ckpt)
    assert rebuilt_spec.adaptors.learned == result.spec.adaptors.learned
    x = torch.randn(4, 1, 16, 16)
    with torch.no_grad():
        want = to_deploy(result.model.cpu())(x)
        got = to_deploy(rebuilt)(x)
    assert torch.allclose(want, got, atol=1e-5)
    # the costs were taken at the learned sizes
    sizes = [tuple(a["size"]) for a in learned]
    assert sizes[0] != (16, 16) or sizes[1] != (16, 16)


def test_resume_continues_where_it_stopped(digits8: DataSplits, tmp_path: Path) -> None:
    cfg = FAST.model_copy(update={"epochs": 4})
    straight = train(spec(), digits8, cfg)
    ckpt = tmp_path / "run.pt"
    first = train(spec(), digits8, cfg, checkpoint=ckpt, on_epoch=lambda r: r.epoch == 2)
    assert first.stopped_early and len(first.history) == 2
    state = torch.load(ckpt, weights_only=True)  # as a v1 checkpoint wrote its history
    for h in state["history"]:
        h["val_accuracy"] = h.pop("accuracy")
    torch.save(state, ckpt)
    resumed = train(spec(), digits8, cfg, checkpoint=ckpt, resume=True)
    assert [r.epoch for r in resumed.history] == [1, 2, 3, 4]
    assert resumed.history[0].accuracy == first.history[0].accuracy
    assert [r.train_loss for r in resumed.history] == pytest.approx(
        [r.train_loss for r in straight.history], rel=1e-6
    )
    with pytest.raises(ValueError, match="different architecture"):
        other = spec(layers=[{"block": "basic", "out": 16}])
        train(other, digits8, cfg, checkpoint=ckpt, resume=True)


def test_nan_loss_is_a_one_line_error(digits8: DataSplits) -> None:
    with pytest.raises(TrainingError, match=r"loss became (nan|inf) in epoch 1; lower train.lr"):
        train(spec(), digits8, FAST.model_copy(update={"lr": 1e30, "epochs": 1}))


def test_spec_must_fit_the_data(digits8: DataSplits) -> None:
    with pytest.raises(ValueError, match=r"spec input \[1, 16, 16\] does not match"):
        train(spec(input=[1, 16, 16]), digits8, FAST)
    with pytest.raises(ValueError, match="num_classes=7 but dataset 'digits' has 10"):
        train(spec(num_classes=7), digits8, FAST)


def test_adamw_warmup_label_smoothing(digits8: DataSplits) -> None:
    cfg = FAST.model_copy(
        update={"optimizer": "adamw", "lr": 3e-3, "warmup_epochs": 1, "label_smoothing": 0.1}
    )
    result = train(spec(), digits8, cfg)
    first, second = result.history
    assert first.lr > second.lr >= 0  # warm-up reached the peak, cosine brought it down
    assert result.metrics["accuracy"] > 0.5


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("amp", ["auto", "fp16"])
def test_cuda_amp_channels_last(digits8: DataSplits, amp: str) -> None:
    from blocknas.runners.recipe import amp_dtype

    cfg = FAST.model_copy(update={"device": "cuda", "amp": amp})
    want = torch.float16 if amp == "fp16" else torch.bfloat16
    assert amp_dtype(cfg, torch.device("cuda")) is want or not torch.cuda.is_bf16_supported()
    result = train(spec(), digits8, cfg)
    weight = next(p for p in result.model.parameters() if p.ndim == 4)
    assert weight.is_cuda and weight.is_contiguous(memory_format=torch.channels_last)
    assert result.metrics["accuracy"] > 0.5
    assert result.metrics["latency_ms"] > 0
