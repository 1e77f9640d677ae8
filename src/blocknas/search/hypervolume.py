"""Pareto dominance and the exact dominated volume of a set of loss vectors (all minimised).

Pure NumPy: the results, the benchmarks and the dashboard share it.
"""

from __future__ import annotations

import numpy as np


def non_dominated(losses: np.ndarray, block: int = 512) -> np.ndarray:
    """Mask of the rows no other row dominates (ties are kept: equal points never dominate).

    >>> non_dominated(np.array([[1.0, 2.0], [2.0, 1.0], [2.0, 2.0], [1.0, 2.0]])).tolist()
    [True, True, False, True]
    """
    n = len(losses)
    dominated = np.zeros(n, dtype=bool)
    for start in range(0, n, block):
        cand = losses[start : start + block][None, :, :]
        weakly = (losses[:, None, :] <= cand).all(axis=-1)
        strictly = (losses[:, None, :] < cand).any(axis=-1)
        dominated[start : start + block] = (weakly & strictly).any(axis=0)
    return ~dominated


def dominated_volume(points: np.ndarray, ref: np.ndarray) -> float:
    """Exact volume dominated by loss ``points`` (each strictly below ``ref``) up to ``ref``:
    a sweep in 2-D, slicing along the last objective above that.

    >>> dominated_volume(np.array([[0.0, 0.5], [0.5, 0.0]]), np.array([1.0, 1.0]))
    0.75
    """
    if len(points) == 0:
        return 0.0
    k = points.shape[1]
    if k == 1:
        return float(ref[0] - points[:, 0].min())
    points = points[non_dominated(points)]
    if k == 2:
        pts = points[np.lexsort((points[:, 1], points[:, 0]))]
        total, best_y = 0.0, float(ref[1])
        for x, y in pts:
            if y < best_y:
                total += (float(ref[0]) - x) * (best_y - y)
                best_y = y
        return float(total)
    pts = points[np.argsort(points[:, -1], kind="mergesort")]
    edges = np.append(pts[:, -1], ref[-1])
    total = 0.0
    for i in range(len(pts)):
        depth = float(edges[i + 1] - edges[i])
        if depth > 0:
            total += depth * dominated_volume(pts[: i + 1, :-1], ref[:-1])
    return float(total)
