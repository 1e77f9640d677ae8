"""Exports from a real search: picks, an explicit ACB/SPConv/adaptor trial, a retrain that is
killed and resumed, and every check passing with its measured error in metrics.json."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
import torch

import blocknas
from blocknas.exporter.package import FILES, MANIFEST, STAGING
from blocknas.exporter.pick import choose
from blocknas.exporter.verify import FORMAT_ATOL, FORMAT_RTOL
from blocknas.spaces import ArchSpec
from tests.exporter.conftest import Study, blocknas_cli, manifest

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated")
CHECKS = ("deploy_form", "torchscript", "torch.export", "onnx", "test_accuracy")


def check_package(out: Path, study: Study, trial: int) -> dict:
    """Every file of contracts §4, every check passed, and the package loads back right."""
    assert sorted(p.name for p in out.iterdir()) == sorted([*FILES, MANIFEST])
    metrics = json.loads((out / "metrics.json").read_text())
    checks = metrics["verification"]
    assert sorted(checks) == sorted(CHECKS)
    assert checks["deploy_form"]["max_abs_error"] <= checks["deploy_form"]["limit"]
    assert checks["deploy_form"]["limit"] == pytest.approx(
        1e-4 * checks["deploy_form"]["max_abs_output"]
    )
    for name in ("torchscript", "torch.export", "onnx"):
        assert checks[name]["tolerance_used"] <= 1.0 and checks[name]["top1_differences"] == 0
        assert checks[name]["test_examples"] == metrics["test_examples"] > 0
        assert len(set(checks[name]["batch_sizes"])) >= 3
    m = manifest(out)
    assert m["study"] == study.name and m["trial"] == trial
    assert m["versions"]["torch"] == metadata.version("torch")
    assert set(m["files"]) == set(FILES) and all(
        len(f["sha256"]) == 64 for f in m["files"].values()
    )
    # the deploy form, rebuilt from the package, computes what its TorchScript computes
    model = blocknas.load_exported(out)
    spec = ArchSpec.from_file(out / "spec.json")
    x = torch.randn(4, *spec.input)
    scripted = torch.jit.load(str(out / "model.ts"))
    with torch.no_grad():
        assert torch.allclose(model(x), scripted(x), rtol=FORMAT_RTOL, atol=FORMAT_ATOL)
    assert metrics["macs"] == blocknas.cost(spec).macs and metrics["latency_ms"] > 0
    return metrics


def test_pick_best_exports_with_every_check_passing(study: Study, tmp_path: Path) -> None:
    out = tmp_path / "best"
    proc = blocknas_cli(
        "export", "--storage", study.url, "--study", study.name, "--pick", "best", "--out", str(out)
    )
    assert proc.returncode == 0, proc.stderr
    df = study.results()
    best = choose(df, pick="best")
    metrics = check_package(out, study, best.number)
    front = blocknas.pareto_front(df[df.macs <= df.attrs["budgets"]["macs"]])
    assert best.number in set(front.number) and best.row["accuracy"] == front.accuracy.max()
    # the test accuracy recomputed from the package is the one the study recorded
    recorded = float(df.set_index("number").loc[best.number, "test_accuracy"])
    assert metrics["test_accuracy"] == pytest.approx(recorded, abs=1e-9)
    card = (out / "card.md").read_text()
    for needed in (
        "```mermaid",
        "test_accuracy",
        "latency measured on",
        "torch.jit.load",
        "onnxruntime",
    ):
        assert needed in card
    assert manifest(out)["source"]["weights"] == "trial checkpoint"


def _rich_trial(study: Study) -> int:
    """A complete trial whose architecture has ACB, SPConv and a Shape Adaptor."""
    df = study.results()
    for row in df[df.state == "complete"].itertuples():
        spec = ArchSpec.from_json(row.spec)
        ops = {layer.op for layer in spec.layers}
        if {"acb", "spconv"} <= ops and any(layer.adaptor for layer in spec.layers):
            return int(row.number)
    raise AssertionError("the seed trial (ACB, SPConv, adaptor) did not complete")


def test_explicit_trial_with_acb_spconv_and_adaptor(study: Study, tmp_path: Path) -> None:
    number = _rich_trial(study)
    out = blocknas.export(study.url, study.name, trial=number, out=tmp_path / "rich")
    check_package(out, study, number)
    spec = ArchSpec.from_file(out / "spec.json")
    assert len(spec.adaptors.learned) == 1  # frozen at the learned size
    deployed = blocknas.load_exported(out)
    kinds = {type(m).__name__ for m in deployed.modules()}
    assert "FrozenShapeAdaptor" in kinds and "ShapeAdaptor" not in kinds
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in deployed.modules())  # all folded


def test_a_killed_retrain_resumes_and_exports(study: Study, tmp_path: Path) -> None:
    number = _rich_trial(study)
    out = tmp_path / "retrained"
    args = ["-m", "blocknas.cli", "export", "--storage", study.url, "--study", study.name]
    args += ["--trial", str(number), "--epochs", "3", "--out", str(out)]
    proc = subprocess.Popen(
        [sys.executable, *args], stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    assert proc.stderr is not None
    for line in proc.stderr:
        if "epoch 1/3" in line:  # its checkpoint is written before the line
            os.killpg(proc.pid, signal.SIGKILL)
            break
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert (out / STAGING / "retrain.pt").is_file() and not (out / MANIFEST).exists()

    again = blocknas_cli(*args[2:])
    assert again.returncode == 0, again.stderr
    assert "(resuming)" in again.stderr
    assert "epoch 1/3" not in again.stderr and "epoch 3/3" in again.stderr
    metrics = check_package(out, study, number)
    assert manifest(out)["source"] == {"weights": "retrained", "epochs": 3, "precision": "fp32"}
    assert "retrained from scratch for 3 epochs" in (out / "card.md").read_text()
    assert 0.0 < metrics["test_accuracy"] <= 1.0


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_a_retrain_on_cuda_exports_and_verifies_on_cpu(study: Study, tmp_path: Path) -> None:
    """The study says device auto and amp auto: the retrain runs on the GPU in mixed precision,
    the checks on CPU in fp32, the test accuracy within bf16's (or fp16's) near-ties."""
    number = _rich_trial(study)
    out = blocknas.export(study.url, study.name, trial=number, epochs=1, out=tmp_path / "gpu")
    check_package(out, study, number)
    assert manifest(out)["source"]["precision"] in ("bf16", "fp16")
