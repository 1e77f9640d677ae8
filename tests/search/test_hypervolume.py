"""Pareto dominance and dominated volume against their definitions, on random point sets with
ties and missing values."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from blocknas.search.hypervolume import dominated_volume, non_dominated


def pairwise(losses: np.ndarray) -> np.ndarray:
    """The definition: a row is dominated when another is ≤ in every loss and < in one."""
    out = np.ones(len(losses), dtype=bool)
    for i, point in enumerate(losses):
        out[i] = not ((losses <= point).all(axis=1) & (losses < point).any(axis=1)).any()
    return out


@pytest.mark.parametrize("k", [1, 2, 3, 4])
@pytest.mark.parametrize("n", [0, 1, 2, 7, 200])
def test_non_dominated_is_the_definition(k: int, n: int) -> None:
    rng = np.random.default_rng(k * 1000 + n)
    for _ in range(20):
        grid = rng.integers(0, 4, (n, k)).astype(float)  # many ties
        fine = rng.random((n, k))
        holes = fine.copy()
        holes[rng.random((n, k)) < 0.1] = np.nan  # NaN dominates nothing, nor is dominated
        for losses in (grid, fine, holes):
            assert non_dominated(losses).tolist() == pairwise(losses).tolist()


def test_dominated_volume_is_the_union_of_boxes() -> None:
    """On a grid, the volume is the count of unit cells some point dominates."""
    rng = np.random.default_rng(0)
    for k in (2, 3):
        points = rng.integers(0, 5, (12, k)).astype(float)
        ref = np.full(k, 5.0)
        cells = itertools.product(range(5), repeat=k)
        covered = sum(bool((points <= np.array(c)).all(axis=1).any()) for c in cells)
        assert dominated_volume(points, ref) == pytest.approx(covered)
