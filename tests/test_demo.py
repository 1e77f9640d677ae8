"""`make demo` as shipped: the digits search of examples/digits.yaml, end to end through the CLI
(real Ray, SQLite, training). Its time on 2 cores is recorded in docs/benchmarks.md, not here."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from blocknas import load_results, pareto_front
from blocknas.costmodel.profiling import read

ROOT = Path(__file__).resolve().parents[1]


def _search(cfg: dict[str, Any], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """``blocknas search`` of ``cfg`` (written to ``tmp_path``), run from ``tmp_path``."""
    path = tmp_path / f"{cfg['name']}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return subprocess.run(
        [sys.executable, "-m", "blocknas.cli", "search", str(path)],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=tmp_path,
    )


def test_demo_search_finds_a_front_of_at_least_five(tmp_path: Path) -> None:
    cfg = yaml.safe_load((ROOT / "examples" / "digits.yaml").read_text())
    cfg["results"] = str(tmp_path / "runs")  # everything else as shipped
    run = _search(cfg, tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    df = load_results(f"sqlite:///{tmp_path}/runs/digits/study.db")
    front = pareto_front(df)
    assert len(front) >= 5, run.stdout
    assert not set(front.number) & set(df[df.state == "pruned"].number)
    assert df.loc[df.number == 0, "warm_start"].item() == "cheapest"  # the anchor ran first
    assert "[seed cheapest]" in run.stderr
    s = df[df.launched]
    assert (
        len(s[s.state.isin(["complete", "pruned", "failed", "infeasible"])])
        == cfg["search"]["trials"]
    )
    # latency: a predictor profiled first, its held-out report shown, the budget checked twice
    predictor = read(tmp_path / "runs" / "digits" / "latency_cpu.json")
    assert predictor.model is not None and predictor.report is not None
    assert "latency: profiling 32 specs" in run.stderr and "within ±10%" in run.stderr
    over = int((s.state == "infeasible").sum())
    assert f"{over} launched trial{'' if over == 1 else 's'} over budget after training" in (
        run.stdout
    )
    rejected = df[~df.launched & (df.state == "infeasible")]
    assert rejected.reason.str.contains("latency_ms").any(), rejected.reason.tolist()


def test_cifar10_example_runs_with_its_latency_budget(tmp_path: Path) -> None:
    """examples/cifar10.yaml on a machine without a GPU: small CIFAR-10 files written here, a few
    one-epoch trials and a small predictor; the space, objectives and budgets as shipped."""
    from tests.runners.test_data import write_cifar

    write_cifar(tmp_path / "data", hundred=False)
    cfg = yaml.safe_load((ROOT / "examples" / "cifar10.yaml").read_text())
    assert cfg["budgets"]["latency_ms"] > 0  # the budget under test is the shipped one
    cfg["results"] = str(tmp_path / "runs")
    cfg["data"]["root"] = str(tmp_path / "data")
    cfg["train"] |= {"epochs": 1, "batch_size": 32, "workers": 0}
    cfg["search"] |= {"trials": 3, "concurrency": 1}
    cfg["search"]["early_stopping"] = {"enabled": False}
    cfg["resources"] = {"cpus": 1, "gpus": 0}
    cfg["latency"] |= {"samples": 8, "holdout": 2}
    run = _search(cfg, tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "latency: profiling 8 specs" in run.stderr and "within ±10%" in run.stderr
    df = load_results(f"sqlite:///{tmp_path}/runs/cifar10/study.db")
    launched = df[df.launched]
    assert len(launched) == 3 and (launched.latency_ms > 0).all()
    over = int((launched.state == "infeasible").sum())
    assert f"{over} launched trial{'' if over == 1 else 's'} over budget after training" in (
        run.stdout
    )
