"""Sampling specs from a search space outside a study (``blocknas space sample``)."""

from __future__ import annotations

import optuna

from blocknas.spaces.schema import SearchSpace
from blocknas.spaces.spec import ArchSpec


def sample_spec(space: SearchSpace, seed: int = 0) -> ArchSpec:
    """One spec drawn uniformly (Optuna's RandomSampler) with a fixed seed.

    >>> space = SearchSpace.from_file("examples/digits.yaml")
    >>> sample_spec(space, seed=3) == sample_spec(space, seed=3)
    True
    """
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    return space.sample(study.ask())
