"""What a search records means one thing: the same numbers in every output, an objective added
through the metrics table alone, no trial pruned at its last epoch, failures that end the search.
Real Ray, real Optuna storage, real training on digits."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import optuna
import pytest
import yaml
from typer.testing import CliRunner

from blocknas import load_results, pareto_front
from blocknas.cli import app
from blocknas.metrics import METRICS, Metric
from blocknas.search.config import SearchConfig
from blocknas.search.results import summary
from blocknas.search.run import run_search
from blocknas.search.study import record
from blocknas.spaces.schema import SearchSpace
from tests.cli import search_cli
from tests.search.test_search import config

runner = CliRunner()

#: one architecture with an ACB layer and an SPConv layer: training and deploy forms differ
ONE_ARCH = {
    "input": [1, 8, 8],
    "num_classes": 10,
    "stem": {"out": 8},
    "stages": [
        {"depth": 1, "out": 16, "block": "basic", "op": "acb"},
        {"depth": 1, "out": 16, "stride": 2, "block": "basic", "op": "spconv", "alpha": 0.5},
    ],
}


def test_every_output_shows_the_same_macs_and_params(tmp_path: Path) -> None:
    spec_file = tmp_path / "spec.json"
    spec_file.write_text(SearchSpace.from_dict(ONE_ARCH).sample_random(0).to_json())
    cost = json.loads(runner.invoke(app, ["cost", str(spec_file), "--json"]).output)
    assert cost["train_macs"] > cost["macs"] and cost["train_params"] > cost["params"]
    assert cost["flops"] == 2 * cost["macs"]
    trained = runner.invoke(
        app, ["train", str(spec_file), "--epochs", "1", "-o", str(tmp_path / "one.pt")]
    )
    assert trained.exit_code == 0, trained.output
    line = json.loads(trained.stdout.strip().splitlines()[-1])
    keys = ("macs", "params", "train_macs", "train_params", "flops")
    assert {k: line[k] for k in keys} == {k: cost[k] for k in keys}

    cfg = config(tmp_path, search={"trials": 1, "concurrency": 1})
    cfg["space"], cfg["budgets"] = ONE_ARCH, {}
    outcome = run_search(SearchConfig.from_dict(cfg), echo=lambda _line: None)
    study = optuna.load_study(study_name="tiny", storage=outcome.storage)
    written = record(study.get_trials()[0])
    assert {k: written[k] for k in keys} == {k: cost[k] for k in keys}
    row = load_results(outcome.storage).iloc[0]
    assert {k: int(row[k]) for k in keys} == {k: cost[k] for k in keys}
    front = outcome.describe().splitlines()
    header = next(i for i, ln in enumerate(front) if ln.lstrip().startswith("#"))
    assert front[header].split()[3:5] == ["macs", "params"]
    assert front[header + 1].split()[3:5] == [f"{cost['macs']:,}", f"{cost['params']:,}"]


def test_an_objective_added_to_the_metrics_table_alone_is_optimised(tmp_path: Path) -> None:
    size = Metric(
        "size_kb", "size", "KiB", "before", "minimize", budget=True, style="float",
        derive=lambda m: None if m.get("params") is None else m["params"] * 4 / 1024,
    )  # fmt: skip
    with METRICS.extended(size):
        cfg = config(tmp_path, search={"sampler": "tpe", "trials": 4, "concurrency": 2})
        cfg["objectives"] = ["accuracy", "size_kb"]
        cfg["budgets"] = {"size_kb": 12.0}  # about half of this space is over it
        lines: list[str] = []
        outcome = run_search(SearchConfig.from_dict(cfg), echo=lines.append)
        df = outcome.results
        study = optuna.load_study(study_name="tiny", storage=outcome.storage)
    assert [d.name for d in study.directions] == ["MAXIMIZE", "MINIMIZE"]
    assert df.attrs["objectives"] == [("accuracy", "maximize"), ("size_kb", "minimize")]
    assert (df["size_kb"] == df["params"] * 4 / 1024).all()
    launched = df[df.launched]
    assert (launched.size_kb <= 12.0).all() and len(launched) == 4
    assert (df[~df.launched].reason.str.startswith("over budget: size_kb")).all()
    for t in study.get_trials(states=(optuna.trial.TrialState.COMPLETE,)):
        if record(t)["launched"]:  # the sampler was told the new metric
            assert t.values[1] == pytest.approx(record(t)["params"] * 4 / 1024)
    front = pareto_front(df)
    assert len(front) >= 1 and front.size_kb.is_monotonic_increasing
    assert any("size " in ln for ln in lines if ln.startswith("trial "))
    assert "size_kb" in outcome.describe()


def test_no_trial_is_pruned_at_its_last_planned_epoch(tmp_path: Path) -> None:
    eager = {"enabled": True, "rule": "dominance", "min_epoch": 1, "min_dominators": 1}
    eager |= {"cost_tolerance": 100.0, "margin": 0.0}  # every trial is comparable to every other
    cfg = config(tmp_path, search={"trials": 8, "early_stopping": eager})
    cfg["objectives"] = ["accuracy", "macs", "latency_ms"]  # latency predicted at launch
    cfg["latency"] = {"samples": 8, "holdout": 2}
    outcome = run_search(SearchConfig.from_dict(cfg), echo=lambda _line: None)
    df = outcome.results
    planned = cfg["train"]["epochs"]
    launched = df[df.launched]
    pruned = launched[launched.state == "pruned"]
    assert len(pruned) >= 1, launched[["number", "state", "accuracy", "epochs"]]
    assert (pruned.epochs < planned).all(), pruned[["number", "epochs", "reason"]]
    assert (pruned.latency_ms > 0).all() and pruned.accuracy.isna().all()  # predicted / partial
    at_last = launched[launched.epochs == planned]
    assert set(at_last.state) <= {"complete", "infeasible"}
    s = summary(df)
    assert s["epochs_planned"] == planned * len(launched)
    assert s["epochs_saved"] == int((planned - pruned.epochs).sum())
    assert f"saved {s['epochs_saved']} of {s['epochs_planned']} planned" in outcome.describe()


def test_data_that_cannot_load_ends_the_search_before_anything_starts(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    cfg["space"] = cfg["space"] | {"input": [3, 8, 8]}
    cfg["data"] = {"name": "cifar10", "root": "/nonexistent"}
    proc = search_cli(cfg, tmp_path)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: data.root: "), lines
    assert "/nonexistent" in lines[0] and "Traceback" not in proc.stderr
    assert not (tmp_path / "runs").exists()  # no study, no Ray results: nothing launched
    wrong = config(tmp_path) | {"space": config(tmp_path)["space"] | {"num_classes": 5}}
    result = runner.invoke(app, ["search", str(_write(tmp_path / "w.yaml", wrong))])
    assert result.exit_code == 2
    assert "space.num_classes: " in result.output and "10 classes" in result.output
    assert not (tmp_path / "runs").exists()


def _write(path: Path, cfg: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_a_search_in_which_every_trial_fails_exits_1_with_the_reasons(tmp_path: Path) -> None:
    cfg = config(tmp_path, train={"lr": 1e30, "epochs": 1}, search={"trials": 2})
    proc = search_cli(cfg, tmp_path)
    assert proc.returncode == 1, proc.stderr[-2000:]
    tail = proc.stderr[proc.stderr.index("no trial completed training") :].splitlines()
    assert tail[1].lstrip().startswith("2× TrainingError: the training loss became "), tail
    assert "Traceback" not in proc.stderr
    df = load_results(f"sqlite:///{tmp_path / 'runs' / 'tiny' / 'study.db'}")
    assert (df[df.launched].state == "failed").all()
