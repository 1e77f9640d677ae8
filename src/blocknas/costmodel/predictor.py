"""Latency predictor: parts timed in whole networks, a regression over their features for parts
never timed, and a calibration from the sum of parts to whole-network latency.

The predictor is fitted from profiled specs (:mod:`blocknas.costmodel.profiling`):

1. each **training** spec's parts, timed inside the running network (so each part sees the cache
   state it has in a real forward), give rows ``features → ms``. A linear cost model
   (:mod:`~blocknas.costmodel.linear`: time per unit, per MAC of each kind, per element moved)
   predicts a part from what it runs, so a block, op or shape never profiled, larger ones
   included, is still predicted; gradient-boosted trees over
   :func:`~blocknas.costmodel.features.spec_features` correct its log-residual. A part that was
   profiled uses the median of its observed times instead.
2. the sum of a spec's parts is mapped to its whole-network latency (as ``measure_latency``
   measures it: deploy form, no hooks) by ``log(ms) = c0 + c1·log(Σ parts)``, fitted on
   *out-of-fold* sums (each spec predicted by a model that never saw it), so the calibration also
   corrects what the regression gets wrong on unseen parts, not only per-network overheads.
3. **held-out** specs, measured twice (once in each half of the profiling run), give the
   predictor's error and the re-measurement noise of the same run. The model that report judges
   (:meth:`LatencyPredictor.held_out_model`) never saw a part of theirs, so every stem and head
   is predicted from other kinds of parts there; the model a search uses is then fitted on every
   training part, as a search's specs share the profiled ones' stems, heads and many blocks.

A prediction is a dictionary lookup per part, a dot product and one pass of numpy over the
trees; it measures nothing. A predictor is only valid where it was measured:
:meth:`LatencyPredictor.check` refuses another device, thread count, batch size or torch version.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from blocknas.costmodel.features import Features, entry, matrix, spec_features, spec_parts
from blocknas.costmodel.linear import Linear
from blocknas.costmodel.trees import Forest
from blocknas.spaces import ArchSpec

#: folds of the out-of-fold calibration
FOLDS = 5
#: the fewest training specs a predictor is fitted from (one per fold, and some to spare)
MIN_SPECS = 8


@dataclass(frozen=True)
class Target:
    """Where latency was measured: a predictor holds only there."""

    device: str  # "cpu" or "cuda"
    device_name: str  # "cpu: AMD EPYC 7B13, 2 cores", "cuda: NVIDIA H200"
    threads: int
    batch: int
    torch: str

    @classmethod
    def here(cls, device: str, threads: int, batch: int) -> Target:
        """This machine's target for ``device`` at ``threads`` and ``batch``."""
        import torch

        from blocknas.costmodel.latency import device_name

        return cls(device, device_name(device), threads, batch, torch.__version__)

    def describe(self) -> str:
        plural = "" if self.threads == 1 else "s"
        return (
            f"{self.device_name}, {self.threads} thread{plural}, batch {self.batch}, "
            f"torch {self.torch}"
        )

    def mismatch(self, other: Target) -> str | None:
        """What differs between the two targets (one phrase), or None."""
        for name in ("device", "device_name", "threads", "batch", "torch"):
            mine, theirs = getattr(self, name), getattr(other, name)
            if mine != theirs:
                return f"{name.replace('_', ' ')} {mine!r}, not {theirs!r}"
        return None


@dataclass
class Sample:
    """One profiled spec. A training sample has its parts' times (entry, ms) and one
    whole-network latency; a held-out sample only whole-network latencies, one per pass."""

    spec: ArchSpec
    role: str  # "train" or "holdout"
    latency_ms: list[float]
    parts: list[tuple[str, float]] = field(default_factory=list)


@dataclass
class Model:
    """The fitted predictor: observed part times, the linear model and its trees for the rest,
    and the calibration."""

    vocab: list[str]
    linear: Linear
    forest: Forest
    calibration: tuple[float, float]
    observed: dict[str, float]
    batch: int

    def __post_init__(self) -> None:
        self._index = {name: i for i, name in enumerate(self.vocab)}
        if len(self.forest.feature) and int(self.forest.feature.max()) >= len(self.vocab):
            raise ValueError("the trees use more features than the file names")

    def matrix(self, rows: Sequence[Features]) -> np.ndarray:
        return matrix(self._index, rows)

    def parts_ms(self, spec: ArchSpec) -> list[float]:
        """Each part's predicted time in the running network (ms), in forward order."""
        ps = spec_parts(spec, self.batch)
        known = [self.observed.get(entry(p, s)) for p, s in ps]
        todo = [i for i, v in enumerate(known) if v is None]
        if todo:
            rows = spec_features(spec, self.batch, ps)
            new = [rows[i] for i in todo]
            ms = self.linear.predict(new) * np.exp(self.forest.predict(self.matrix(new)))
            for i, v in zip(todo, ms, strict=True):
                known[i] = float(v)
        return [float(v) for v in known if v is not None]

    def predict(self, spec: ArchSpec) -> float:
        """The spec's whole-network latency (ms)."""
        c0, c1 = self.calibration
        return math.exp(c0 + c1 * math.log(sum(self.parts_ms(spec))))

    def to_dict(self) -> dict[str, Any]:
        return {
            "vocab": self.vocab,
            "linear": self.linear.to_dict(),
            "forest": self.forest.to_dict(),
            "calibration": list(self.calibration),
            "observed": self.observed,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], batch: int) -> Model:
        c0, c1 = (float(c) for c in data["calibration"])
        observed = {str(k): float(v) for k, v in data["observed"].items()}
        return cls(
            list(data["vocab"]),
            Linear.from_dict(data["linear"]),
            Forest.from_dict(data["forest"]),
            (c0, c1),
            observed,
            batch,
        )


def _rows(
    samples: Sequence[Sample], batch: int, skip: set[str]
) -> tuple[list[Features], list[float], dict[str, list[float]]]:
    """Features and times (ms) of the samples' parts (entries in ``skip`` left out), and the
    observed times by entry."""
    feats: list[Features] = []
    times: list[float] = []
    seen: dict[str, list[float]] = {}
    for s in samples:
        for row, (key, ms) in zip(spec_features(s.spec, batch), s.parts, strict=True):
            if key in skip:
                continue
            feats.append(row)
            times.append(ms)
            seen.setdefault(key, []).append(ms)
    return feats, times, seen


def fit_parts(samples: Sequence[Sample], batch: int, skip: set[str], seed: int) -> Model:
    """The linear model, its trees and observed times from ``samples``' parts, with an identity
    calibration."""
    feats, times, seen = _rows(samples, batch, skip)
    ms = np.asarray(times)
    linear = Linear.fit(feats, ms)
    vocab = sorted({name for row in feats for name in row})
    x = matrix({name: i for i, name in enumerate(vocab)}, feats)
    forest = Forest.fit(x, np.log(ms) - np.log(linear.predict(feats)), seed=seed)
    observed = {k: statistics.median(v) for k, v in seen.items()}
    return Model(vocab, linear, forest, (0.0, 1.0), observed, batch)


def fit(
    samples: Sequence[Sample], batch: int, *, skip: set[str] | None = None, seed: int = 0
) -> Model:
    """A predictor from training ``samples`` (see the module docstring); parts whose entry is in
    ``skip`` (the held-out specs') are never used.

    The calibration is fitted on out-of-fold sums: each fold's specs are predicted by a model of
    the other folds, whose observed parts they may share, as a new spec would be.
    """
    skip = skip or set()
    train = [s for s in samples if s.role == "train"]
    if len(train) < MIN_SPECS:
        raise ValueError(
            f"a latency predictor needs at least {MIN_SPECS} profiled training specs, got "
            f"{len(train)}; profile more (--samples)"
        )
    order = np.random.default_rng(seed).permutation(len(train))
    sums = np.zeros(len(train))
    for k in range(FOLDS):
        held = set(order[k::FOLDS].tolist())
        part = fit_parts([s for i, s in enumerate(train) if i not in held], batch, skip, seed)
        for i in held:
            sums[i] = sum(part.parts_ms(train[i].spec))
    whole = np.array([s.latency_ms[0] for s in train])
    design = np.vstack([np.ones(len(train)), np.log(sums)]).T
    c0, c1 = np.linalg.lstsq(design, np.log(whole), rcond=None)[0]
    model = fit_parts(train, batch, skip, seed)
    model.calibration = (float(c0), float(c1))
    return model


#: the predictor file format; version 2 was the exact-match latency table, version 3 had trees
#: without the linear model: its samples are read and its model is fitted again
VERSION = 4
REFIT_VERSIONS = (3,)


@dataclass
class LatencyPredictor:
    """A predictor file: where it was measured, every profiled sample, the fitted model and
    the held-out report. Extending it adds samples and fits again.

    >>> p = LatencyPredictor(Target("cpu", "cpu: X", 1, 1, "2.0"))
    >>> try:
    ...     p.check(Target("cpu", "cpu: X", 2, 1, "2.0"), "lat.json")
    ... except ValueError as e:
    ...     print(str(e)[:66])
    lat.json: a latency predictor for cpu: X, 1 thread, batch 1, torch
    """

    target: Target
    samples: list[Sample] = field(default_factory=list)
    model: Model | None = None
    report: dict[str, Any] | None = None

    def check(self, here: Target, path: object = "latency predictor") -> None:
        """Refuse use on another target, in one line naming what differs and what to run."""
        why = self.target.mismatch(here)
        if why is not None:
            raise ValueError(
                f"{path}: a latency predictor for {self.target.describe()} ({why}): profile "
                f"this setting with `blocknas profile CONFIG --device {here.device} --threads "
                f"{here.threads} --batch {here.batch}`"
            )

    def predict(self, spec: ArchSpec) -> float:
        """Predicted whole-network latency (ms) of ``spec``'s deploy form on the target."""
        if self.model is None:
            raise ValueError(
                "this latency predictor has no model yet (its profiling was interrupted, or an "
                "older blocknas fitted it): run `blocknas profile` again to fit it"
            )
        return self.model.predict(spec)

    def fit(self, seed: int = 0) -> None:
        """Fit the model a search uses on every training sample's parts."""
        self.model = fit(self.samples, self.target.batch, seed=seed)

    def held_out_model(self, seed: int = 0) -> Model:
        """A model fitted without any part of the held-out specs: what a report may judge on
        them (the shipped model, fitted on every training part, may have timed some)."""
        held = {
            entry(p, s)
            for sample in self.samples
            if sample.role == "holdout"
            for p, s in spec_parts(sample.spec, self.target.batch)
        }
        return fit(self.samples, self.target.batch, skip=held, seed=seed)

    # --- files -------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "version": VERSION,
            "kind": "blocknas latency predictor",
            "target": self.target.__dict__,
            "samples": [
                {
                    "spec": s.spec.to_dict(),
                    "role": s.role,
                    "latency_ms": s.latency_ms,
                    "parts": [list(p) for p in s.parts],
                }
                for s in self.samples
            ],
            "model": None if self.model is None else self.model.to_dict(),
            "report": self.report,
        }

    @classmethod
    def from_dict(cls, data: Any) -> LatencyPredictor:
        """A predictor from its file's contents; ValueError (one line) for anything else."""
        version = data.get("version") if isinstance(data, dict) else None
        if version == 2 and isinstance(data, dict) and "entries" in data:
            raise ValueError(
                "a version-2 latency table (exact-match parts, superseded by the predictor): "
                "run `blocknas profile` to measure a predictor in its place"
            )
        if version not in (VERSION, *REFIT_VERSIONS) or not isinstance(data, dict):
            raise ValueError(f"not a version-{VERSION} latency predictor (version={version!r})")
        if version in REFIT_VERSIONS:  # its samples hold; the model and report are refitted
            data = {**data, "model": None, "report": None}
        try:
            target = Target(**data["target"])
            samples = [
                Sample(
                    ArchSpec.from_dict(s["spec"]),
                    str(s["role"]),
                    [float(v) for v in s["latency_ms"]],
                    [(str(k), float(ms)) for k, ms in s["parts"]],
                )
                for s in data["samples"]
            ]
            model = data.get("model")
            return cls(
                target,
                samples,
                None if model is None else Model.from_dict(model, target.batch),
                data.get("report"),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            what = f"{type(e).__name__}: {e}".splitlines()[0][:200]
            raise ValueError(f"a damaged latency predictor ({what})") from None
