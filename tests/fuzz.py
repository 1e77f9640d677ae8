"""Fuzzing by mutation: valid inputs broken a few edits at a time, and the property every
refusal keeps (one line, naming the field, a ValueError and nothing else).

Generated inputs start from valid ones (presets, example configs), so most of them reach deep
validation instead of stopping at the first type check. Every test that uses these strategies
runs ``derandomize=True``: the same examples in CI as on a laptop.
"""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from blocknas import SpecError

T = TypeVar("T")
KeyPath = tuple[str | int, ...]

#: 1,000 reproducible examples per target; no deadline (a cold cost-model count can take longer
#: than one example should), no example database (the same run in CI as on a laptop).
FUZZ = settings(
    max_examples=1000,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

#: the values a field is replaced by: every JSON/YAML type, and the edge cases of each
EDGE_INTS = [0, -1, 1, 2, 3, 7, 10**9, -(10**9), 2**31, 2**63, 10**30]
EDGE_FLOATS = [0.0, -0.0, 0.5, 1.0, -1.0, 1e-300, 1e300, math.nan, math.inf, -math.inf]
EDGE_STRINGS = ["", " ", "none", "conv", "basic", "relu", "1", "nan", "true", "null", "é", "a\nb"]
SCALARS = st.one_of(
    st.sampled_from(EDGE_INTS),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from(EDGE_FLOATS),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.none(),
    st.sampled_from(EDGE_STRINGS),
    st.text(max_size=6),
)
VALUES = st.one_of(
    SCALARS,
    SCALARS,  # scalars twice as often as containers
    st.lists(SCALARS, max_size=4),
    st.dictionaries(st.text(max_size=6), SCALARS, max_size=3),
)


#: mapping keys YAML can produce besides strings
KEYS = st.one_of(st.integers(-2, 5), st.none(), st.booleans(), st.floats(allow_nan=False))


def paths(data: Any, prefix: KeyPath = ()) -> list[KeyPath]:
    """Every node below ``data``, as key/index paths (the root itself excluded)."""
    out: list[KeyPath] = []
    items: Iterable[tuple[str | int, Any]] = ()
    if isinstance(data, dict):
        items = data.items()
    elif isinstance(data, list):
        items = enumerate(data)
    for key, value in items:
        out.append((*prefix, key))
        out.extend(paths(value, (*prefix, key)))
    return out


def leaves(data: Any) -> list[Any]:
    """Every scalar in ``data``: valid values to move to a wrong place."""
    if isinstance(data, dict):
        return [v for value in data.values() for v in leaves(value)]
    if isinstance(data, list):
        return [v for value in data for v in leaves(value)]
    return [data]


def keys(data: Any) -> set[str]:
    """Every mapping key in ``data``: real field names to add at a wrong level."""
    if isinstance(data, dict):
        return {str(k) for k in data} | {k for v in data.values() for k in keys(v)}
    if isinstance(data, list):
        return {k for v in data for k in keys(v)}
    return set()


def _parent(data: Any, path: KeyPath) -> Any:
    """The container that holds the node at ``path``."""
    for key in path[:-1]:
        data = data[key]
    return data


@st.composite
def mutated(draw: st.DrawFn, base: Any, max_edits: int = 3) -> Any:
    """``base`` after 1 to ``max_edits`` edits: a node replaced (by a value of any type, or by a
    valid value from elsewhere), deleted, or a field added (unknown, or known but misplaced)."""
    data = copy.deepcopy(base)
    names = sorted(keys(base))
    moved = leaves(base)
    # Where to edit is drawn uniformly (a seeded Random): Hypothesis favours the first element
    # of a sampled_from, which would be the first top-level field far too often.
    rnd = draw(st.randoms(use_true_random=False))
    for _ in range(draw(st.integers(1, max_edits))):
        nodes = paths(data)
        edit = rnd.choice(["replace", "replace", "delete", "add"] if nodes else ["add"])
        if edit == "add":
            mappings = [p for p in nodes if isinstance(_parent(data, (*p, "")), dict)]
            target = _parent(data, (*rnd.choice([(), *mappings]), ""))
            name = draw(st.one_of(st.sampled_from(names or ["x"]), st.text(max_size=6), KEYS))
            target[name] = draw(VALUES)
            continue
        path = rnd.choice(nodes)
        parent = _parent(data, path)
        if edit == "delete":
            del parent[path[-1]]
        else:
            parent[path[-1]] = draw(st.one_of(VALUES, st.sampled_from(moved or [None])))
    return data


def one_of(bases: dict[str, Any], max_edits: int = 3) -> st.SearchStrategy[tuple[str, Any]]:
    """(name, mutated base) for a base drawn from ``bases``."""
    return st.sampled_from(sorted(bases)).flatmap(
        lambda name: st.tuples(st.just(name), mutated(bases[name], max_edits))
    )


def check_refusal(error: BaseException, fields: Iterable[str]) -> str:
    """The message of ``error`` after checking that it is a refusal as users must see it: a
    ValueError (SpecError, DataError), one non-empty line, naming a field (its path first, or
    the field by name) among ``fields`` (the input's and the schema's top-level names)."""
    assert isinstance(error, ValueError), f"{type(error).__name__}: {error}"
    message = str(error)
    assert len(message.splitlines()) == 1, repr(message)
    assert len(message) < 600, f"{len(message)} characters: {message[:200]}…"
    assert "Traceback" not in message and "pydantic" not in message.lower(), message
    if isinstance(error, SpecError) and error.path:
        root = re.split(r"[.\[]", error.path, maxsplit=1)[0]
        assert root in set(fields) or error.path.startswith("["), message
    else:
        assert any(re.search(rf"\b{re.escape(f)}\b", message) for f in fields), message
    return message


def accepted_or_refused(fn: Callable[[], T], fields: Iterable[str]) -> T | None:
    """``fn()``, or None when it refuses its input as :func:`check_refusal` demands; any other
    exception fails the test."""
    try:
        return fn()
    except ValueError as e:
        check_refusal(e, fields)
        return None
