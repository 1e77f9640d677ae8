"""1,000 specs sampled by Optuna from each example space: all build, run a forward pass and stay
within the space's limits (issue 3, done-when 2)."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
import torch

from blocknas import build
from blocknas.spaces.schema import SearchSpace

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", ["digits", "cifar10"])
def test_thousand_samples_build_and_run(name: str) -> None:
    space = SearchSpace.from_file(ROOT / "examples" / f"{name}.yaml")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    pairs: set[tuple[str, str]] = set()
    torch.manual_seed(0)
    for _ in range(1000):
        trial = study.ask()
        spec = space.sample(trial)
        study.tell(trial, 0.0)
        # Within the space's limits.
        assert sum(layer.adaptor for layer in spec.layers) <= space.adaptors.max
        assert spec.stem.out in space.stem.out
        i = 0
        for s, stage in enumerate(space.stages):
            depth = trial.params.get(f"s{s}.depth", stage.depth[0])
            assert depth in stage.depth
            for j in range(depth):
                layer = spec.layers[i + j]
                assert layer.out in stage.out and layer.kernel in space.choices(s, "kernel")
                assert layer.stride == (stage.stride if j == 0 else 1)
                assert layer.block in space.choices(s, "block")
                assert layer.op in space.choices(s, "op")
                pairs.add((layer.block, layer.op))
            i += depth
        assert i == len(spec.layers)
        with torch.no_grad():
            out = build(spec).eval()(torch.randn(1, *spec.input))
        assert out.shape == (1, 10) and torch.isfinite(out).all()
    assert len(pairs) >= 20  # the sampler really explores the space


def test_sample_random_is_reproducible_by_seed() -> None:
    space = SearchSpace.from_file(ROOT / "examples" / "cifar10.yaml")
    assert space.sample_random(5) == space.sample_random(5)
    assert any(space.sample_random(5) != space.sample_random(s) for s in range(6, 9))
