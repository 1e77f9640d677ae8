"""Latency tables: parts keyed by fields and input shape, each distinct part measured once."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from blocknas import ArchSpec
from blocknas.cost.table import LatencyTable, parts, profile
from blocknas.spaces.schema import SearchSpace

ROOT = Path(__file__).resolve().parents[2]


class CountingTimer:
    """Returns a distinct, known value per call and remembers what it timed."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[int, ...]]] = []

    def __call__(self, module: nn.Module, x: torch.Tensor) -> float:
        self.calls.append((type(module).__name__, tuple(x.shape)))
        with torch.no_grad():
            module(x)  # the module really runs on the recorded input shape
        return float(len(self.calls))


def spec(**extra: Any) -> ArchSpec:
    return ArchSpec.from_dict(
        {
            "version": 1,
            "input": [3, 16, 16],
            "num_classes": 10,
            "stem": {"out": 16},
            "layers": [
                {"block": "basic", "out": 16},
                {"block": "basic", "out": 16},  # same block, same shape: one entry
                {"block": "bottleneck", "op": "acb", "out": 32, "stride": 2, "adaptor": True},
            ],
            **extra,
        }
    )


def test_parts_carry_input_shapes_and_share_keys() -> None:
    ps = parts(spec())
    kinds = [json.loads(p.key)["part"] for p in ps]
    assert kinds == ["stem", "block", "block", "adaptor", "block", "head"]
    assert ps[1].key == ps[2].key and ps[1].input_shape == (1, 16, 16, 16)
    adaptor = json.loads(ps[3].key)
    assert adaptor["in"] == [16, 16, 16] and ps[4].input_shape[1:] == (16, *adaptor["size"])


def test_each_distinct_part_is_measured_once_and_summed() -> None:
    timer = CountingTimer()
    table = LatencyTable(device="cpu", threads=1)
    assert table.add(spec(), timer) == 5
    assert len(timer.calls) == 5 and len(table.entries) == 5
    assert table.add(spec(), timer) == 0  # nothing new
    # basic block at 16×16 counted twice in the prediction, measured once
    ps = parts(spec())
    assert table.predict(spec()) == sum(table.entries[p.key] for p in ps)
    assert table.predict(spec()) > sum(table.entries.values())


def test_unknown_part_is_a_one_line_error() -> None:
    table = LatencyTable(device="cpu", threads=1)
    with pytest.raises(ValueError, match=r"no entry for 6 of the spec's 6 parts") as info:
        table.predict(spec())
    assert "\n" not in str(info.value)


def test_save_load_round_trip(tmp_path: Path) -> None:
    table = LatencyTable(device="cpu", threads=2, batch=4)
    table.add(spec(), CountingTimer())
    path = tmp_path / "t.json"
    table.save(path)
    again = LatencyTable.load(path)
    assert (again.device, again.threads, again.batch) == ("cpu", 2, 4)
    assert again.entries == table.entries
    assert again.predict(spec()) == table.predict(spec())
    path.write_text("{not json")
    with pytest.raises(ValueError, match="not a latency table"):
        LatencyTable.load(path)
    with pytest.raises(ValueError, match="cannot read latency table"):
        LatencyTable.load(tmp_path / "missing.json")


def test_profile_covers_sampled_specs() -> None:
    space = SearchSpace.from_file(ROOT / "examples" / "digits.yaml")
    table = LatencyTable(device="cpu", threads=1)
    timer = CountingTimer()
    done: list[int] = []
    measured = profile(space, table, samples=6, timer=timer, progress=lambda d, _t: done.append(d))
    assert done == [1, 2, 3, 4, 5, 6]
    assert measured == len(timer.calls) == len(table.entries)
    keys = {p.key for seed in range(6) for p in parts(space.sample_random(seed))}
    assert set(table.entries) == keys
    for seed in range(6):
        assert table.predict(space.sample_random(seed)) > 0


def test_real_timer_gives_positive_latencies() -> None:
    table = LatencyTable(device="cpu", threads=1)
    table.add(spec())
    assert all(ms > 0 for ms in table.entries.values())
