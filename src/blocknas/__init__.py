"""blocknas: multi-objective neural architecture search for CNNs under hardware budgets.

The public API of contracts §2: ``ArchSpec``, ``build``, ``to_deploy``, ``cost``, ``presets``,
``load_results``, ``pareto_front``, ``hypervolume``, ``export`` and ``load_exported``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from blocknas.costmodel import Cost, cost
from blocknas.spaces import ArchSpec, SpecError, build, presets, to_deploy

if TYPE_CHECKING:
    from blocknas.exporter.package import load_exported
    from blocknas.exporter.run import export
    from blocknas.search.results import hypervolume, load_results, pareto_front

__version__ = "0.1.0"

__all__ = [
    "ArchSpec",
    "Cost",
    "SpecError",
    "__version__",
    "build",
    "cost",
    "export",
    "hypervolume",
    "load_exported",
    "load_results",
    "pareto_front",
    "presets",
    "to_deploy",
]

_RESULTS = ("hypervolume", "load_results", "pareto_front")


def __getattr__(name: str) -> Any:
    """The results and export helpers import optuna and pandas: load them on first use."""
    if name in _RESULTS:
        from blocknas.search import results

        return getattr(results, name)
    if name == "export":
        from blocknas.exporter.run import export

        return export
    if name == "load_exported":
        from blocknas.exporter.package import load_exported

        return load_exported
    raise AttributeError(f"module 'blocknas' has no attribute {name!r}")
