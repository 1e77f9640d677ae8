"""Fuzzed search configs: every mutation of an example config is accepted or refused in one line
naming the field, its train: and data: sections alike when read on their own (``blocknas train
--config``); and the bad values that once slipped through are refused."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given

from blocknas import SpecError
from blocknas.runners.config import DataConfig, TrainConfig
from blocknas.search.config import SearchConfig
from tests.fuzz import FUZZ, accepted_or_refused, check_refusal, one_of

ROOT = Path(__file__).resolve().parents[2]
BASES = {
    name: yaml.safe_load((ROOT / "examples" / f"{name}.yaml").read_text())
    for name in ("digits", "cifar10")
}
FIELDS = set(SearchConfig.model_fields)


@FUZZ
@given(one_of(BASES))
def test_a_mutated_config_is_accepted_or_refused_in_one_line(case: tuple[str, Any]) -> None:
    _, data = case
    fields = FIELDS | {str(k) for k in data}
    cfg = accepted_or_refused(lambda: SearchConfig.from_dict(data), fields)
    if cfg is not None:
        assert cfg.storage_url() and cfg.run_dir.name == cfg.name
        cfg.predicts_latency()
    for section, model in (("data", DataConfig), ("train", TrainConfig)):
        read = partial(model.from_dict, data.get(section), section)  # as `train --config` does
        accepted_or_refused(read, {section})


SPACE = BASES["digits"]["space"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"data": {"name": "imagenet"}}, "data.name: unknown dataset 'imagenet'; choose one of "),
        ({"search": {"trials": True}}, "search.trials: true is not an integer ≥ 1"),
        ({"search": {"trials": 2.5}}, "search.trials: 2.5 is not an integer ≥ 1"),
        ({"search": {"trials": 0}}, "search.trials: 0 is not an integer ≥ 1"),
        ({"train": {"lr": True}}, "train.lr: true is not a number > 0"),
        ({"train": {"lr": float("nan")}}, "train.lr: nan is not a finite number"),
        ({"train": {"augment": "yes"}}, "train.augment: 'yes' is not true or false"),
        ({"train": {"device": "gpu"}}, "train.device: 'gpu' is not a device; use cpu, cuda"),
        ({"latency": {"device": "auto"}}, "latency.device: 'auto' is not a device"),
        ({"results": ""}, "results: '' is not a path"),
        ({"latency": {"table": ""}}, "latency.table: '' is not a path"),
        ({"storage": ""}, "storage: '' must have at least 1 character"),
        ({"budgets": {"macs": True}}, "budgets.macs: true is a boolean, not a number"),
        ({"space": SPACE | {"num_classes": True}}, "space.num_classes: true is not an integer ≥ 1"),
        ({"budgets": {"macs": float("inf")}}, "budgets.macs: inf is not a finite number"),
        ({"space": SPACE | {"adaptors": {"r1": 0}}}, "space.adaptors.r1: 0 is not a number > 0"),
        ({"space": SPACE | {"layer": {"kernel": [3, 4]}}}, "space.layer.kernel[1]: kernel=4"),
        ({"space": SPACE | {"stem": {"kernel": []}}}, "space.stem.kernel: [] must have at least"),
    ],
)
def test_values_that_once_slipped_through_are_refused(change: dict[str, Any], message: str) -> None:
    with pytest.raises(SpecError) as e:
        SearchConfig.from_dict(BASES["digits"] | change)
    assert check_refusal(e.value, FIELDS).startswith(message), str(e.value)


def test_a_numeric_string_is_still_a_number() -> None:
    """PyYAML reads ``lr: 1e-3`` as the string "1e-3": it stays a float, as before."""
    cfg = SearchConfig.from_dict(BASES["digits"] | {"train": {"lr": "1e-3"}})
    assert cfg.train.lr == 1e-3


def test_a_space_too_wide_to_build_is_refused_when_read() -> None:
    stages = [{"depth": 1, "out": [16, 10**9], "stride": 2}]
    with pytest.raises(SpecError) as e:
        SearchConfig.from_dict(BASES["digits"] | {"space": SPACE | {"stages": stages}})
    message = check_refusal(e.value, FIELDS)
    assert message.startswith("space.stages[0]: its widest architecture: layers[0]: out=1000000000")
    assert "over the memory limit of 16 GiB (set BLOCKNAS_MAX_MEMORY_GB" in message
