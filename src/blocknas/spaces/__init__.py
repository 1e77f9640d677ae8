"""The search space's building blocks: ops, blocks, Shape Adaptor, ArchSpec and builder.

Pure torch (plus pydantic/yaml for specs): never imports optuna, ray or dash.
"""

from blocknas.spaces import presets
from blocknas.spaces.adaptor import FrozenShapeAdaptor, ShapeAdaptor
from blocknas.spaces.blocks import BLOCKS, Block
from blocknas.spaces.builder import Network, build
from blocknas.spaces.deploy import build_deploy, to_deploy
from blocknas.spaces.errors import SpecError
from blocknas.spaces.ops import OPS, Op, OpArgs
from blocknas.spaces.spec import ArchSpec, LayerSpec, LearnedAdaptor
from blocknas.spaces.stems import STEMS

__all__ = [
    "BLOCKS",
    "OPS",
    "STEMS",
    "ArchSpec",
    "Block",
    "FrozenShapeAdaptor",
    "LayerSpec",
    "LearnedAdaptor",
    "Network",
    "Op",
    "OpArgs",
    "ShapeAdaptor",
    "SpecError",
    "build",
    "build_deploy",
    "presets",
    "to_deploy",
]
