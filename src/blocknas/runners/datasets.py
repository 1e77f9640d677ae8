"""The datasets a search can train on: a registry of loaders, ``load_data`` and ``check_data``.

Each registry entry (:data:`DATASETS`) carries what is specific to one dataset: how it loads, how
it is checked cheaply, whether flips keep its labels. CIFAR-10/100, MNIST and Fashion-MNIST are
read from torchvision's own layout under ``root`` (an existing torchvision data directory works as
is), downloaded only when asked; user files are taken as they are (md5 sums are checked only on
download). Splits live in memory when they fit ``memory_limit_mb``, else stream (see
:mod:`blocknas.runners.data`, the core this module builds on).
"""

from __future__ import annotations

import functools
import os
import pickle
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from blocknas.runners.data import (
    DataError,
    DatasetInfo,
    DataSplits,
    Loaded,
    Shape,
    Source,
    StreamSource,
    TensorSource,
    as_shape,
    check_channels,
    check_val_fraction,
    fit_tensor,
    fits_memory,
    make_splits,
    sized_source,
)

DEFAULT_ROOT = Path("~/.cache/blocknas/data")


class Dataset:
    """A registry entry: how one dataset loads and is checked, and what else is specific to it."""

    name: str
    flip: bool = False  # horizontal flips keep the label

    def load(self, root: Path | None, download: bool, shape: Shape, limit: int) -> Loaded:
        """Its splits at ``shape``, in memory when they fit ``limit`` MiB (``root``: as given)."""
        raise NotImplementedError

    def probe(self, root: Path | None, download: bool) -> DatasetInfo:
        """What it holds, from the file system alone: never decodes an image or loads arrays."""
        raise NotImplementedError


def _missing(name: str, where: Path) -> DataError:
    return DataError(
        f"dataset {name!r}: no files under {where}; set data.download: true (blocknas train "
        "--download) or point data.root (--data-dir) at the files",
        field="root",
    )


# --- digits --------------------------------------------------------------------------------------
class _Digits(Dataset):
    """scikit-learn's bundled 8×8 digits (1,797 images, values 0–16): no files needed."""

    name = "digits"
    classes: ClassVar[tuple[str, ...]] = tuple("0123456789")

    def load(self, root: Path | None, download: bool, shape: Shape, limit: int) -> Loaded:
        from sklearn.datasets import load_digits

        d = load_digits()
        x = torch.from_numpy(d.images).mul(255 / 16).round().to(torch.uint8).unsqueeze(1)
        y = torch.from_numpy(d.target).long()
        return Loaded(TensorSource(fit_tensor(x, shape, self.name), y), None, list(self.classes))

    def probe(self, root: Path | None, download: bool) -> DatasetInfo:
        return DatasetInfo(len(self.classes), 1, list(self.classes))


# --- torchvision datasets ------------------------------------------------------------------------
class _Torchvision(Dataset):
    """A torchvision dataset class ``tv`` read from its layout under ``root``.

    Its family says where torchvision reads (:meth:`folder`), which files it checks there
    (:meth:`files`) and how the class names are known without loading (:meth:`class_names`).
    """

    def __init__(self, name: str, tv: str, num_classes: int, channels: int, flip: bool) -> None:
        self.name, self.tv, self.num_classes, self.channels = name, tv, num_classes, channels
        self.flip = flip

    def tv_class(self) -> Any:
        from torchvision import datasets as tv

        return getattr(tv, self.tv)

    def folder(self, root: Path) -> Path:
        raise NotImplementedError

    def files(self) -> list[str]:
        raise NotImplementedError

    def class_names(self, folder: Path) -> list[str]:
        raise NotImplementedError

    def probe(self, root: Path | None, download: bool) -> DatasetInfo:
        folder = self.folder(root or DEFAULT_ROOT.expanduser())
        if all((folder / f).is_file() for f in self.files()):
            names = self.class_names(folder)
            return DatasetInfo(len(names), self.channels, names)
        if download:  # the files come later; the counts are known
            return DatasetInfo(self.num_classes, self.channels, [])
        raise _missing(self.name, folder)

    def load(self, root: Path | None, download: bool, shape: Shape, limit: int) -> Loaded:
        train, test = self._open(root or DEFAULT_ROOT.expanduser(), download)

        def tensors(ds: Any) -> tuple[torch.Tensor, torch.Tensor]:
            data = torch.as_tensor(np.asarray(ds.data), dtype=torch.uint8)
            x = data.unsqueeze(1) if data.ndim == 3 else data.permute(0, 3, 1, 2)
            return x, torch.as_tensor(np.asarray(ds.targets), dtype=torch.long)

        return Loaded(
            train=sized_source(*tensors(train), shape, limit, self.name),
            test=sized_source(*tensors(test), shape, limit, self.name),
            classes=[str(c) for c in train.classes],
        )

    def _open(self, root: Path, download: bool) -> tuple[Any, Any]:
        """(train, test) torchvision datasets; missing, truncated or undownloadable: one line."""
        cls, where = self.tv_class(), self.folder(root)
        try:
            if download:
                cls(str(root), train=True, download=True)
            return cls(str(root), train=True), cls(str(root), train=False)
        except (RuntimeError, OSError, ValueError, EOFError, pickle.UnpicklingError) as e:
            if isinstance(e, RuntimeError) and "not found" in str(e).lower():
                raise _missing(self.name, where) from None
            raise DataError(f"dataset {self.name!r} under {where}: {e}") from None


def _cifar_files(cls: Any) -> list[str]:
    return [f for f, _ in cls.train_list + cls.test_list] + [cls.meta["filename"]]


def _cifar_names(cls: Any, folder: Path) -> list[str]:
    """The class names in CIFAR's small meta file."""
    with open(folder / cls.meta["filename"], "rb") as f:
        return [str(c) for c in pickle.load(f, encoding="latin1")[cls.meta["key"]]]


@functools.cache
def _user_cifar(tv_name: str) -> Any:
    """torchvision's CIFAR class, checking that user files exist rather than their md5 sums."""
    from torchvision import datasets as tv

    class UserFiles(getattr(tv, tv_name)):  # type: ignore[misc]
        def _check_integrity(self) -> bool:
            folder = Path(self.root) / self.base_folder
            return all((folder / f).is_file() for f in _cifar_files(self))

        def _load_meta(self) -> None:
            self.classes = _cifar_names(self, Path(self.root) / self.base_folder)
            self.class_to_idx = {c: i for i, c in enumerate(self.classes)}

    return UserFiles


class _Cifar(_Torchvision):
    def tv_class(self) -> Any:
        return _user_cifar(self.tv)

    def folder(self, root: Path) -> Path:
        return root / self.tv_class().base_folder

    def files(self) -> list[str]:
        return _cifar_files(self.tv_class())

    def class_names(self, folder: Path) -> list[str]:
        return _cifar_names(self.tv_class(), folder)


class _Mnist(_Torchvision):
    def folder(self, root: Path) -> Path:
        return root / self.tv_class().__name__ / "raw"  # torchvision's raw_folder

    def files(self) -> list[str]:
        return [os.path.splitext(os.path.basename(u))[0] for u, _ in self.tv_class().resources]

    def class_names(self, folder: Path) -> list[str]:
        return [str(c) for c in self.tv_class().classes]


# --- a directory per class -------------------------------------------------------------------
class _ImageReader:
    """Decodes image ``i`` at the configured size (picklable, for DataLoader workers)."""

    def __init__(self, paths: list[str], shape: Shape) -> None:
        self.paths, self.shape = paths, shape

    def __call__(self, i: int) -> torch.Tensor:
        from PIL import Image, UnidentifiedImageError

        c, h, w = self.shape
        check_channels("imagefolder", None, c)
        try:
            with Image.open(self.paths[i]) as img:
                sized = img.convert("L" if c == 1 else "RGB").resize(
                    (w, h), Image.Resampling.BILINEAR
                )
                a = np.asarray(sized, dtype=np.uint8)
        except (OSError, UnidentifiedImageError) as e:
            raise DataError(f"dataset 'imagefolder': cannot read {self.paths[i]}: {e}") from None
        t = torch.from_numpy(a.copy())
        return t.unsqueeze(0) if t.ndim == 2 else t.permute(2, 0, 1).contiguous()


def _classes(path: Path, known: list[str] | None) -> list[str]:
    """The class directories under ``path``, all of them in ``known`` (the train split's)."""
    from torchvision.datasets.folder import find_classes

    try:
        classes, _ = find_classes(str(path))
    except FileNotFoundError:
        raise DataError(
            f"dataset 'imagefolder': no class directories under {path}", field="root"
        ) from None
    unknown = sorted(set(classes) - set(known or classes))
    if unknown:
        raise DataError(
            f"dataset 'imagefolder': {path} has classes {unknown} that the train split lacks",
            field="root",
        )
    return classes


def _folder(path: Path, known: list[str] | None, shape: Shape, limit: int) -> Source:
    from torchvision.datasets.folder import IMG_EXTENSIONS, make_dataset

    classes = _classes(path, known)
    mapping = {c: i for i, c in enumerate(known or classes)}
    try:
        samples = make_dataset(
            str(path), {c: mapping[c] for c in classes}, extensions=IMG_EXTENSIONS
        )
    except FileNotFoundError as e:
        raise DataError(f"dataset 'imagefolder': {e}".splitlines()[0], field="root") from None
    paths = [p for p, _ in samples]
    targets = [t for _, t in samples]
    reader = _ImageReader(paths, shape)
    if fits_memory(len(paths), shape, limit):
        x = torch.stack([reader(i) for i in range(len(paths))])
        return TensorSource(x, torch.tensor(targets, dtype=torch.long))
    return StreamSource(reader, targets)


def _has_image(folder: Path) -> bool:
    """Whether ``folder``, walked as torchvision walks it, holds an image file (names only)."""
    from torchvision.datasets.folder import IMG_EXTENSIONS

    walk = os.walk(folder, followlinks=True)  # lazy: stops at the first image
    return any(f.lower().endswith(IMG_EXTENSIONS) for _, _, files in walk for f in files)


class _ImageFolder(Dataset):
    """``root/train/<class>/*.png`` (with optional ``val/`` and ``test/``) or ``root/<class>/``."""

    name = "imagefolder"
    flip = True

    def _splits(self, root: Path | None, download: bool) -> dict[str, Path]:
        """The split directories ("train", optional "val" and "test") under a checked root."""
        if download:
            msg = "dataset 'imagefolder' cannot be downloaded; set data.download: false"
            raise DataError(msg, field="download")
        if root is None:
            raise DataError(
                "dataset 'imagefolder' needs data.root (--data-dir): a directory per class",
                field="root",
            )
        if not root.is_dir():
            raise DataError(f"dataset 'imagefolder': {root} is not a directory", field="root")
        if not (root / "train").is_dir():
            return {"train": root}
        return {s: root / s for s in ("train", "val", "test") if (root / s).is_dir()}

    def load(self, root: Path | None, download: bool, shape: Shape, limit: int) -> Loaded:
        splits = self._splits(root, download)
        classes = _classes(splits["train"], None)
        got = {s: _folder(p, classes, shape, limit) for s, p in splits.items()}
        return Loaded(got["train"], got.get("test"), classes, val=got.get("val"))

    def probe(self, root: Path | None, download: bool) -> DatasetInfo:
        splits = self._splits(root, download)
        classes = _classes(splits["train"], None)
        for path in splits.values():
            for c in _classes(path, classes):
                if not _has_image(path / c):
                    raise DataError(
                        f"dataset 'imagefolder': no image files under {path / c}", field="root"
                    )
        return DatasetInfo(len(classes), None, classes)


# --- the registry ------------------------------------------------------------------------------
DATASETS: dict[str, Dataset] = {
    d.name: d
    for d in (
        _Digits(),
        _ImageFolder(),
        _Cifar("cifar10", "CIFAR10", num_classes=10, channels=3, flip=True),
        _Cifar("cifar100", "CIFAR100", num_classes=100, channels=3, flip=True),
        _Mnist("mnist", "MNIST", num_classes=10, channels=1, flip=False),
        _Mnist("fashion_mnist", "FashionMNIST", num_classes=10, channels=1, flip=True),
    )
}


def dataset(name: str) -> Dataset:
    """The registry entry called ``name``; a :class:`DataError` listing the valid names."""
    try:
        return DATASETS[name]
    except (KeyError, TypeError):
        raise DataError(
            f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}", field="name"
        ) from None


def _path(root: str | Path | None) -> Path | None:
    return Path(root).expanduser() if root is not None else None


def load_data(
    name: str,
    *,
    input: Shape | tuple[int, ...] | list[int],
    root: str | Path | None = None,
    download: bool = False,
    seed: int = 0,
    val_fraction: float = 0.1,
    memory_limit_mb: int = 2048,
) -> DataSplits:
    """Load a dataset as train/val/test splits at the spec's input size.

    ``root`` defaults to ``~/.cache/blocknas/data`` (torchvision's layout below it); ``seed``
    picks the val split. Raises :class:`DataError` (one line) when the data cannot be loaded.

    >>> d = load_data("digits", input=(1, 16, 16))
    >>> d.num_classes, d.input_shape, len(d.train) + len(d.val) + len(d.test)
    (10, (1, 16, 16), 1797)
    """
    entry = dataset(name)
    check_val_fraction(val_fraction)
    shape = as_shape(input)
    loaded = entry.load(_path(root), download, shape, memory_limit_mb)
    return make_splits(name, loaded, shape, flip=entry.flip, seed=seed, val_fraction=val_fraction)


def check_data(
    name: str,
    *,
    input: Shape | tuple[int, ...] | list[int],
    num_classes: int,
    root: str | Path | None = None,
    download: bool = False,
) -> DatasetInfo:
    """Check a dataset against a spec cheaply, so that a search fails before any worker starts.

    Looks at file names only (the files the loader would read, the class directories) and
    compares the class count and channels with the spec's ``num_classes`` and ``input``. Raises
    a one-line :class:`DataError` whose ``field`` names the config field at fault.

    >>> check_data("digits", input=(3, 16, 16), num_classes=10).channels
    1
    >>> check_data("digits", input=(1, 8, 8), num_classes=100)
    Traceback (most recent call last):
    ...
    blocknas.runners.data.DataError: num_classes=100, but dataset 'digits' has 10 classes
    """
    entry = dataset(name)
    shape = as_shape(input)
    info = entry.probe(_path(root), download)
    if num_classes != info.num_classes:
        raise DataError(
            f"num_classes={num_classes}, but dataset {name!r} has {info.num_classes} classes",
            field="num_classes",
        )
    check_channels(name, info.channels, shape[0])
    return info
