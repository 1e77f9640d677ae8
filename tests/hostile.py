"""Damaged and hostile files for the tests of how blocknas refuses them."""

from __future__ import annotations

import hashlib
from pathlib import Path

import optuna

from blocknas.runners.checkpoint import save_checkpoint
from blocknas.search.synthetic import synthetic_study
from blocknas.spaces import ArchSpec, build

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "examples" / "specs" / "digits_small.yaml"

#: nine levels of nine aliases: 9⁹ strings once expanded, 500 bytes as written
BOMB = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + "".join(
    f"{k}: &{k} [{', '.join([f'*{p}'] * 9)}]\n" for p, k in zip("abcdefgh", "bcdefghi", strict=True)
)
#: an alias inside its own anchor: a structure that contains itself
CYCLE = "version: 1\nlayers: &l [{block: basic, out: 8}, *l]\n"
#: nested deeper than any spec or config
DEEP = "a: " + "[" * 60 + "]" * 60 + "\n"
HUGE = 100_000_000  #: bytes


def huge(path: Path, size: int = HUGE) -> Path:
    """A file of ``size`` bytes (sparse: written in no time)."""
    with open(path, "wb") as f:
        f.truncate(size)
    return path


def truncated(data: bytes) -> bytes:
    return data[: len(data) // 2]


def garbled(data: bytes) -> bytes:
    """64 bytes in the middle inverted (a checkpoint's tensor data, a predictor's JSON)."""
    mid = len(data) // 2
    return data[:mid] + bytes(b ^ 0xFF for b in data[mid : mid + 64]) + data[mid + 64 :]


def garbled_head(data: bytes) -> bytes:
    """The first 100 bytes (a file's header: SQLite's, a zip's first entry) overwritten."""
    return bytes(range(100)) + data[100:]


def snapshot(folder: Path) -> dict[str, tuple[int, int, str]]:
    """Every file under ``folder``: its size, modification time and (below 10 MB) sha256."""
    out = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        stat = path.stat()
        digest = hashlib.sha256(path.read_bytes()).hexdigest() if stat.st_size < 1e7 else ""
        out[str(path.relative_to(folder))] = (stat.st_size, stat.st_mtime_ns, digest)
    return out


def checkpoint(path: Path) -> Path:
    """A valid checkpoint of :data:`SPEC`, untrained."""
    spec = ArchSpec.from_file(SPEC)
    return save_checkpoint(path, spec=spec, model=build(spec), metrics={}, epoch=1)


def plain_study(path: Path, name: str, trials: int, seed: int = 0) -> optuna.Study:
    """A synthetic study in a SQLite file without WAL (the file alone holds all of it)."""
    storage = optuna.storages.RDBStorage(f"sqlite:///{path}")
    try:
        return synthetic_study(storage, name, trials, seed=seed)
    finally:
        storage.engine.dispose()
