"""Warm start: the trial parameters under which a space samples a given spec.

A search can begin with known-good shapes (``search.seed_specs``). For a sampler to learn from
them they must be ordinary trials of the space, with the space's own parameters, so a seed spec
is translated back into parameters by replaying :func:`~blocknas.spaces.schema.sample` with a
trial that answers from the spec. Fields the spec stores directly (``s1.l0.op`` is layer 0's
``op``) are read; fields a block derives (an inverted block's ``expansion``, stored as ``mid``)
are found through the block's own ``derived_fields`` hook; stage depths, which a spec does not
name, are searched. The answer is checked: sampling with the parameters must give the spec back.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from blocknas.spaces.blocks import BLOCKS
from blocknas.spaces.errors import SpecError
from blocknas.spaces.schema import SearchSpace, sample
from blocknas.spaces.spec import ArchSpec, LayerSpec

_LAYER = re.compile(r"^s(\d+)\.l(\d+)\.(\w+)$")
_STAGE = re.compile(r"^s(\d+)\.(depth|out)$")


class _Branch(Exception):
    """More than one value (or none) fits a parameter: the search tries each."""

    def __init__(self, name: str, options: list[Any], wanted: Any, choices: list[Any]) -> None:
        super().__init__(name)
        self.name, self.options, self.wanted, self.choices = name, options, wanted, choices


class _Replay:
    """A duck-typed trial answering from ``spec``; ``fixed`` settles the ambiguous ones."""

    def __init__(self, space: SearchSpace, spec: ArchSpec, fixed: dict[str, Any]) -> None:
        self.space, self.spec, self.fixed = space, spec, fixed
        self.params: dict[str, Any] = {}

    def suggest_categorical(self, name: str, choices: Any) -> Any:
        choices = list(choices)
        if name in self.fixed:
            value = self.fixed[name]
        else:
            wanted, options = self._options(name, choices)
            if len(options) != 1:
                raise _Branch(name, options, wanted, choices)
            value = options[0]
        self.params[name] = value
        return value

    def _offset(self, stage: int) -> int:
        """Index of the stage's first layer, from the depths settled so far."""
        return sum(
            self.params.get(f"s{t}.depth", self.space.stages[t].depth[0]) for t in range(stage)
        )

    def _options(self, name: str, choices: list[Any]) -> tuple[Any, list[Any]]:
        """(the spec's value for ``name`` or None, the choices that fit it)."""
        part, _, field = name.partition(".")
        if part in ("stem", "head"):
            wanted = getattr(getattr(self.spec, part), field)
            return wanted, [c for c in choices if c == wanted]
        layers = self.spec.layers
        if m := _STAGE.match(name):
            start = self._offset(int(m[1]))
            if m[2] == "depth":
                return None, [d for d in choices if start + d <= len(layers)]
            wanted = layers[start].out if start < len(layers) else None
            return wanted, [c for c in choices if c == wanted]
        m = _LAYER.match(name)
        if m is None:
            return None, choices
        index, field = self._offset(int(m[1])) + int(m[2]), m[3]
        layer = layers[index] if index < len(layers) else None
        if layer is None:
            return None, []
        if field in LayerSpec.model_fields:
            wanted = getattr(layer, field)
            return wanted, [c for c in choices if c == wanted]
        in_ch = layers[index - 1].out if index else self.spec.stem.out
        derived = BLOCKS.get(layer.block).derived_fields
        fits = [
            c
            for c in choices
            if all(getattr(layer, k) == v for k, v in derived(in_ch, _always(c)).items())
        ]
        return None, fits or choices


def _always(value: Any) -> Callable[[str], Any]:
    """A ``choose`` for ``derived_fields`` that answers ``value`` for any field."""
    return lambda _field: value


def params_for(space: SearchSpace, spec: ArchSpec) -> dict[str, Any]:
    """The parameters for which ``space.sample`` gives ``spec``; a SpecError if none do.

    >>> space = SearchSpace.from_dict({"input": [1, 8, 8], "num_classes": 10,
    ...     "stages": [{"depth": [1, 2], "out": [8, 16], "block": ["basic", "plain"]}]})
    >>> spec = space.sample_random(3)
    >>> sample(space, _Replay(space, spec, params_for(space, spec))) == spec
    True
    """
    for field in ("input", "num_classes"):
        if getattr(spec, field) != getattr(space, field):
            raise SpecError(
                field, f"{field}={getattr(spec, field)} but the space has {getattr(space, field)}"
            )
    misses: list[tuple[int, str]] = []
    found = _search(space, spec, {}, misses)
    if found is None:  # the attempt that got furthest says best what is wrong
        why = max(misses, key=lambda m: m[0])[1] if misses else "no choice of depths fits"
        raise SpecError("", f"the space cannot produce this spec: {why}")
    return found


def _search(
    space: SearchSpace, spec: ArchSpec, fixed: dict[str, Any], misses: list[tuple[int, str]]
) -> dict[str, Any] | None:
    """Depth-first over the ambiguous parameters (few: depths, derived fields)."""
    trial = _Replay(space, spec, fixed)
    try:
        got = sample(space, trial)
    except _Branch as b:
        if not b.options:
            why = f"{b.name}={b.wanted!r} is not among its choices {b.choices}"
            misses.append((len(trial.params), why))
        for option in b.options:
            if (found := _search(space, spec, fixed | {b.name: option}, misses)) is not None:
                return found
        return None
    except SpecError as e:
        misses.append((len(trial.params), str(e)))
        return None
    where = _difference(got.to_dict(), spec.to_dict())
    if where is not None:
        misses.append((len(trial.params) + 1, where))
        return None
    return trial.params


def _difference(got: Any, want: Any, path: str = "") -> str | None:
    """The first field where the space's spec differs from the wanted one, as one line."""
    if isinstance(got, dict) and isinstance(want, dict):
        for key in [*want, *(k for k in got if k not in want)]:  # stem before layers
            if (d := _difference(got.get(key), want.get(key), f"{path}.{key}")) is not None:
                return d
        return None
    if isinstance(got, list) and isinstance(want, list):
        if len(got) != len(want):
            return f"{path.lstrip('.')}: {len(want)} of them, the space gives {len(got)}"
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            if (d := _difference(g, w, f"{path}[{i}]")) is not None:
                return d
        return None
    if got == want:
        return None
    return f"{path.lstrip('.')} is {want!r}, the space can only give {got!r} there"


class _First:
    """A trial answering from ``fixed``, else with each parameter's first choice."""

    def __init__(self, fixed: dict[str, Any]) -> None:
        self.fixed = fixed
        self.choices: dict[str, list[Any]] = {}

    def suggest_categorical(self, name: str, choices: Any) -> Any:
        self.choices[name] = list(choices)
        return self.fixed.get(name, self.choices[name][0])


def cheapest(space: SearchSpace, price: Callable[[ArchSpec], float], rounds: int = 3) -> ArchSpec:
    """The space's cheapest architecture by ``price`` (e.g. its MACs): coordinate descent over
    the parameters, each set in turn to its cheapest choice, until a round changes nothing.

    It anchors the cheap end of a front from the first trial: normalised hypervolume counts cost
    from zero, so the cheapest model found decides a strip that no later trial can fill.

    >>> space = SearchSpace.from_dict({"input": [1, 8, 8], "num_classes": 10,
    ...     "stages": [{"depth": [1, 2], "out": [16, 8]}]})
    >>> spec = cheapest(space, lambda s: sum(layer.out for layer in s.layers))
    >>> [layer.out for layer in spec.layers]
    [8]
    """
    fixed: dict[str, Any] = {}
    for _ in range(rounds):
        probe = _First(fixed)
        sample(space, probe)
        before = dict(fixed)
        for name, choices in probe.choices.items():
            priced = []
            for choice in choices:
                try:
                    priced.append((price(sample(space, _First(fixed | {name: choice}))), choice))
                except SpecError:
                    continue
            if priced:
                fixed[name] = min(priced, key=lambda p: p[0])[1]
        if fixed == before:
            break
    return sample(space, _First(fixed))
