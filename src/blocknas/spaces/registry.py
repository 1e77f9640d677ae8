"""Name → class registries for ops, blocks and stems.

Each family registers its classes where they are defined (``@OPS.register("acb")``), as timm's
model registry does; importing :mod:`blocknas.spaces.ops` / :mod:`blocknas.spaces.blocks` fills
the registries. Looking up an unknown name raises a :class:`SpecError` that lists the valid names.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from blocknas.spaces.errors import SpecError

T = TypeVar("T")


class Registry(Generic[T]):
    """A small named registry. ``kind`` is used in error messages ("op", "block", "stem")."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Class decorator: ``@OPS.register("conv")``. Re-registering a name is an error."""

        def deco(obj: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._items[name] = obj
            obj.registry_name = name  # type: ignore[attr-defined]
            return obj

        return deco

    def get(self, name: str, *, path: str = "") -> T:
        """The entry called ``name``; a SpecError listing the valid names otherwise."""
        try:
            return self._items[name]
        except (KeyError, TypeError):
            valid = ", ".join(self.names())
            raise SpecError(path, f"unknown {self.kind} {name!r}; valid: {valid}") from None

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._items)
