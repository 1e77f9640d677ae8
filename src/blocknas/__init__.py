"""blocknas: multi-objective neural architecture search for CNNs under hardware budgets."""

from blocknas.spaces import ArchSpec, SpecError, build, presets, to_deploy

__version__ = "0.1.0"

__all__ = ["ArchSpec", "SpecError", "__version__", "build", "presets", "to_deploy"]
