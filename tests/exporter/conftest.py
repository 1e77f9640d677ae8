"""One real small search of examples/digits.yaml that every export test reads.

Its first trial is a seed architecture with ACB, SPConv and a Shape Adaptor, so an explicit
export of such a trial is always possible; the other trials are sampled.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from blocknas import load_results
from blocknas.search.config import SearchConfig
from blocknas.search.run import run_search
from tests.cli import blocknas_cli

__all__ = ["Study", "blocknas_cli", "digits_config", "manifest"]

ROOT = Path(__file__).resolve().parents[2]

SEED = {
    "version": 1,
    "input": [1, 16, 16],
    "num_classes": 10,
    "stem": {"type": "conv", "out": 16, "kernel": 3},
    "layers": [
        {"block": "basic", "op": "acb", "out": 16},
        {"block": "bottleneck", "op": "spconv", "out": 32, "stride": 2, "alpha": 0.5},
        {"block": "basic", "op": "conv", "out": 48, "stride": 2},
    ],
    "head": {"conv": None, "dropout": 0.0},
}
SEED["layers"][1]["adaptor"] = True  # type: ignore[index]


@dataclass(frozen=True)
class Study:
    url: str
    name: str
    folder: Path  # where the search wrote (study.db, checkpoints/)

    def results(self) -> pd.DataFrame:
        return load_results(self.url, self.name)


def digits_config(results: Path, trials: int) -> dict[str, Any]:
    """examples/digits.yaml, smaller: fewer trials of 2 epochs, the ACB/SPConv/adaptor seed."""
    cfg = yaml.safe_load((ROOT / "examples" / "digits.yaml").read_text())
    cfg["name"] = "exp"
    cfg["results"] = str(results)
    cfg["train"]["epochs"] = 2
    cfg["search"]["trials"] = trials
    cfg["search"]["seed_specs"] = [SEED]
    cfg["search"]["early_stopping"] = {"enabled": False}  # the seed trial must complete
    cfg["budgets"].pop("latency_ms")  # the seed must train wherever its latency falls
    cfg["latency"] |= {"samples": 8, "holdout": 2}  # a small predictor: the objective needs one
    return cfg


@pytest.fixture(scope="session")
def study(tmp_path_factory: pytest.TempPathFactory) -> Study:
    results = tmp_path_factory.mktemp("export-search") / "runs"
    cfg = SearchConfig.from_dict(digits_config(results, trials=6))
    outcome = run_search(cfg, echo=lambda line: None)
    assert (outcome.results.state == "complete").sum() >= 2, outcome.describe()
    return Study(cfg.storage_url(), cfg.name, cfg.run_dir)


def manifest(folder: Path) -> dict[str, Any]:
    return json.loads((folder / "manifest.json").read_text())
