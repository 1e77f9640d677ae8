"""A linear cost model of a network part: a time per unit run, per multiply-accumulate of each
weight kind, per weight and per element read or written, fitted with non-negative weights.

Trees alone cannot extrapolate: a part wider, or on a larger feature map, than any profiled one
is predicted as the largest one seen. A sum of costs per thing run scales with the part, so the
predictor fits this first and lets trees correct its log-residual (cache effects, kernels that
run faster per MAC at some shapes). On 300 profiled specs of ``examples/cifar10.yaml`` (parts of
one fifth of the specs held out in turn) this cut the error on parts never profiled from 12.1 %
to 9.5 % at the median, with each spec's common slowdown taken out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from blocknas.costmodel.features import Features, matrix

#: the features that add up over a part's units (stored as log1p of a count): the model's terms.
#: Shapes, places in the network and whole-network totals are left to the trees.
ADDITIVE = ("units", "n:", "macs:", "weights:", "elems_in", "elems_out", "calls", "elems:")
#: the least a part is predicted to take (ms): a log is taken of it
FLOOR_MS = 1e-4


@dataclass
class Linear:
    """``ms = bias + Σ weight · count`` over the named counts; every weight is ≥ 0, so each
    thing a part runs costs time, and a count outside the profiled range extrapolates."""

    names: list[str]
    weights: np.ndarray
    bias: float

    def __post_init__(self) -> None:
        self._index = {name: i for i, name in enumerate(self.names)}

    @classmethod
    def fit(cls, rows: Sequence[Features], ms: np.ndarray) -> Linear:
        """Non-negative least squares of the *relative* error (a 0.05 ms part matters as much
        as a 5 ms one), the columns scaled to [0, 1] so that the solver is well conditioned.

        >>> import math
        >>> def row(n): return {"units": math.log1p(n), "macs:dense": math.log1p(1000 * n)}
        >>> ms = np.array([0.2 + 0.1 * n for n in (1, 2, 4)])
        >>> m = Linear.fit([row(n) for n in (1, 2, 4)], ms)
        >>> round(float(m.predict([row(8)])[0]), 3)  # twice the largest profiled
        1.0
        """
        from scipy.optimize import nnls

        names = sorted({k for row in rows for k in row if k.startswith(ADDITIVE)})
        model = cls(names, np.zeros(len(names)), 0.0)
        x = model.matrix(rows)
        scale = np.maximum(x.max(axis=0, initial=0.0), 1e-12)
        design = np.hstack([x / scale, np.ones((len(ms), 1))]) / ms[:, None]
        solution, _ = nnls(design, np.ones(len(ms)), maxiter=50 * design.shape[1])
        model.weights, model.bias = solution[:-1] / scale, float(solution[-1])
        return model

    def matrix(self, rows: Sequence[Features]) -> np.ndarray:
        """The rows' counts over the model's names (a count it lacks is left out)."""
        return np.expm1(matrix(self._index, rows))

    def predict(self, rows: Sequence[Features]) -> np.ndarray:
        """Each row's predicted time (ms), at least :data:`FLOOR_MS`."""
        return np.maximum(self.matrix(rows) @ self.weights + self.bias, FLOOR_MS)

    def to_dict(self) -> dict[str, Any]:
        return {"names": self.names, "weights": self.weights.tolist(), "bias": self.bias}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Linear:
        names = [str(n) for n in data["names"]]
        weights = np.asarray(data["weights"], dtype=float)
        if weights.shape != (len(names),):
            raise ValueError("the linear model's weights do not match its names")
        return cls(names, weights, float(data["bias"]))
