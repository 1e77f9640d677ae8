"""The search config: the examples load, defaults hold, bad input is one line naming the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from blocknas import SpecError
from blocknas.search.config import SearchConfig
from blocknas.search.study import open_study

ROOT = Path(__file__).resolve().parents[2]
SPACE = {"input": [1, 8, 8], "num_classes": 10, "stages": [{"depth": 1, "out": 8}]}


@pytest.mark.parametrize("name", ["digits", "cifar10"])
def test_examples_are_full_search_configs(name: str) -> None:
    cfg = SearchConfig.from_file(ROOT / "examples" / f"{name}.yaml")
    assert cfg.name == name
    assert cfg.objectives[0].metric == "val_accuracy"
    assert cfg.budgets.limits()["macs"] > 0
    assert cfg.storage_url() == f"sqlite:///runs/{name}/study.db" or cfg.storage is not None


def test_defaults() -> None:
    cfg = SearchConfig.from_dict({"name": "x", "space": SPACE})
    assert [(o.metric, o.direction) for o in cfg.objectives] == [
        ("val_accuracy", "maximize"),
        ("deploy_macs", "minimize"),
    ]
    assert cfg.budgets.limits() == {} and not cfg.predicts_latency()
    assert cfg.search.sampler == "nsga2" and cfg.resources.gpus == 0
    latency = SearchConfig.from_dict(
        {"name": "x", "space": SPACE, "budgets": {"latency_ms": 2, "macs": 1e6}}
    )
    assert list(latency.budgets.limits()) == ["macs", "latency_ms"] and latency.predicts_latency()
    objective_only = SearchConfig.from_dict(
        {"name": "x", "space": SPACE, "objectives": ["val_accuracy", "latency_ms"]}
    )
    assert not objective_only.predicts_latency()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"objectives": ["accuracy"]}, "objectives"),
        ({"budgets": {"macs": -1}}, "budgets.macs"),
        ({"search": {"sampler": "cmaes"}}, "search.sampler"),
        ({"resources": {"gpus": -0.5}}, "resources.gpus"),
        ({"train": {"lr": 0}}, "train.lr"),
        ({"bogus": 1}, "bogus"),
        ({"objectives": ["val_accuracy", "val_accuracy"]}, "twice"),
    ],
)
def test_bad_fields_are_one_line_errors(change: dict[str, object], message: str) -> None:
    with pytest.raises(SpecError) as e:
        SearchConfig.from_dict({"name": "x", "space": SPACE} | change)
    assert message in str(e.value) and "\n" not in str(e.value)


def test_resume_refuses_other_objectives(tmp_path: Path) -> None:
    base = {"name": "x", "space": SPACE, "results": str(tmp_path)}
    open_study(SearchConfig.from_dict(base), resume=False)
    other = SearchConfig.from_dict(base | {"objectives": ["val_accuracy", "deploy_params"]})
    with pytest.raises(ValueError, match="created with other objectives"):
        open_study(other, resume=True)
    assert open_study(SearchConfig.from_dict(base), resume=True).study_name == "x"
