"""blocknas: multi-objective neural architecture search for CNNs under hardware budgets."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from blocknas.spaces import ArchSpec, SpecError, build, presets, to_deploy

if TYPE_CHECKING:
    from blocknas.search.results import load_results, pareto_front

__version__ = "0.1.0"

__all__ = [
    "ArchSpec",
    "SpecError",
    "__version__",
    "build",
    "load_results",
    "pareto_front",
    "presets",
    "to_deploy",
]

_RESULTS = ("load_results", "pareto_front")


def __getattr__(name: str) -> Any:
    """The results helpers import optuna and pandas: load them on first use, not on import."""
    if name in _RESULTS:
        from blocknas.search import results

        return getattr(results, name)
    raise AttributeError(f"module 'blocknas' has no attribute {name!r}")
