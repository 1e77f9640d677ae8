"""Every reader of a user's file against every kind of damage, in process: one line naming the
file, quickly, and the file left as it was (the CLI's side: ``tests/test_hostile_files.py``)."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
import pytest
import torch

from blocknas.costmodel.predictor import LatencyPredictor, Target
from blocknas.costmodel.profiling import read, write
from blocknas.exporter.package import FILES, load_exported, write_manifest
from blocknas.runners.checkpoint import FORMAT, load_checkpoint, load_model, save_checkpoint
from blocknas.runners.config import TrainConfig, read_train_config
from blocknas.runners.datasets import load_data
from blocknas.runners.train import train
from blocknas.search.config import SearchConfig
from blocknas.search.study import storage_for
from blocknas.spaces import ArchSpec, build, build_deploy
from blocknas.spaces.schema import SearchSpace
from tests.hostile import (
    BOMB,
    CYCLE,
    DEEP,
    HUGE,
    SPEC,
    checkpoint,
    garbled,
    garbled_head,
    huge,
    plain_study,
    snapshot,
    truncated,
)

YAML_READERS: dict[str, Callable[[Path], Any]] = {
    "spec": ArchSpec.from_file,
    "search config": SearchConfig.from_file,
    "space": SearchSpace.from_file,
    "train config": read_train_config,
}
HOSTILE_YAML = {
    "bomb": (BOMB, "YAML nodes once its aliases are expanded"),
    "cycle": (CYCLE, "the alias *l refers to itself"),
    "deep": (DEEP, "nests deeper than 50 levels"),
    "binary": (bytes(range(256)), "not valid YAML/JSON"),
    "date": ("when: 2024-13-45\n", "not valid YAML/JSON: month must be in 1..12"),
}


def refused(call: Callable[[], object], path: Path, says: str) -> str:
    """The one-line ValueError ``call`` raises, naming ``path`` and saying ``says``, within
    two seconds and with ``path``'s folder unchanged."""
    before = snapshot(path.parent)
    start = time.perf_counter()
    with pytest.raises(ValueError) as info:
        call()
    assert time.perf_counter() - start < 2.0
    message = str(info.value)
    assert "\n" not in message and str(path) in message and says in message, message
    assert snapshot(path.parent) == before
    return message


@pytest.mark.parametrize("reader", list(YAML_READERS))
@pytest.mark.parametrize("kind", [*HOSTILE_YAML, "huge"])
def test_hostile_yaml_is_refused_by_every_reader(tmp_path: Path, reader: str, kind: str) -> None:
    path = tmp_path / "hostile.yaml"
    if kind == "huge":
        huge(path)
        says = "is 100.0 MB; "
    else:
        content, says = HOSTILE_YAML[kind]
        path.write_bytes(content.encode() if isinstance(content, str) else content)
    refused(lambda: YAML_READERS[reader](path), path, says)


@pytest.fixture(scope="module")
def valid_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return checkpoint(tmp_path_factory.mktemp("ckpt") / "ok.pt").read_bytes()


def _foreign(path: Path) -> None:
    torch.save({"format": FORMAT, "version": 1, "spec": {}}, path)


def _other_weights(path: Path) -> None:
    """A checkpoint whose weights are another network's (its first layer twice as wide)."""
    spec = ArchSpec.from_file(SPEC)
    data = spec.to_dict()
    data["layers"][0]["out"] *= 2
    other = build(ArchSpec.from_dict(data))
    save_checkpoint(path, spec=spec, model=other, metrics={}, epoch=1)


CHECKPOINTS: dict[str, tuple[Callable[[Path, bytes], object], str]] = {
    "truncated": (lambda p, ok: p.write_bytes(truncated(ok)), "truncated or corrupt"),
    "garbled": (lambda p, ok: p.write_bytes(garbled(ok)), "CRC check fails"),
    "garbled-head": (lambda p, ok: p.write_bytes(garbled_head(ok)), "truncated or corrupt"),
    "empty": (lambda p, ok: p.write_bytes(b""), "truncated or corrupt"),
    "foreign": (lambda p, ok: _foreign(p), "damaged blocknas checkpoint (no valid state_dict"),
    "other-weights": (lambda p, ok: _other_weights(p), "weights do not fit its spec"),
}


@pytest.mark.parametrize("kind", list(CHECKPOINTS))
def test_damaged_checkpoints(tmp_path: Path, valid_checkpoint: bytes, kind: str) -> None:
    path = tmp_path / "trial_00003.pt"
    make, says = CHECKPOINTS[kind]
    make(path, valid_checkpoint)
    if kind != "other-weights":  # its contents are sound: only building it shows the mismatch
        refused(lambda: load_checkpoint(path), path, says)
    refused(lambda: load_model(path), path, says)


def test_a_checkpoint_without_training_state_cannot_resume(tmp_path: Path) -> None:
    path = checkpoint(tmp_path / "small.pt")  # weights only: no optimizer to resume
    spec = ArchSpec.from_file(SPEC)
    data = load_data("digits", input=spec.input)

    def resume() -> object:
        return train(spec, data, TrainConfig(epochs=2), checkpoint=path, resume=True)

    refused(resume, path, "cannot resume from it (KeyError: 'optimizer')")


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (lambda p: p.write_bytes(truncated(p.read_bytes())), "invalid JSON, truncated or corrupt"),
        (lambda p: p.write_bytes(garbled(p.read_bytes())), "invalid JSON, truncated or corrupt"),
        (lambda p: huge(p, 2 * HUGE), "is 200.0 MB; latency predictors are limited to 100 MB"),
    ],
    ids=["truncated", "garbled", "huge"],
)
def test_damaged_latency_predictors(
    tmp_path: Path, make: Callable[[Path], object], says: str
) -> None:
    path = tmp_path / "lat.json"
    write(LatencyPredictor(Target.here("cpu", 1, 1)), path)
    make(path)
    refused(lambda: read(path), path, says)


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A package as an export writes it (with only spec, weights and manifest real)."""
    folder = tmp_path_factory.mktemp("package")
    spec = ArchSpec.from_file(SPEC)
    (folder / "spec.json").write_text(spec.to_json())
    torch.save(build_deploy(spec).state_dict(), folder / "model.pt")
    for name in FILES[2:]:
        (folder / name).write_text(f"{name}\n")
    write_manifest(folder, {})
    load_exported(folder)  # whole, it loads
    return folder


def _damage(name: str, how: Callable[[bytes], bytes]) -> Callable[[Path], None]:
    """Damage the package's file ``name`` with ``how``."""

    def damage(folder: Path) -> None:
        (folder / name).write_bytes(how((folder / name).read_bytes()))

    return damage


def _resealed(folder: Path) -> None:
    """model.pt garbled, and the manifest's checksums written again to match."""
    _damage("model.pt", garbled)(folder)
    write_manifest(folder, {})


def _files_not_a_mapping(folder: Path) -> None:
    manifest = json.loads((folder / "manifest.json").read_text())
    (folder / "manifest.json").write_text(json.dumps(manifest | {"files": ["model.pt"]}))


@pytest.mark.parametrize(
    ("bad", "damage", "says"),
    [
        ("manifest.json", _damage("manifest.json", truncated), "truncated or corrupt"),
        ("manifest.json", _files_not_a_mapping, "damaged blocknas export manifest"),
        ("model.pt", _damage("model.pt", garbled), "does not match its sha256"),
        ("model.pt", _resealed, "CRC check fails"),
    ],
    ids=["manifest-truncated", "manifest-files", "weights-garbled", "weights-resealed"],
)
def test_damaged_export_packages(
    tmp_path: Path, package: Path, bad: str, damage: Callable[[Path], object], says: str
) -> None:
    folder = tmp_path / "package"
    shutil.copytree(package, folder)
    damage(folder)
    refused(lambda: load_exported(folder), folder / bad, says)


@pytest.mark.parametrize("create", [False, True], ids=["read", "search"])
@pytest.mark.parametrize("damage", [truncated, garbled_head], ids=["truncated", "garbled"])
def test_damaged_study_databases(
    tmp_path: Path, create: bool, damage: Callable[[bytes], bytes]
) -> None:
    plain_study(tmp_path / "good.db", "s", 3)
    bad = tmp_path / "study.db"
    bad.write_bytes(damage((tmp_path / "good.db").read_bytes()))
    refused(lambda: storage_for(f"sqlite:///{bad}", create=create), bad, "truncated or corrupt")
    storage = storage_for(f"sqlite:///{tmp_path / 'good.db'}", create=False)
    assert len(optuna.load_study(study_name="s", storage=storage).trials) == 3
