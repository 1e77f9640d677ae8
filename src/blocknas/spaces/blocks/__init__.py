"""Macro blocks: one file per family, each block registered by name where it is defined."""

from blocknas.spaces.blocks import (  # noqa: F401  (register)
    inception,
    inverted,
    plain,
    preact,
    resnet,
    shuffle,
)
from blocknas.spaces.blocks.base import BLOCKS, Block

__all__ = ["BLOCKS", "Block"]
