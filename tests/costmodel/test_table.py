"""Latency tables: the shared parts keyed by fields and input shape, each measured once alone."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from blocknas import ArchSpec
from blocknas.costmodel.table import LatencyTable, parts, profile
from blocknas.spaces import FrozenShapeAdaptor, ShapeAdaptor
from blocknas.spaces.builder import network_parts
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


def test_parts_are_the_shared_decomposition_with_input_shapes() -> None:
    ps = parts(spec())
    assert [p.key for p in ps] == [p.key for p in network_parts(spec())]
    kinds = [json.loads(p.key)["part"] for p in ps]
    assert kinds == ["stem", "block", "block", "adaptor", "block", "head"]
    assert ps[1].entry == ps[2].entry and ps[1].input_shape == (1, 16, 16, 16)
    assert ps[3].input_shape == (1, 16, 16, 16)
    adaptor = ps[3].part.make()
    assert isinstance(adaptor, ShapeAdaptor)
    assert ps[4].input_shape[1:] == (16, *adaptor.output_size(16, 16))
    entry = json.loads(ps[4].entry)
    assert entry["in"] == list(ps[4].input_shape[1:]) and entry["part"] == json.loads(ps[4].key)
    assert [p.input_shape[0] for p in parts(spec(), batch=4)] == [4] * 6


def test_each_distinct_part_is_measured_once_and_summed() -> None:
    timer = CountingTimer()
    table = LatencyTable(device="cpu", threads=1)
    assert table.add(spec(), timer) == 5
    assert len(timer.calls) == 5 and len(table.entries) == 5
    assert table.add(spec(), timer) == 0  # nothing new
    # basic block at 16×16 counted twice in the prediction, measured once
    ps = parts(spec())
    assert table.predict(spec()) == sum(table.entries[p.entry] for p in ps)
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
    keys = {p.entry for seed in range(6) for p in parts(space.sample_random(seed))}
    assert set(table.entries) == keys
    for seed in range(6):
        assert table.predict(space.sample_random(seed)) > 0


def test_each_part_is_timed_alone_in_deploy_form_at_its_input_shape() -> None:
    timed: list[tuple[nn.Module, tuple[int, ...]]] = []

    def timer(module: nn.Module, x: torch.Tensor) -> float:
        timed.append((module, tuple(x.shape)))
        return 1.0

    LatencyTable(device="cpu", threads=1, batch=2).add(spec(), timer)
    distinct = list({p.entry: p for p in parts(spec(), batch=2)}.values())
    assert [shape for _, shape in timed] == [p.input_shape for p in distinct]
    for module, _ in timed:
        assert not module.training
        assert not any(isinstance(m, (nn.BatchNorm2d, ShapeAdaptor)) for m in module.modules())
    assert isinstance(timed[2][0], FrozenShapeAdaptor)  # stem, basic block, adaptor, …


def test_version_1_table_asks_for_a_new_profile(tmp_path: Path) -> None:
    path = tmp_path / "old.json"
    path.write_text(json.dumps({"version": 1, "device": "cpu", "threads": 1, "batch": 1}))
    with pytest.raises(ValueError, match=r"version-1 latency table.*re-run `blocknas profile`"):
        LatencyTable.load(path)
    path.write_text(json.dumps({"version": 7}))
    with pytest.raises(ValueError, match=r"not a version-2 latency table \(version=7\)$"):
        LatencyTable.load(path)


def test_adding_parts_leaves_the_global_rng_alone() -> None:
    torch.manual_seed(123)
    state = torch.get_rng_state()
    LatencyTable(device="cpu", threads=1).add(spec(), lambda module, x: 1.0)
    assert torch.equal(torch.get_rng_state(), state)


def test_real_timer_gives_positive_latencies() -> None:
    table = LatencyTable(device="cpu", threads=1)
    table.add(spec())
    assert all(ms > 0 for ms in table.entries.values())
