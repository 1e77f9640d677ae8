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
    assert cfg.objectives[0].metric == "accuracy"
    assert cfg.budgets.limits()["macs"] > 0
    assert cfg.storage_url() == f"sqlite:///runs/{name}/study.db" or cfg.storage is not None


def test_defaults() -> None:
    cfg = SearchConfig.from_dict({"name": "x", "space": SPACE})
    assert [(o.metric, o.direction) for o in cfg.objectives] == [
        ("accuracy", "maximize"),
        ("macs", "minimize"),
    ]
    assert cfg.budgets.limits() == {} and not cfg.predicts_latency()
    assert cfg.search.sampler == "tpe" and cfg.resources.gpus == 0
    latency = SearchConfig.from_dict(
        {"name": "x", "space": SPACE, "budgets": {"latency_ms": 2, "macs": 1e6}}
    )
    assert list(latency.budgets.limits()) == ["macs", "latency_ms"] and latency.predicts_latency()
    objective_only = SearchConfig.from_dict(
        {"name": "x", "space": SPACE, "objectives": ["accuracy", "latency_ms"]}
    )
    assert objective_only.predicts_latency()  # early stopping compares it from epoch 1


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"objectives": ["accuracy", "speed"]}, "objectives[1].metric: unknown objective 'speed'"),
        ({"objectives": ["test_accuracy"]}, "unknown objective 'test_accuracy'"),
        ({"objectives": [{"metric": "macs", "direction": "maximize"}]}, "always minimized"),
        ({"budgets": {"accuracy": 0.5}}, "budgets.accuracy: unknown budget 'accuracy'; valid:"),
        ({"budgets": {"macs": -1}}, "budgets.macs"),
        ({"search": {"sampler": "cmaes"}}, "search.sampler"),
        ({"resources": {"gpus": -0.5}}, "resources.gpus"),
        ({"train": {"lr": 0}}, "train.lr"),
        ({"bogus": 1}, "bogus"),
        ({"objectives": ["accuracy", "accuracy"]}, "twice"),
    ],
)
def test_bad_fields_are_one_line_errors(change: dict[str, object], message: str) -> None:
    with pytest.raises(SpecError) as e:
        SearchConfig.from_dict({"name": "x", "space": SPACE} | change)
    assert message in str(e.value) and "\n" not in str(e.value)


def test_resume_refuses_other_objectives(tmp_path: Path) -> None:
    base = {"name": "x", "space": SPACE, "results": str(tmp_path)}
    open_study(SearchConfig.from_dict(base), resume=False)
    other = SearchConfig.from_dict(base | {"objectives": ["accuracy", "params"]})
    with pytest.raises(ValueError, match="created with other objectives"):
        open_study(other, resume=True)
    assert open_study(SearchConfig.from_dict(base), resume=True).study_name == "x"


@pytest.mark.parametrize(
    ("old", "new"),
    [("val_accuracy", "accuracy"), ("deploy_macs", "macs"), ("deploy_params", "params")],
)
def test_v1_objective_names_name_their_v2_names(old: str, new: str) -> None:
    with pytest.raises(SpecError) as e:
        SearchConfig.from_dict({"name": "x", "space": SPACE, "objectives": ["accuracy", old]})
    message = str(e.value)
    assert message.startswith("objectives[1].metric: ") and "\n" not in message
    assert f"{old!r} was renamed to {new!r}" in message


def test_budgets_take_every_cost_of_the_metrics_table() -> None:
    cfg = SearchConfig.from_dict(
        {"name": "x", "space": SPACE, "budgets": {"flops": 8e6, "params": 1e5, "macs": None}}
    )
    assert cfg.budgets.limits() == {"flops": 8e6, "params": 1e5}  # null: no limit
    cfg = SearchConfig.from_dict({"name": "x", "space": SPACE, "objectives": ["accuracy", "flops"]})
    assert [o.direction for o in cfg.objectives] == ["maximize", "minimize"]


def test_resume_of_a_v1_study_reads_its_old_objective_names(tmp_path: Path) -> None:
    base = {"name": "x", "space": SPACE, "results": str(tmp_path)}
    study = open_study(SearchConfig.from_dict(base), resume=False)
    v1 = [{"metric": "val_accuracy", "direction": "maximize"}]
    study.set_user_attr("objectives", [*v1, {"metric": "deploy_macs", "direction": "minimize"}])
    again = open_study(SearchConfig.from_dict(base), resume=True)
    assert [o["metric"] for o in again.user_attrs["objectives"]] == ["accuracy", "macs"]
