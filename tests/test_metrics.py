"""The one table of metrics: lookups with one-line errors, derived values, how values are shown,
extension for a process or a block, and the documentation listing exactly its entries."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest

import blocknas
from blocknas.metrics import METRICS, RENAMED, Metric

ROOT = Path(__file__).resolve().parents[1]


def test_the_contract_names_and_directions() -> None:
    directions = {m.name: m.direction for m in METRICS}
    assert directions == {
        "accuracy": "maximize",
        "test_accuracy": None,
        "macs": "minimize",
        "flops": "minimize",
        "params": "minimize",
        "latency_ms": "minimize",
        "train_macs": None,
        "train_params": None,
    }
    assert METRICS.budgets() == ["macs", "flops", "params", "latency_ms"]
    assert set(RENAMED.values()) <= set(METRICS.names())


def test_cost_fields_are_metric_names() -> None:
    c = blocknas.cost(blocknas.presets.get("resnet20_cifar_acb", num_classes=10, input=(3, 32, 32)))
    assert set(c.to_dict()) <= set(METRICS.names())
    assert c.flops == 2 * c.macs and c.train_macs > c.macs and c.train_params > c.params


def test_lookup_errors_name_the_new_name_or_the_allowed_ones() -> None:
    with pytest.raises(ValueError, match="'deploy_macs' was renamed to 'macs'"):
        METRICS.lookup("deploy_macs", METRICS.objectives(), "objective")
    with pytest.raises(ValueError) as e:
        METRICS.lookup("test_accuracy", METRICS.objectives(), "objective")
    assert str(e.value) == (
        "unknown objective 'test_accuracy'; valid: accuracy, macs, flops, params, latency_ms"
    )


def test_complete_derives_missing_values_only() -> None:
    assert METRICS.complete({"macs": 5})["flops"] == 10
    assert METRICS.complete({"macs": 5, "flops": 7})["flops"] == 7  # a given value stays
    assert METRICS.complete({"params": 3})["flops"] is None  # unknown stays unknown


def test_show() -> None:
    assert METRICS["macs"].show(1234567) == "1.23M"
    assert METRICS["macs"].show(1234567, table=True) == "1,234,567"
    assert METRICS["accuracy"].show(math.nan) == "-" and METRICS["accuracy"].show(0.5) == "0.5000"
    assert METRICS.show("objective_0", 1.23456) == "1.235"


def test_extended_adds_for_a_block_and_refuses_clashes() -> None:
    extra = Metric("energy_mj", "energy", "mJ", "after", "minimize", budget=True)
    with METRICS.extended(extra):
        assert "energy_mj" in METRICS and "energy_mj" in METRICS.budgets()
    assert "energy_mj" not in METRICS
    for name in ("macs", "val_accuracy"):
        with (
            pytest.raises(ValueError, match="already defined"),
            METRICS.extended(Metric(name, name, "", "before", "minimize")),
        ):
            pass
    assert METRICS["macs"].budget  # the original entry survived the refused clash


def test_docs_list_exactly_the_table() -> None:
    text = (ROOT / "docs" / "results.md").read_text()
    section = text[text.index("## Metrics") : text.index("## States")]
    rows = re.findall(r"^\| `(\w+)` \| (\w+|\(report only\)) \|", section, flags=re.M)
    listed = {name: None if d == "(report only)" else d for name, d in rows}
    assert listed == {m.name: m.direction for m in METRICS}
