"""The package folder (contracts §4): staged inside DIR, checksummed, loaded back safely.

An export writes into ``DIR/.blocknas-partial/`` and moves the files into DIR only when every
check has passed, so a failed export leaves DIR as it found it (absent, or empty) and nothing
is written outside DIR. A killed export leaves only that staging folder, which the next run
of the same export resumes (a retrain continues from its last epoch).

>>> import tempfile
>>> with tempfile.TemporaryDirectory() as d:
...     load_exported(d)
Traceback (most recent call last):
...
ValueError: ... has no manifest.json: not a blocknas export package
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from blocknas.spaces import ArchSpec, SpecError, build_deploy
from blocknas.spaces.files import first_line, read_json, read_torch

STAGING = ".blocknas-partial"
MANIFEST = "manifest.json"
#: the files of contracts §4 besides the manifest, in the order they are written
FILES = ("spec.json", "model.pt", "model.ts", "model.pt2", "model.onnx", "metrics.json", "card.md")
FORMAT = "blocknas.export"
VERSION = 1


@dataclass(frozen=True)
class Staging:
    """Where an export writes before it moves into ``out``; what to undo if it fails."""

    out: Path
    created_out: bool  # DIR did not exist: a failure removes it again

    @property
    def path(self) -> Path:
        return self.out / STAGING

    @property
    def files(self) -> Path:
        return self.path / "package"

    @property
    def retrain_checkpoint(self) -> Path:
        return self.path / "retrain.pt"

    def discard(self) -> None:
        """Undo the export: the staging folder goes, and DIR too if the export made it."""
        shutil.rmtree(self.path, ignore_errors=True)
        if self.created_out and self.out.is_dir() and not any(self.out.iterdir()):
            self.out.rmdir()

    def publish(self) -> None:
        """Move the verified files into DIR, the manifest last, then drop the staging folder."""
        for name in (*FILES, MANIFEST):
            os.replace(self.files / name, self.out / name)
        shutil.rmtree(self.path)


def stage(out: str | Path, *, force: bool = False) -> Staging:
    """Check ``out`` and make the staging folder in it.

    ``out`` must be absent, empty, or hold only an interrupted export's staging folder; with
    ``force`` it may hold anything, and only the package's own files are replaced at the end.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file, not a folder")
    created = not out.exists()
    left = sorted(p.name for p in out.iterdir() if p.name != STAGING) if not created else []
    if left and not force:
        shown = ", ".join(left[:3]) + (", …" if len(left) > 3 else "")
        raise ValueError(
            f"--out {out} is not empty ({shown}); choose an empty folder or pass --force to "
            "replace the package files in it"
        )
    staging = Staging(out, created)
    shutil.rmtree(staging.files, ignore_errors=True)  # a killed run's files are redone
    staging.files.mkdir(parents=True)
    return staging


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")


def write_manifest(folder: Path, info: dict[str, Any]) -> dict[str, Any]:
    """``manifest.json``: ``info`` (versions, study, trial, config) and every file's sha256."""
    files = {
        name: {"sha256": sha256(folder / name), "bytes": (folder / name).stat().st_size}
        for name in FILES
    }
    manifest = {"format": FORMAT, "version": VERSION, **info, "files": files}
    write_json(folder / MANIFEST, manifest)
    return manifest


def read_manifest(path: str | Path) -> dict[str, Any]:
    """The package's manifest, after checking every file it lists against its sha256."""
    folder = Path(path)
    where = folder / MANIFEST
    if not where.is_file():
        raise ValueError(f"{folder} has no {MANIFEST}: not a blocknas export package")
    manifest = read_json(where, "blocknas export manifest")
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ValueError(f"{where}: not a blocknas export manifest")
    files = manifest.get("files", {})
    if not isinstance(files, dict) or not all(isinstance(e, dict) for e in files.values()):
        raise ValueError(f"{where}: a damaged blocknas export manifest (files: not a mapping)")
    missing = [name for name in FILES if name not in files]
    if missing:
        raise ValueError(f"{where} lists no checksum for {', '.join(missing)}")
    for name, entry in files.items():
        file = folder / name
        if Path(name).name != name or not file.is_file():
            raise ValueError(f"{file} is missing from the package")
        if sha256(file) != entry.get("sha256"):
            raise ValueError(
                f"{file} does not match its sha256 in {MANIFEST}: the file was changed after "
                "export; refusing to load it"
            )
    return manifest


def load_deploy(folder: Path) -> nn.Module:
    """The deploy-form network from ``spec.json`` and ``model.pt`` (weights only), no checksums;
    a one-line ValueError naming the file that is damaged or does not fit."""
    where = folder / "spec.json"
    try:
        spec = ArchSpec.from_file(where)
    except SpecError as e:  # a reading error names the file already, a spec error does not
        raise ValueError(str(e) if str(where) in str(e) else f"{where}: {e}") from None
    model = build_deploy(spec)
    weights = folder / "model.pt"
    state = read_torch(weights, "blocknas weights file")
    try:
        model.load_state_dict(state)
    except (RuntimeError, TypeError, ValueError, AttributeError) as e:
        raise ValueError(f"{weights} does not fit {where}: {first_line(e)}") from None
    return model.eval()


def load_exported(path: str | Path) -> nn.Module:
    """The deploy-form module of an export package, in eval mode, on CPU.

    Every file's sha256 is checked against ``manifest.json`` first, and the weights are loaded
    with ``weights_only=True``; a changed file is refused with one line naming it.

    After ``blocknas export ... --out export/digits``::

        model = blocknas.load_exported("export/digits")
        logits = model(torch.zeros(1, 1, 16, 16))
    """
    read_manifest(path)
    return load_deploy(Path(path))
