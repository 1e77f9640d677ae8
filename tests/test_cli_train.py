"""`blocknas train`: a JSON line of final metrics, a checkpoint, and one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from blocknas.cli import app

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "examples" / "specs" / "digits_small.yaml"
#: contracts §5's names, plus the losses and where the weights are
KEYS = {"accuracy", "test_accuracy", "macs", "params", "flops", "train_macs", "train_params"}
KEYS |= {"latency_ms", "train_loss", "val_loss", "test_loss", "epochs", "wall_seconds"}
KEYS |= {"checkpoint"}


def test_train_prints_metrics_and_writes_a_checkpoint(tmp_path: Path) -> None:
    ckpt = tmp_path / "small.pt"
    args = ["train", str(SPEC), "--data", "digits", "--epochs", "2", "--seed", "3", "-o", str(ckpt)]
    args += ["--batch-size", "32"]
    result = CliRunner().invoke(app, [*args, "--threads", "2"])
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(metrics) == KEYS
    assert metrics["epochs"] == 2 and metrics["checkpoint"] == str(ckpt)
    assert 0.5 < metrics["accuracy"] <= 1.0  # two epochs on digits already learn
    assert metrics["macs"] <= metrics["train_macs"] and metrics["flops"] == 2 * metrics["macs"]
    state = torch.load(ckpt, weights_only=True)
    assert state["metrics"]["test_accuracy"] == metrics["test_accuracy"]
    assert "epoch 2/2" in result.stderr


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "blocknas.cli", "train", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.parametrize(
    ("make_args", "message"),
    [
        (
            lambda tmp: [str(SPEC), "--data", "imagefolder", "--data-dir", str(tmp / "gone")],
            "is not a directory",
        ),
        (lambda tmp: [str(SPEC), "--epochs", "1", "--lr", "1e30", "-o", str(tmp / "x.pt")], "loss"),
        (lambda tmp: [str(tmp / "bad.yaml")], "groups"),
    ],
    ids=["missing-dataset-dir", "nan-loss", "unbuildable-spec"],
)
def test_train_errors_are_one_line(tmp_path: Path, make_args, message: str) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "bad.yaml").write_text(
        "version: 1\ninput: [1, 16, 16]\nnum_classes: 10\nstem: {out: 16}\n"
        "layers: [{block: bottleneck, out: 64, groups: 3}]\n"
    )
    proc = _run(*make_args(tmp_path))
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert lines[-1].startswith("error: ") and message in lines[-1], proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stdout == ""
