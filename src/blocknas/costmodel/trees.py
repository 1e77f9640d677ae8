"""Gradient-boosted regression trees, fitted with scikit-learn, kept and evaluated as plain arrays.

A predictor file must be safe to open (no pickle) and a prediction must cost well under a
millisecond, so the fitted trees are copied out of scikit-learn's public ``tree_`` arrays into one
flat node table, saved as JSON and evaluated with numpy: all trees advance one level per step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass
class Forest:
    """A sum of regression trees: ``scale × Σ tree(x)``. Node arrays hold every tree back to
    back; ``roots`` indexes each tree's first node; a leaf has ``left == -1``."""

    roots: np.ndarray
    left: np.ndarray
    right: np.ndarray
    feature: np.ndarray
    threshold: np.ndarray
    value: np.ndarray
    scale: float
    depth: int

    @classmethod
    def fit(cls, x: np.ndarray, y: np.ndarray, *, seed: int = 0) -> Forest:
        """Boosted trees of ``y`` on ``x`` (squared error, starting from zero).

        >>> rng = np.random.default_rng(0)
        >>> x = rng.uniform(size=(200, 3)); y = 2 * x[:, 0] + x[:, 1] ** 2
        >>> bool(np.abs(Forest.fit(x, y).predict(x) - y).max() < 0.2)
        True
        """
        from sklearn.ensemble import GradientBoostingRegressor

        model = GradientBoostingRegressor(
            init="zero",
            n_estimators=400,
            max_depth=4,
            learning_rate=0.05,
            subsample=0.8,
            random_state=seed,
        ).fit(x, y)
        trees = [est.tree_ for est in model.estimators_[:, 0]]
        sizes = [t.node_count for t in trees]
        roots = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)

        def stacked(name: str) -> np.ndarray:
            return np.concatenate([getattr(t, name) for t in trees])

        def shifted(name: str) -> np.ndarray:
            parts = [
                np.where(getattr(t, name) < 0, -1, getattr(t, name) + r)
                for t, r in zip(trees, roots, strict=True)
            ]
            return np.concatenate(parts).astype(np.int64)

        return cls(
            roots=roots,
            left=shifted("children_left"),
            right=shifted("children_right"),
            feature=stacked("feature").astype(np.int64),
            threshold=stacked("threshold").astype(np.float64),
            value=np.concatenate([t.value[:, 0, 0] for t in trees]).astype(np.float64),
            scale=float(model.learning_rate),
            depth=max(t.max_depth for t in trees),
        )

    def predict(self, x: np.ndarray) -> np.ndarray:
        """One value per row of ``x``. Like scikit-learn, features are compared as float32."""
        x = np.asarray(x, dtype=np.float32).astype(np.float64)
        rows = np.arange(len(x))[:, None]
        node = np.broadcast_to(self.roots, (len(x), len(self.roots))).copy()
        for _ in range(self.depth):
            leaf = self.left[node] < 0
            if leaf.all():
                break
            go_left = x[rows, np.maximum(self.feature[node], 0)] <= self.threshold[node]
            step = np.where(go_left, self.left[node], self.right[node])
            node = np.where(leaf, node, step)
        return self.scale * self.value[node].sum(axis=1)

    def to_dict(self) -> dict[str, Any]:
        return {
            "roots": self.roots.tolist(),
            "left": self.left.tolist(),
            "right": self.right.tolist(),
            "feature": self.feature.tolist(),
            "threshold": self.threshold.tolist(),
            "value": self.value.tolist(),
            "scale": self.scale,
            "depth": self.depth,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Forest:
        """The forest saved by :meth:`to_dict`; ValueError if its arrays do not fit together."""
        ints = {k: np.asarray(data[k], dtype=np.int64) for k in ("roots", "left", "right")}
        forest = cls(
            **ints,
            feature=np.asarray(data["feature"], dtype=np.int64),
            threshold=np.asarray(data["threshold"], dtype=np.float64),
            value=np.asarray(data["value"], dtype=np.float64),
            scale=float(data["scale"]),
            depth=int(data["depth"]),
        )
        n = len(forest.left)
        same = {len(a) for a in (forest.right, forest.feature, forest.threshold, forest.value)}
        links = np.concatenate([forest.roots, forest.left, forest.right])
        if same != {n} or (links >= n).any() or (links < -1).any() or not 0 < forest.depth < 64:
            raise ValueError("the trees' arrays do not fit together")
        return forest
