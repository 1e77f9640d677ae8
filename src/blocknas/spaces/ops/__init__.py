"""Spatial ops: each a drop-in for a k×k conv-BN, registered by name in its own file."""

from blocknas.spaces.ops import acb, conv, deform, dwsep, sk, spconv, splat  # noqa: F401  (register)
from blocknas.spaces.ops.base import OPS, Op, OpArgs

__all__ = ["OPS", "Op", "OpArgs"]
