"""Loaders for datasets on disk: an image folder, and CIFAR-10/100, MNIST, Fashion-MNIST.

The torchvision datasets are read from torchvision's own layout under ``root`` (so an existing
torchvision data directory works as is) and downloaded only when asked. Files a user provides
are taken as they are: CIFAR's md5 sums are checked only on download, by torchvision.
Each loader returns its splits at the configured input size, in memory when they fit
``memory_limit_mb`` and streamed otherwise (see :mod:`blocknas.runners.data`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from blocknas.runners.data import (
    DataError,
    Loaded,
    Shape,
    Source,
    StreamSource,
    TensorSource,
    fit_tensor,
)


def _fits(n: int, shape: Shape, memory_limit_mb: int) -> bool:
    c, h, w = shape
    return n * c * h * w <= memory_limit_mb * 2**20


class _ResizeItem:
    """Reads item ``i`` of an in-memory native-size tensor at the configured size (picklable)."""

    def __init__(self, x: torch.Tensor, shape: Shape, name: str) -> None:
        self.x, self.shape, self.name = x, shape, name

    def __call__(self, i: int) -> torch.Tensor:
        return fit_tensor(self.x[i : i + 1], self.shape, self.name)[0]


def _source(x: torch.Tensor, y: torch.Tensor, shape: Shape, limit: int, name: str) -> Source:
    """In memory at the configured size when it fits, else resized item by item."""
    if _fits(len(y), shape, limit):
        return TensorSource(fit_tensor(x, shape, name), y)
    return StreamSource(_ResizeItem(x, shape, name), y.tolist())


def _missing(name: str, where: Path) -> DataError:
    return DataError(
        f"dataset {name!r}: no files under {where}; set data.download: true (blocknas train "
        "--download) or point data.root (--data-dir) at the files"
    )


# --- torchvision datasets ----------------------------------------------------------------------
def _torchvision(name: str, root: Path, download: bool) -> tuple[Any, Any]:
    """(train, test) torchvision dataset objects, with one-line errors."""
    from torchvision import datasets as tv

    class _CIFAR10(tv.CIFAR10):
        def _check_integrity(self) -> bool:  # user files: existence, not md5
            return all(
                (Path(self.root) / self.base_folder / f).is_file()
                for f, _ in self.train_list + self.test_list
            )

        def _load_meta(self) -> None:
            import pickle

            path = Path(self.root) / self.base_folder / self.meta["filename"]
            with open(path, "rb") as f:
                self.classes = pickle.load(f, encoding="latin1")[self.meta["key"]]
            self.class_to_idx = {c: i for i, c in enumerate(self.classes)}

    class _CIFAR100(_CIFAR10):
        base_folder = tv.CIFAR100.base_folder
        url, filename, tgz_md5 = tv.CIFAR100.url, tv.CIFAR100.filename, tv.CIFAR100.tgz_md5
        train_list, test_list, meta = (
            tv.CIFAR100.train_list,
            tv.CIFAR100.test_list,
            tv.CIFAR100.meta,
        )

    cls: Any = {
        "cifar10": _CIFAR10,
        "cifar100": _CIFAR100,
        "mnist": tv.MNIST,
        "fashion_mnist": tv.FashionMNIST,
    }[name]
    where = root / (cls.base_folder if name.startswith("cifar") else f"{cls.__name__}/raw")
    try:
        if download:
            cls(str(root), train=True, download=True)
        return cls(str(root), train=True), cls(str(root), train=False)
    except RuntimeError as e:
        if "not found" in str(e).lower():
            raise _missing(name, where) from None
        raise DataError(f"dataset {name!r} under {where}: {e}") from None
    except (OSError, ValueError, EOFError) as e:  # a failed download, a truncated file
        raise DataError(f"dataset {name!r} under {where}: {e}") from None


def _from_torchvision(
    name: str, root: Path, download: bool, shape: Shape, limit: int, flip: bool
) -> Loaded:
    train, test = _torchvision(name, root, download)

    def tensors(ds: Any) -> tuple[torch.Tensor, torch.Tensor]:
        data = torch.as_tensor(np.asarray(ds.data), dtype=torch.uint8)
        x = data.unsqueeze(1) if data.ndim == 3 else data.permute(0, 3, 1, 2)
        return x, torch.as_tensor(np.asarray(ds.targets), dtype=torch.long)

    return Loaded(
        train=_source(*tensors(train), shape, limit, name),
        test=_source(*tensors(test), shape, limit, name),
        classes=[str(c) for c in train.classes],
        flip=flip,
    )


def cifar10(root: Path, download: bool, shape: Shape, limit: int) -> Loaded:
    return _from_torchvision("cifar10", root, download, shape, limit, flip=True)


def cifar100(root: Path, download: bool, shape: Shape, limit: int) -> Loaded:
    return _from_torchvision("cifar100", root, download, shape, limit, flip=True)


def mnist(root: Path, download: bool, shape: Shape, limit: int) -> Loaded:
    return _from_torchvision("mnist", root, download, shape, limit, flip=False)


def fashion_mnist(root: Path, download: bool, shape: Shape, limit: int) -> Loaded:
    return _from_torchvision("fashion_mnist", root, download, shape, limit, flip=True)


# --- a directory per class -------------------------------------------------------------------
class _ImageReader:
    """Decodes image ``i`` at the configured size (picklable, for DataLoader workers)."""

    def __init__(self, paths: list[str], shape: Shape) -> None:
        self.paths, self.shape = paths, shape

    def __call__(self, i: int) -> torch.Tensor:
        from PIL import Image, UnidentifiedImageError

        c, h, w = self.shape
        try:
            with Image.open(self.paths[i]) as img:
                sized = img.convert("L" if c == 1 else "RGB").resize(
                    (w, h), Image.Resampling.BILINEAR
                )
                a = np.asarray(sized, dtype=np.uint8)
        except (OSError, UnidentifiedImageError) as e:
            raise DataError(f"dataset 'imagefolder': cannot read {self.paths[i]}: {e}") from None
        if c not in (1, 3):
            raise DataError(f"dataset 'imagefolder': images load with 1 or 3 channels, not {c}")
        t = torch.from_numpy(a.copy())
        return t.unsqueeze(0) if t.ndim == 2 else t.permute(2, 0, 1).contiguous()


def _folder(
    path: Path, class_to_idx: dict[str, int] | None, shape: Shape, limit: int
) -> tuple[Source, list[str]]:
    from torchvision.datasets.folder import IMG_EXTENSIONS, find_classes, make_dataset

    try:
        classes, found = find_classes(str(path))
    except FileNotFoundError:
        raise DataError(f"dataset 'imagefolder': no class directories under {path}") from None
    mapping = class_to_idx if class_to_idx is not None else found
    unknown = sorted(set(classes) - set(mapping))
    if unknown:
        raise DataError(
            f"dataset 'imagefolder': {path} has classes {unknown} that the train split lacks"
        )
    try:
        samples = make_dataset(
            str(path), {c: mapping[c] for c in classes}, extensions=IMG_EXTENSIONS
        )
    except FileNotFoundError as e:
        raise DataError(f"dataset 'imagefolder': {e}".splitlines()[0]) from None
    paths = [p for p, _ in samples]
    targets = [t for _, t in samples]
    reader = _ImageReader(paths, shape)
    if _fits(len(paths), shape, limit):
        x = torch.stack([reader(i) for i in range(len(paths))])
        source: Source = TensorSource(x, torch.tensor(targets, dtype=torch.long))
    else:
        source = StreamSource(reader, targets)
    return source, sorted(mapping, key=mapping.__getitem__)


def imagefolder(root: Path, download: bool, shape: Shape, limit: int) -> Loaded:
    """``root/train/<class>/*.png`` (with optional ``val/`` and ``test/``) or ``root/<class>/``."""
    if download:
        raise DataError("dataset 'imagefolder' cannot be downloaded; point data.root at it")
    if not root.is_dir():
        raise DataError(f"dataset 'imagefolder': {root} is not a directory")
    if (root / "train").is_dir():
        train, classes = _folder(root / "train", None, shape, limit)
        mapping = {c: i for i, c in enumerate(classes)}
        split = {
            s: _folder(root / s, mapping, shape, limit)[0]
            for s in ("val", "test")
            if (root / s).is_dir()
        }
        return Loaded(train, split.get("test"), classes, flip=True, val=split.get("val"))
    train, classes = _folder(root, None, shape, limit)
    return Loaded(train, None, classes, flip=True)
