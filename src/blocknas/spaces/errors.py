"""The one error type for a spec that cannot be built.

A spec is user input (a YAML file, a sampled trial), so every problem is reported as a
`SpecError` that names the field path, the offending value and what is allowed, e.g.
``layers[3].groups: groups=3 must divide the op's input channels 32``.
"""

from __future__ import annotations


class SpecError(ValueError):
    """An ArchSpec (or part of one) that is invalid.

    ``path`` is the dotted field path inside the spec (``layers[3].groups``); ``message``
    says what is wrong and what is allowed.
    """

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        self.message = message
        super().__init__(f"{path}: {message}" if path else message)

    def at(self, prefix: str) -> SpecError:
        """The same error seen from an enclosing object: ``err.at("layers[3]")``."""
        if not prefix:
            return self
        if not self.path:
            return SpecError(prefix, self.message)
        dot = "" if self.path.startswith("[") else "."  # layers[3] + [0] → layers[3][0]
        return SpecError(f"{prefix}{dot}{self.path}", self.message)

    def __reduce__(self) -> tuple[type[SpecError], tuple[str, str]]:
        # Keep the error picklable (Ray ships exceptions between processes).
        return (SpecError, (self.path, self.message))
