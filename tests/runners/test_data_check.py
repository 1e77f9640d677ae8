"""``check_data``: the cheap check a search runs before any worker, on real files in tmp dirs."""

from __future__ import annotations

import ast
import pickle
import re
from collections.abc import Callable
from pathlib import Path

import pytest

import blocknas.runners.data as core
from blocknas.runners.config import DataConfig
from blocknas.runners.data import DataError
from blocknas.runners.datasets import DATASETS, DatasetInfo, check_data, load_data
from tests.runners.test_data import write_cifar, write_folder, write_mnist

Writer = Callable[[Path], object]

# name → (writes its files under a root, input shape, classes, native channels)
FORMATS: dict[str, tuple[Writer, tuple[int, int, int], int, int | None]] = {
    "mnist": (lambda r: write_mnist(r, "MNIST"), (1, 28, 28), 10, 1),
    "fashion_mnist": (lambda r: write_mnist(r, "FashionMNIST"), (1, 28, 28), 10, 1),
    "cifar10": (lambda r: write_cifar(r, hundred=False), (3, 32, 32), 10, 3),
    "cifar100": (lambda r: write_cifar(r, hundred=True), (3, 32, 32), 100, 3),
    "imagefolder": (lambda r: write_folder(r, 4), (3, 8, 8), 3, None),
}


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_check_agrees_with_the_loader(tmp_path: Path, name: str) -> None:
    write, shape, n, channels = FORMATS[name]
    write(tmp_path)
    info = check_data(name, input=shape, num_classes=n, root=tmp_path)
    assert (info.num_classes, info.channels) == (n, channels)
    loaded = load_data(name, input=shape, root=tmp_path)
    assert info.classes == loaded.classes and info.num_classes == loaded.num_classes


def test_digits_and_the_config_check(tmp_path: Path) -> None:
    info = check_data("digits", input=(3, 8, 8), num_classes=10)  # grey → RGB converts
    assert info == DatasetInfo(10, 1, list("0123456789"))
    write_folder(tmp_path / "train", 2)
    write_folder(tmp_path / "val", 1, seed=1)
    cfg = DataConfig(name="imagefolder", root=tmp_path)
    assert cfg.check([1, 8, 8], num_classes=3).classes == ["cat", "dog", "fox"]
    with pytest.raises(DataError) as e:
        cfg.check([3, 8, 8], num_classes=4)
    assert e.value.field == "num_classes"


def test_check_reads_no_image_data(tmp_path: Path) -> None:
    """Files that exist but cannot be decoded pass the check; only loading reads them."""
    write_folder(tmp_path / "folder", 2)
    for png in (tmp_path / "folder").rglob("*.png"):
        png.write_bytes(b"not a png")
    assert check_data("imagefolder", input=(3, 8, 8), num_classes=3, root=tmp_path / "folder")
    with pytest.raises(DataError, match="cannot read"):
        load_data("imagefolder", input=(3, 8, 8), root=tmp_path / "folder")
    write_cifar(tmp_path / "cifar", hundred=False)
    (tmp_path / "cifar" / "cifar-10-batches-py" / "data_batch_1").write_bytes(b"truncated")
    assert check_data("cifar10", input=(3, 32, 32), num_classes=10, root=tmp_path / "cifar")
    with pytest.raises(DataError, match="dataset 'cifar10' under "):
        load_data("cifar10", input=(3, 32, 32), root=tmp_path / "cifar")


def _field(**kwargs: object) -> str | None:
    """The field of the DataError that ``check_data(**kwargs)`` raises, after checks on its text."""
    with pytest.raises(DataError) as e:
        check_data(**kwargs)  # type: ignore[arg-type]
    assert "\n" not in str(e.value)
    return e.value.field


def test_missing_files_name_the_root(tmp_path: Path) -> None:
    nowhere = tmp_path / "nowhere"
    for name, folder in [
        ("cifar10", "cifar-10-batches-py"),
        ("cifar100", "cifar-100-python"),
        ("mnist", "MNIST/raw"),
        ("fashion_mnist", "FashionMNIST/raw"),
    ]:
        with pytest.raises(
            DataError, match=re.escape(f"no files under {nowhere / folder}; set data.down")
        ):
            check_data(name, input=(1, 28, 28), num_classes=10, root=nowhere)
        assert _field(name=name, input=(1, 28, 28), num_classes=10, root=nowhere) == "root"
    assert _field(name="imagefolder", input=(3, 8, 8), num_classes=3, root=nowhere) == "root"
    assert _field(name="imagefolder", input=(3, 8, 8), num_classes=3) == "root"  # no root at all
    # a missing file is enough: torchvision would refuse the rest too
    write_cifar(tmp_path / "c", hundred=False)
    (tmp_path / "c" / "cifar-10-batches-py" / "data_batch_5").unlink()
    assert _field(name="cifar10", input=(3, 32, 32), num_classes=10, root=tmp_path / "c") == "root"


def test_download_skips_the_files_where_it_can(tmp_path: Path) -> None:
    info = check_data("cifar100", input=(3, 32, 32), num_classes=100, root=tmp_path, download=True)
    assert (info.num_classes, info.channels, info.classes) == (100, 3, [])
    assert _field(name="mnist", input=(1, 8, 8), num_classes=100, download=True) == "num_classes"
    write_folder(tmp_path / "f", 1)  # an image folder cannot be downloaded, even when present
    folder = {"input": (3, 8, 8), "num_classes": 3, "root": tmp_path / "f"}
    assert _field(name="imagefolder", download=True, **folder) == "download"
    assert check_data("imagefolder", **folder).num_classes == 3  # type: ignore[arg-type]


def test_spec_mismatches(tmp_path: Path) -> None:
    write_cifar(tmp_path, hundred=False)
    with pytest.raises(DataError, match=r"^num_classes=100, but dataset 'cifar10' has 10 classes$"):
        check_data("cifar10", input=(3, 32, 32), num_classes=100, root=tmp_path)
    assert _field(name="cifar10", input=(2, 32, 32), num_classes=10, root=tmp_path) == "input"
    assert _field(name="cifar10", input=(3, 32), num_classes=10, root=tmp_path) == "input"
    assert _field(name="digits", input=(4, 8, 8), num_classes=10) == "input"
    with pytest.raises(DataError, match="allowed: 1 or 3") as e:
        check_data("digits", input=(2, 8, 8), num_classes=10)
    assert e.value.field == "input"
    assert check_data("cifar10", input=(1, 16, 16), num_classes=10, root=tmp_path).channels == 3


def test_unknown_name_lists_the_valid_ones() -> None:
    with pytest.raises(DataError, match="unknown dataset 'svhn'; choose one of ") as e:
        check_data("svhn", input=(3, 32, 32), num_classes=10)
    assert e.value.field == "name" and all(n in str(e.value) for n in DATASETS)


def test_image_folders_that_the_loader_would_refuse(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no class directories") as e:
        check_data("imagefolder", input=(3, 8, 8), num_classes=0, root=tmp_path / "empty")
    assert e.value.field == "root"
    write_folder(tmp_path / "some", 1)
    (tmp_path / "some" / "owl").mkdir()
    (tmp_path / "some" / "owl" / "notes.txt").write_text("no image here")
    with pytest.raises(DataError, match=r"no image files under .*owl") as e:
        check_data("imagefolder", input=(3, 8, 8), num_classes=4, root=tmp_path / "some")
    assert e.value.field == "root"
    write_folder(tmp_path / "split" / "train", 1)
    (tmp_path / "split" / "test" / "owl").mkdir(parents=True)
    field = _field(name="imagefolder", input=(3, 8, 8), num_classes=3, root=tmp_path / "split")
    assert field == "root"


def test_data_error_pickles_with_its_field() -> None:
    for err in (DataError("bad root", field="root"), DataError("plain")):
        back = pickle.loads(pickle.dumps(err))
        assert type(back) is DataError
        assert (str(back), back.field) == (str(err), err.field)
    assert DataError("plain").field is None


def test_the_core_never_imports_the_loaders() -> None:
    """data.py is the core: datasets.py imports it, never the reverse (no import cycle)."""
    tree = ast.parse(Path(core.__file__).read_text())
    imported: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            imported += [f"{node.module}.{a.name}" for a in node.names]
    assert imported  # the walk saw the imports at all
    assert not [m for m in imported if "datasets" in m.split(".")], imported
