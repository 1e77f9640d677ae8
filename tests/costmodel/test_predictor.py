"""The latency predictor: real timings on a small space, parts never profiled predicted from their
features, files that say where they were measured and refuse anything else."""

from __future__ import annotations

import copy
import json
import math
import statistics
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from blocknas import ArchSpec
from blocknas.costmodel import breakdown
from blocknas.costmodel.features import entry, part_features, spec_parts
from blocknas.costmodel.linear import Linear
from blocknas.costmodel.predictor import LatencyPredictor, Target
from blocknas.costmodel.profiling import NOISY, profile, read, report_table, time_parts, write
from blocknas.costmodel.trees import Forest
from blocknas.spaces.schema import SearchSpace

SPACE = {
    "input": [1, 12, 12],
    "num_classes": 10,
    "stem": {"out": [8, 16]},
    "layer": {
        "block": ["plain", "basic", "inverted"],
        "op": ["conv", "dwsep", "acb"],
        "kernel": [3, 5],
        "attention": ["none", "se"],
    },
    "stages": [
        {"depth": [1, 2], "out": [8, 16, 24]},
        {"depth": [1, 2], "out": [16, 32], "stride": 2, "adaptor": [False, True]},
    ],
    "adaptors": {"max": 1},
}


def space() -> SearchSpace:
    return SearchSpace.model_validate(SPACE)


@pytest.fixture(scope="module")
def profiled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, LatencyPredictor]]:
    """One real profile of the small space: 12 training specs and 3 held out, timed here."""
    path = tmp_path_factory.mktemp("lat") / "latency.json"
    steps: list[tuple[int, int]] = []
    predictor = profile(
        space(), path, Target.here("cpu", 1, 1), samples=12, holdout=3,
        progress=lambda d, t: steps.append((d, t)),
    )  # fmt: skip
    assert steps[-1] == (18, 18) and [d for d, _ in steps] == list(range(1, 19))
    yield path, predictor


def never_profiled(predictor: LatencyPredictor) -> ArchSpec:
    """A spec like the space's, none of whose parts the predictor has timed: a stem of 12
    channels (the space has 8 or 16) changes every part's input after it."""
    timed = {key for s in predictor.samples for key, _ in s.parts}
    for seed in range(10_000, 10_100):
        data = space().sample_random(seed).to_dict()
        data["stem"]["out"] = 12
        spec = ArchSpec.from_dict(data)
        if not {entry(p, s) for p, s in spec_parts(spec)} & timed:
            return spec
    raise AssertionError("every spec shares a part with the profiled ones")


def test_profile_writes_a_fitted_predictor_with_its_report(profiled: Any) -> None:
    path, _ = profiled
    again = read(path)
    assert again.target == Target.here("cpu", 1, 1) and again.model is not None
    roles = [s.role for s in again.samples]
    assert roles.count("train") == 12 and roles.count("holdout") == 3
    for s in again.samples:
        if s.role == "holdout":  # measured twice, and never as parts
            assert len(s.latency_ms) == 2 and not s.parts and min(s.latency_ms) > 0
        else:
            assert len(s.parts) == len(spec_parts(s.spec)) and len(s.latency_ms) == 1
    report = again.report
    assert report is not None and report["holdout_specs"] == 3 and report["train_specs"] == 12
    for column in ("predictor", "remeasured"):
        assert 0 <= report[column]["within_10pct"] <= 1 and report[column]["median_error"] >= 0
    # the report's model never used a held-out spec's part, whatever the training specs hold;
    # the model a search uses observed every part the training specs timed (shared ones too)
    held = {
        entry(p, s) for h in again.samples if h.role == "holdout" for p, s in spec_parts(h.spec)
    }
    judged = again.held_out_model()
    assert not held & set(judged.observed)
    timed = {key for s in again.samples for key, _ in s.parts}
    assert set(again.model.observed) == timed and held & timed  # the small space shares stems
    held_out = [h for h in again.samples if h.role == "holdout"]
    errors = [abs(judged.predict(h.spec) / h.latency_ms[1] - 1) for h in held_out]
    assert report["predictor"]["median_error"] == pytest.approx(statistics.median(errors))


def test_a_spec_never_profiled_is_predicted_the_same_after_loading(profiled: Any) -> None:
    path, predictor = profiled
    spec = never_profiled(predictor)
    ms = predictor.predict(spec)
    assert math.isfinite(ms) and ms > 0
    assert read(path).predict(spec) == ms
    measured = predictor.samples[0].latency_ms[0]
    assert 0.01 * measured < ms < 100 * measured  # the same order as what was measured here


def test_parts_timed_in_the_running_network_add_up_to_it(profiled: Any) -> None:
    _, predictor = profiled
    trained = [s for s in predictor.samples if s.role == "train"]
    assert trained
    # each spec's parts sum to about its whole latency: the median over the specs, as one
    # spec of half a millisecond can be timed while another process takes the core
    ratios = sorted(sum(ms for _, ms in s.parts) / s.latency_ms[0] for s in trained)
    assert 0.75 < ratios[len(ratios) // 2] < 1.33, ratios
    assert ratios[0] > 0.3 and ratios[-1] < 3, ratios  # no part missing, none counted twice


def test_an_interrupted_profile_resumes_and_a_later_one_extends(tmp_path: Path) -> None:
    path = tmp_path / "lat.json"
    target = Target.here("cpu", 1, 1)

    def stop_after_4(done: int, _total: int) -> None:
        if done == 4:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        profile(space(), path, target, samples=8, holdout=2, progress=stop_after_4)
    partial = read(path)
    assert len(partial.samples) == 4 and partial.model is None  # 2 held out, 2 trained
    with pytest.raises(ValueError, match="no model yet"):
        partial.predict(space().sample_random(0))
    totals: list[int] = []
    done = profile(
        space(), path, target, samples=8, holdout=2, progress=lambda _d, t: totals.append(t)
    )
    assert totals[0] == 6 + 2  # 6 more to train, the 2 held out measured a second time
    assert len(done.samples) == 10 and done.model is not None
    more = profile(space(), path, target, samples=2, holdout=0, seed=500)  # two other specs
    assert len(more.samples) == 12 and more.report is not None and more.model is not None


def test_another_setting_is_refused_in_one_line(profiled: Any) -> None:
    path, predictor = profiled
    here = predictor.target
    for other in (
        Target(here.device, here.device_name, 2, here.batch, here.torch),
        Target(here.device, here.device_name, here.threads, 8, here.torch),
        Target(here.device, "cpu: another model, 64 cores", here.threads, here.batch, here.torch),
        Target("cuda", "cuda: NVIDIA H200", here.threads, here.batch, here.torch),
        Target(here.device, here.device_name, here.threads, here.batch, "1.0.0"),
    ):
        with pytest.raises(ValueError, match="profile this setting") as info:
            predictor.check(other, path)
        assert "\n" not in str(info.value) and str(path) in str(info.value)
    with pytest.raises(ValueError, match="threads 1, not 2"):  # nor extended
        profile(space(), path, Target.here("cpu", 2, 1), samples=1, holdout=0)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", r"not a latency predictor \(invalid JSON"),
        ('{"version": 2, "entries": {}}', "version-2 latency table"),
        ('{"version": 9}', r"not a version-4 latency predictor \(version=9\)"),
        ("[1, 2]", "not a version-4 latency predictor"),
        ('{"version": 3, "target": {"device": "cpu"}}', "a damaged latency predictor"),
    ],
)
def test_damaged_files_are_one_line_errors(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "lat.json"
    path.write_text(content)
    with pytest.raises(ValueError, match=message) as info:
        read(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_damaged_trees_and_truncated_files_are_refused(profiled: Any, tmp_path: Path) -> None:
    path, _ = profiled
    data = json.loads(path.read_text())
    data["model"]["forest"]["left"][0] = 10**9  # a child outside the node table
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="damaged latency predictor"):
        read(bad)
    bad.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    with pytest.raises(ValueError, match="invalid JSON"):
        read(bad)
    write(read(path), bad)  # written whole again, atomically
    assert read(bad).to_dict() == read(path).to_dict()


def test_a_file_from_the_previous_version_is_refitted_from_its_samples(
    profiled: Any, tmp_path: Path
) -> None:
    path, predictor = profiled
    data = json.loads(path.read_text())
    data["version"] = 3  # trees without the linear model
    del data["model"]["linear"]
    old = tmp_path / "v3.json"
    old.write_text(json.dumps(data))
    loaded = read(old)
    assert loaded.model is None and len(loaded.samples) == len(predictor.samples)
    with pytest.raises(ValueError, match="older blocknas fitted it"):
        loaded.predict(predictor.samples[0].spec)
    steps: list[int] = []
    refitted = profile(
        space(), old, predictor.target, samples=12, holdout=3,
        progress=lambda d, _t: steps.append(d),
    )  # fmt: skip
    assert not steps and refitted.model is not None  # nothing measured again
    spec = never_profiled(predictor)
    assert refitted.predict(spec) == pytest.approx(predictor.predict(spec), rel=1e-9)


def test_the_linear_model_extrapolates_beyond_the_profiled_sizes() -> None:
    # parts costing 0.02 ms per unit and 1 ns per dense MAC, profiled up to 4 units and 4 MMACs
    def row(units: int, macs: float) -> dict[str, float]:
        return {"units": math.log1p(units), "macs:dense": math.log1p(macs), "in:1": 8.0}

    rows = [row(u, m) for u in (1, 2, 4) for m in (1e5, 1e6, 4e6)]
    ms = np.array([0.02 * u + 1e-6 * m for u in (1, 2, 4) for m in (1e5, 1e6, 4e6)])
    linear = Linear.fit(rows, ms)
    assert np.all(linear.weights >= 0)
    big = linear.predict([row(8, 16e6)])[0]  # twice and four times anything profiled
    assert big == pytest.approx(0.02 * 8 + 16.0, rel=1e-3)
    again = Linear.from_dict(json.loads(json.dumps(linear.to_dict())))
    np.testing.assert_array_equal(again.predict(rows), linear.predict(rows))


def test_forest_predicts_exactly_what_scikit_learn_fitted() -> None:
    from sklearn.ensemble import GradientBoostingRegressor

    rng = np.random.default_rng(1)
    x = rng.normal(size=(300, 6))
    y = np.sin(x[:, 0]) + x[:, 1] * x[:, 2] + 0.1 * rng.normal(size=300)
    forest = Forest.fit(x, y, seed=3)
    sk = GradientBoostingRegressor(
        init="zero", n_estimators=400, max_depth=4, learning_rate=0.05, subsample=0.8,
        random_state=3,
    ).fit(x, y)  # fmt: skip
    test = rng.normal(size=(50, 6))
    np.testing.assert_allclose(forest.predict(test), sk.predict(test), rtol=1e-9, atol=1e-9)
    again = Forest.from_dict(json.loads(json.dumps(forest.to_dict())))
    np.testing.assert_array_equal(again.predict(test), forest.predict(test))


def test_features_describe_the_deploy_form_of_any_part() -> None:
    spec = space().sample_random(3)
    parts = spec_parts(spec)
    for (part, shape), cost in zip(parts, breakdown(spec), strict=True):
        f = part_features(part, shape)
        assert all(math.isfinite(v) for v in f.values()) and f["units"] > 0
        macs = sum(math.expm1(v) for k, v in f.items() if k.startswith("macs:"))
        assert macs == pytest.approx(cost.macs, rel=0.02), part.name  # the counted MACs
        assert not any(k == "n:BatchNorm2d" for k in f)  # folded: the deploy form's units
    wide = ArchSpec.from_dict(spec.to_dict() | {"stem": spec.stem.model_dump() | {"out": 24}})
    assert part_features(*spec_parts(wide)[0]) != part_features(*parts[0])


def test_time_parts_leaves_threads_as_they_were() -> None:
    torch.set_num_threads(2)
    times = time_parts(space().sample_random(1), device="cpu", batch=2, threads=1)
    assert torch.get_num_threads() == 2 and all(t > 0 for t in times)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_a_cuda_predictor_times_parts_with_events_and_holds_only_there(tmp_path: Path) -> None:
    predictor = profile(
        space(), tmp_path / "gpu.json", Target.here("cuda", 1, 1), samples=8, holdout=2
    )
    assert predictor.target.device_name.startswith("cuda: ") and predictor.model is not None
    for s in predictor.samples:
        if s.role == "train":  # events between parts add up to the synchronised whole
            assert 0.3 * s.latency_ms[0] < sum(ms for _, ms in s.parts) < 1.5 * s.latency_ms[0]
    assert predictor.predict(never_profiled(predictor)) > 0
    with pytest.raises(ValueError, match="device 'cuda', not 'cpu'"):
        predictor.check(Target.here("cpu", 1, 1), "gpu.json")


def test_a_report_from_a_noisy_clock_says_so(profiled: Any) -> None:
    _, predictor = profiled
    assert predictor.report is not None
    quiet = copy.deepcopy(predictor.report)
    quiet["remeasured"]["median_error"] = NOISY / 2
    assert "warning" not in report_table(quiet)
    noisy = copy.deepcopy(predictor.report)
    noisy["remeasured"]["median_error"] = 0.22
    last = report_table(noisy).splitlines()[-1]
    assert last.startswith("warning: the same networks measured twice differ by 22.0%")
