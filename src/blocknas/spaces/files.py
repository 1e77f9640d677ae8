"""Reading the files a user hands to blocknas: specs, configs, spaces, predictors, weights.

Every such file is untrusted input. It may be huge, truncated, garbled, or built to explode (a
YAML "billion laughs": nested aliases that PyYAML shares lazily, but that any walk over the data
expands). Each reader here bounds what it reads and refuses a bad file with one line naming it,
before anything else is done with the file, so the CLI ends with ``error: …`` and exit status 2.

>>> import tempfile, pathlib
>>> with tempfile.TemporaryDirectory() as d:
...     bomb = pathlib.Path(d, "bomb.yaml")
...     _ = bomb.write_text("a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\\n" + "".join(
...         f"{k}: &{k} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\\n"
...         for p, k in zip("abcdefgh", "bcdefghi")))
...     try:
...         read_yaml(bomb, "spec file")
...     except SpecError as e:
...         print(str(e).partition(": ")[2])
over 100,000 YAML nodes once its aliases are expanded; spec files are limited to 100,000
"""

from __future__ import annotations

import json
import os
import re
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
import yaml

from blocknas.spaces.errors import SpecError

MB = 1_000_000
#: spec, config and space files (a real one is a few kB)
TEXT_LIMIT = 10 * MB
#: YAML nodes a document may expand to, each alias counted at every use (a real spec: ~1,000)
NODE_LIMIT = 100_000
#: how deeply YAML collections may nest (a spec: 4 levels)
DEPTH_LIMIT = 50
_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def read_bytes(path: str | Path, what: str, limit: int = TEXT_LIMIT) -> bytes:
    """The file's bytes; a one-line ValueError if it cannot be read or is over ``limit`` bytes
    (checked before reading, and again while reading: a pipe or a device has no size)."""
    path = Path(path)
    allowed = f"{what}s are limited to {limit / MB:.0f} MB"
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size > limit:
                raise ValueError(f"{path} is {size / MB:.1f} MB; {allowed}")
            data = f.read(limit + 1)
    except OSError as e:
        raise ValueError(f"cannot read {what} {str(path)!r}: {e.strerror}") from None
    if len(data) > limit:
        raise ValueError(f"{path} is over {limit / MB:.0f} MB; {allowed}")
    return data


def read_yaml(path: str | Path, what: str = "file") -> Any:
    """The data in a YAML (or JSON) file; a one-line SpecError if it cannot be read or parsed,
    or if it is over :data:`TEXT_LIMIT` bytes, :data:`NODE_LIMIT` nodes once its aliases are
    expanded, or :data:`DEPTH_LIMIT` levels deep (checked on the parser's events, before any
    of it is built)."""
    path = Path(path)
    try:
        text = read_bytes(path, what)
    except ValueError as e:
        raise SpecError("", str(e)) from None
    try:
        _check_expansion(yaml.parse(text, Loader=_LOADER), path, what)
        return yaml.load(text, Loader=_LOADER)  # a SafeLoader; YAML is a superset of JSON
    except SpecError:
        raise
    except (yaml.YAMLError, ValueError, RecursionError) as e:
        # ValueError: a scalar that resolves but does not construct (a date 2024-13-01)
        raise SpecError("", f"{path}: not valid YAML/JSON: {first_line(e)}") from None


def _check_expansion(events: Iterable[yaml.Event], path: Path, what: str) -> None:
    """Count the nodes a document expands to, an alias as the nodes of its anchor, and refuse
    it past the limits; an alias of an anchor still open (a cycle) is refused too."""
    sizes: dict[str, int] = {}  # anchor → nodes it expands to
    open_: list[tuple[str | None, int]] = []  # (anchor, expanded nodes before it) per level
    expanded = aliases = 0
    for event in events:
        anchor = getattr(event, "anchor", None)
        if isinstance(event, yaml.CollectionStartEvent):
            open_.append((anchor, expanded))
            expanded += 1
            if len(open_) > DEPTH_LIMIT:
                raise SpecError("", f"{path} nests deeper than {DEPTH_LIMIT} levels")
        elif isinstance(event, yaml.CollectionEndEvent):
            anchor, before = open_.pop()
            if anchor is not None:
                sizes[anchor] = expanded - before
        elif isinstance(event, yaml.ScalarEvent):
            expanded += 1
            if anchor is not None:
                sizes[anchor] = 1
        elif isinstance(event, yaml.AliasEvent):
            aliases += 1
            if anchor in (a for a, _ in open_):
                raise SpecError("", f"{path}: the alias *{anchor} refers to itself (a cycle)")
            expanded += sizes.get(anchor or "", 0)  # an unknown one: the composer says so
        if expanded > NODE_LIMIT:
            how = " once its aliases are expanded" if aliases else ""
            limit = f"{what}s are limited to {NODE_LIMIT:,}"
            raise SpecError("", f"{path}: over {NODE_LIMIT:,} YAML nodes{how}; {limit}")


def read_json(path: str | Path, what: str, limit: int = TEXT_LIMIT) -> Any:
    """The data in a JSON file that should be a ``what`` ("latency predictor"); a one-line
    ValueError naming the file if it cannot be read, is too big, or is not JSON."""
    path = Path(path)
    data = read_bytes(path, what, limit)
    try:
        return json.loads(data)
    except (ValueError, RecursionError) as e:  # JSONDecodeError, UnicodeDecodeError
        raise ValueError(
            f"{path}: not a {what} (invalid JSON, truncated or corrupt: {first_line(e)})"
        ) from None


def read_torch(path: str | Path, what: str) -> Any:
    """A file written by ``torch.save``, loaded on CPU with ``weights_only=True`` (tensors and
    plain containers only, never code); a one-line ValueError naming the file if it is not one.

    The archive's checksums are verified first, so flipped bytes in the weights are found too,
    not only damage to the parts ``torch.load`` parses."""
    path = Path(path)
    damaged = f"{path}: not a {what} (truncated or corrupt: "
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except OSError as e:
        raise ValueError(f"cannot read {what} {str(path)!r}: {e.strerror}") from None
    except Exception as e:  # any failure to parse an untrusted file is damage
        raise ValueError(f"{damaged}{_reason(e)})") from None
    if bad is not None:
        raise ValueError(f"{damaged}a CRC check fails on {bad})")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except OSError as e:
        raise ValueError(f"cannot read {what} {str(path)!r}: {e.strerror}") from None
    except Exception as e:  # as above
        raise ValueError(f"{damaged}{_reason(e)})") from None


def first_line(e: BaseException, limit: int = 200) -> str:
    """An error's message as one line of at most ``limit`` characters (its type if empty)."""
    first = (str(e).strip().splitlines() or [type(e).__name__])[0]
    return first if len(first) <= limit else first[: limit - 3] + "..."


def _reason(e: BaseException) -> str:
    """The telling line of a loader's error: the unpickler's own complaint when torch wraps it
    in its long weights-only advice, else the first line."""
    found = re.search(r"WeightsUnpickler error: ([^\n]+)", str(e))
    return first_line(e, 160) if found is None else found.group(1)[:160]
