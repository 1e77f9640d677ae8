"""Every dataset loader on data the tests write in that dataset's own on-disk format.

The writers (``write_mnist``, ``write_cifar``, ``write_folder``) are shared with
``test_data_check.py``.
"""

from __future__ import annotations

import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from blocknas.runners.data import (
    DataError,
    StreamSource,
    TensorSource,
    batches,
    stratified_split,
)
from blocknas.runners.datasets import DATASETS, load_data
from blocknas.runners.train import train
from blocknas.spaces.selftest import combination_spec


def images(n: int, classes: int, shape: tuple[int, ...], seed: int) -> tuple[np.ndarray, list[int]]:
    """Class-dependent brightness so that a label can be checked against its image."""
    rng = np.random.default_rng(seed)
    labels = [i % classes for i in range(n)]
    x = rng.integers(0, 40, size=(n, *shape), dtype=np.uint8)
    for i, y in enumerate(labels):
        x[i] += np.uint8(y * (200 // classes))
    return x, labels


def _brightness_order(source: TensorSource) -> bool:
    """Mean brightness rises with the label: labels stayed with their images."""
    means = [float(source.x[source.y == c].float().mean()) for c in torch.unique(source.y)]
    return means == sorted(means)


# --- MNIST and Fashion-MNIST: idx files --------------------------------------------------------
def _write_idx(folder: Path, prefix: str, x: np.ndarray, y: list[int]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    n, h, w = x.shape
    (folder / f"{prefix}-images-idx3-ubyte").write_bytes(
        struct.pack(">IIII", 2051, n, h, w) + x.tobytes()
    )
    (folder / f"{prefix}-labels-idx1-ubyte").write_bytes(struct.pack(">II", 2049, n) + bytes(y))


def write_mnist(root: Path, folder: str) -> tuple[np.ndarray, list[int]]:
    """200 train and 50 test idx images under ``root/<folder>/raw``; returns the test ones."""
    raw = root / folder / "raw"
    x, y = images(200, 10, (28, 28), seed=1)
    _write_idx(raw, "train", x, y)
    xt, yt = images(50, 10, (28, 28), seed=2)
    _write_idx(raw, "t10k", xt, yt)
    return xt, yt


@pytest.mark.parametrize(
    ("name", "folder"), [("mnist", "MNIST"), ("fashion_mnist", "FashionMNIST")]
)
def test_mnist_family(tmp_path: Path, name: str, folder: str) -> None:
    xt, yt = write_mnist(tmp_path, folder)
    d = load_data(name, input=(1, 28, 28), root=tmp_path, val_fraction=0.2)
    assert isinstance(d.train, TensorSource)
    assert (len(d.train), len(d.val), len(d.test)) == (160, 40, 50)
    assert d.num_classes == 10 and d.flip is (name == "fashion_mnist")
    assert torch.equal(d.test.x[:, 0], torch.from_numpy(xt))  # native size: untouched
    assert torch.equal(d.test.y, torch.tensor(yt))
    assert _brightness_order(d.train)
    # resized and replicated to three channels
    d3 = load_data(name, input=(3, 14, 14), root=tmp_path)
    assert d3.train.x.shape[1:] == (3, 14, 14) and len(d3.mean) == 3


# --- CIFAR-10 and CIFAR-100: pickled batches ---------------------------------------------------
def write_cifar(root: Path, hundred: bool) -> tuple[np.ndarray, list[int]]:
    classes = 100 if hundred else 10
    folder = root / ("cifar-100-python" if hundred else "cifar-10-batches-py")
    folder.mkdir(parents=True)
    key = "fine_labels" if hundred else "labels"
    names = ["train"] if hundred else [f"data_batch_{i}" for i in range(1, 6)]
    for i, fname in enumerate(names):
        x, y = images(200 if hundred else 40, classes, (3, 32, 32), seed=i)
        with open(folder / fname, "wb") as f:
            pickle.dump({"data": x.reshape(len(y), -1), key: y}, f)
    xt, yt = images(30, classes, (3, 32, 32), seed=99)
    with open(folder / ("test" if hundred else "test_batch"), "wb") as f:
        pickle.dump({"data": xt.reshape(len(yt), -1), key: yt}, f)
    meta_key = "fine_label_names" if hundred else "label_names"
    with open(folder / ("meta" if hundred else "batches.meta"), "wb") as f:
        pickle.dump({meta_key: [f"c{i}" for i in range(classes)]}, f)
    return xt, yt


@pytest.mark.parametrize("hundred", [False, True])
def test_cifar(tmp_path: Path, hundred: bool) -> None:
    xt, yt = write_cifar(tmp_path, hundred)
    name = "cifar100" if hundred else "cifar10"
    d = load_data(name, input=(3, 32, 32), root=tmp_path)
    assert d.num_classes == (100 if hundred else 10) and d.flip
    assert len(d.train) + len(d.val) == 200 and len(d.test) == 30
    assert torch.equal(d.test.x, torch.from_numpy(xt))  # C×H×W order kept
    assert d.test.y.tolist() == yt
    assert d.classes[:2] == ["c0", "c1"]
    if not hundred:
        assert _brightness_order(d.train)
    grey = load_data(name, input=(1, 16, 16), root=tmp_path)
    assert grey.test.x.shape[1:] == (1, 16, 16)


def test_missing_files_are_one_line_errors(tmp_path: Path) -> None:
    for name in ("cifar10", "cifar100", "mnist", "fashion_mnist"):
        with pytest.raises(DataError, match=r"no files under .*download") as e:
            load_data(name, input=(3, 32, 32), root=tmp_path / "nowhere")
        assert "\n" not in str(e.value) and e.value.field == "root"
    with pytest.raises(DataError, match="is not a directory") as e:
        load_data("imagefolder", input=(3, 8, 8), root=tmp_path / "nowhere")
    assert e.value.field == "root"
    with pytest.raises(DataError, match=r"needs data\.root") as e:
        load_data("imagefolder", input=(3, 8, 8))
    assert e.value.field == "root"
    with pytest.raises(DataError, match="unknown dataset 'svhn'; choose one of digits") as e:
        load_data("svhn", input=(3, 8, 8))
    assert e.value.field == "name"
    with pytest.raises(DataError, match="asks for 2 channel") as e:
        load_data("digits", input=(2, 8, 8))
    assert e.value.field == "input"
    with pytest.raises(DataError, match="val_fraction") as e:
        load_data("digits", input=(1, 8, 8), val_fraction=0.5)
    assert e.value.field is None


# --- image folders ----------------------------------------------------------------------------
def write_folder(root: Path, n_per_class: int, mode: str = "RGB", seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    for c, name in enumerate(["cat", "dog", "fox"]):
        (root / name).mkdir(parents=True)
        for i in range(n_per_class):
            shape = (12, 10, 3) if mode == "RGB" else (12, 10)
            a = (rng.integers(0, 40, size=shape) + 60 * c).astype(np.uint8)
            Image.fromarray(a, mode=mode).save(root / name / f"{i}.png")


def test_imagefolder_with_splits(tmp_path: Path) -> None:
    write_folder(tmp_path / "train", 6)
    write_folder(tmp_path / "val", 2, seed=1)
    write_folder(tmp_path / "test", 3, mode="L", seed=2)
    d = load_data("imagefolder", input=(3, 8, 8), root=tmp_path)
    assert d.classes == ["cat", "dog", "fox"] and d.num_classes == 3
    assert (len(d.train), len(d.val), len(d.test)) == (18, 6, 9)
    assert isinstance(d.train, TensorSource) and d.train.x.shape[1:] == (3, 8, 8)
    assert _brightness_order(d.train) and _brightness_order(d.test)  # grey test images → RGB


def test_imagefolder_flat_and_streamed(tmp_path: Path) -> None:
    write_folder(tmp_path, 10)
    d = load_data("imagefolder", input=(3, 8, 8), root=tmp_path, memory_limit_mb=0)
    assert isinstance(d.train, StreamSource)
    assert len(d.train) + len(d.val) + len(d.test) == 30
    assert sorted(d.test.targets) == [0, 0, 1, 1, 2, 2]  # 20% of every class
    x, y = next(
        batches(
            d.train, batch_size=4, mean=d.mean, std=d.std, shuffle=True, workers=1, augment=True
        )
    )
    assert x.shape == (4, 3, 8, 8) and x.dtype == torch.float32 and y.dtype == torch.long
    in_memory = load_data("imagefolder", input=(3, 8, 8), root=tmp_path)
    assert torch.equal(in_memory.test.x, torch.stack([d.test[i][0] for i in range(len(d.test))]))
    # the trainer runs on a streamed dataset too
    spec = combination_spec({"block": "plain", "out": 8}, size=8, width=8, num_classes=3)
    from blocknas.runners.config import TrainConfig

    result = train(spec, d, TrainConfig(epochs=1, batch_size=4, workers=0))
    assert 0.0 <= result.metrics["test_accuracy"] <= 1.0


def test_imagefolder_unknown_class_in_val(tmp_path: Path) -> None:
    write_folder(tmp_path / "train", 2)
    (tmp_path / "val" / "owl").mkdir(parents=True)
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "val" / "owl" / "0.png")
    with pytest.raises(DataError, match=r"classes \['owl'\] that the train split lacks"):
        load_data("imagefolder", input=(3, 8, 8), root=tmp_path)


# --- digits, splits and batches ---------------------------------------------------------------
def test_digits_splits() -> None:
    a = load_data("digits", input=(1, 8, 8), seed=0)
    b = load_data("digits", input=(1, 8, 8), seed=1)
    assert len(a.train) + len(a.val) + len(a.test) == 1797
    assert torch.equal(a.test.x, b.test.x)  # the test split does not move with the seed
    assert not torch.equal(a.val.x, b.val.x)
    counts = torch.bincount(a.test.y, minlength=10)
    assert counts.min() >= 34 and counts.max() <= 38  # stratified: ~20% of ~180 per class
    assert abs(float(a.train.x.float().mean()) / 255 - a.mean[0]) < 1e-4
    assert set(DATASETS) >= {
        "digits",
        "imagefolder",
        "cifar10",
        "cifar100",
        "mnist",
        "fashion_mnist",
    }


def test_stratified_split_keeps_every_class() -> None:
    labels = torch.tensor([0] * 50 + [1] * 5 + [2] * 2)
    rest, held = stratified_split(labels, 0.2, seed=3)
    assert sorted(labels[held].tolist()) == [0] * 10 + [1, 2]
    assert len(set(rest.tolist()) | set(held.tolist())) == len(labels)


def test_batches_normalize_and_are_seeded() -> None:
    d = load_data("digits", input=(1, 8, 8))

    def first(seed: int, augment: bool) -> torch.Tensor:
        g = torch.Generator().manual_seed(seed)
        it = batches(
            d.train,
            batch_size=512,
            mean=d.mean,
            std=d.std,
            shuffle=True,
            generator=g,
            augment=augment,
        )
        return next(it)[0]

    assert torch.equal(first(0, True), first(0, True))
    assert not torch.equal(first(0, True), first(1, True))
    everything = torch.cat([x for x, _ in batches(d.train, batch_size=100, mean=d.mean, std=d.std)])
    assert abs(float(everything.mean())) < 1e-3 and abs(float(everything.std()) - 1) < 1e-2
    sizes = [
        len(y) for _, y in batches(d.train, batch_size=100, mean=d.mean, std=d.std, drop_last=True)
    ]
    assert set(sizes) == {100}
