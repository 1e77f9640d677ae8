"""Datasets as train/val/test splits, and the batches the trainer draws from them.

Small datasets (digits, MNIST, CIFAR, an image folder that fits ``memory_limit_mb``) live as one
uint8 tensor per split, on the training device once :meth:`DataSplits.to` has moved them: a
batch is an index, a crop and a flip on the device, with no DataLoader worker overhead. Larger
ones stay a :class:`torch.utils.data.Dataset` that decodes per item and streams through
DataLoader workers. Either way a batch leaves :func:`batches` as normalized float32.

The val split is carved out of the training data, stratified by class, with the search's seed;
the test split is the dataset's own (or a fixed stratified share, for digits and flat folders) and
is reported, never used for selection.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

Shape = tuple[int, int, int]
TEST_FRACTION = 0.2  # for datasets without their own test split
DEFAULT_ROOT = Path("~/.cache/blocknas/data")


class DataError(ValueError):
    """A dataset that cannot be loaded: missing files, a bad name, a shape it cannot take."""


@dataclass
class TensorSource:
    """A split held in memory: ``x`` uint8 N×C×H×W at the configured size, ``y`` int64 labels."""

    x: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:
        return len(self.y)

    def take(self, index: torch.Tensor) -> TensorSource:
        return TensorSource(self.x[index], self.y[index])


class StreamSource(Dataset[tuple[torch.Tensor, int]]):
    """A split read item by item: ``read(i)`` gives uint8 C×H×W at the configured size.

    ``read`` must be picklable (DataLoader workers may be spawned), hence an index list rather
    than a closure for subsets.
    """

    def __init__(
        self,
        read: Callable[[int], torch.Tensor],
        targets: list[int],
        index: list[int] | None = None,
    ) -> None:
        self.read, self.index = read, index
        self.targets = targets if index is None else [targets[i] for i in index]
        self._all_targets = targets

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.read(i if self.index is None else self.index[i]), self.targets[i]

    def take(self, index: torch.Tensor) -> StreamSource:
        idx = index.tolist()
        base = idx if self.index is None else [self.index[i] for i in idx]
        return StreamSource(self.read, self._all_targets, base)


Source = TensorSource | StreamSource


@dataclass
class DataSplits:
    """A dataset ready to train on: three splits and how to normalize and augment them."""

    name: str
    num_classes: int
    input_shape: Shape
    train: Source
    val: Source
    test: Source
    mean: tuple[float, ...]
    std: tuple[float, ...]
    flip: bool = False  # horizontal flips keep the label (not for digits)
    classes: list[str] = field(default_factory=list)

    def to(self, device: torch.device | str) -> DataSplits:
        """The in-memory splits moved to ``device``; streamed ones stay where they are."""

        def move(s: Source) -> Source:
            return (
                TensorSource(s.x.to(device), s.y.to(device)) if isinstance(s, TensorSource) else s
            )

        return replace(self, train=move(self.train), val=move(self.val), test=move(self.test))


def num_examples(source: Source) -> int:
    return len(source)


# --- batches ---------------------------------------------------------------------------------
def batches(
    source: Source,
    *,
    batch_size: int,
    mean: tuple[float, ...],
    std: tuple[float, ...],
    device: torch.device | str = "cpu",
    shuffle: bool = False,
    drop_last: bool = False,
    generator: torch.Generator | None = None,
    augment: bool = False,
    flip: bool = False,
    channels_last: bool = False,
    workers: int = 2,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Normalized float batches on ``device``; crop (and flip) augmentation when ``augment``.

    The CPU ``generator`` drives shuffling and augmentation, so a seed fixes the batch order.
    """
    device = torch.device(device)
    m = torch.tensor(mean, device=device).view(1, -1, 1, 1) * 255
    s = torch.tensor(std, device=device).view(1, -1, 1, 1) * 255

    def prepare(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = x.to(device, non_blocking=True)
        if augment:
            x = _augment(x, flip, generator)
        x = (x.float() - m) / s
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x, y.to(device, non_blocking=True)

    if isinstance(source, TensorSource):
        n = len(source)
        order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
        order = order.to(source.x.device)
        stop = n - n % batch_size if drop_last else n
        for i in range(0, stop, batch_size):
            idx = order[i : i + batch_size]
            yield prepare(source.x[idx], source.y[idx])
        return
    loader = DataLoader(
        source,
        batch_size=batch_size,
        shuffle=shuffle,
        drop_last=drop_last,
        generator=generator,
        num_workers=workers,
        pin_memory=device.type == "cuda",
    )
    for x, y in loader:
        yield prepare(x, torch.as_tensor(y, dtype=torch.long))


def _augment(x: torch.Tensor, flip: bool, generator: torch.Generator | None) -> torch.Tensor:
    """Random crop after zero padding by H/8 (4 pixels at 32×32), then an optional flip."""
    n, c, h, w = x.shape
    ph, pw = max(1, h // 8), max(1, w // 8)
    padded = F.pad(x, (pw, pw, ph, ph))
    dy = torch.randint(0, 2 * ph + 1, (n,), generator=generator).to(x.device)
    dx = torch.randint(0, 2 * pw + 1, (n,), generator=generator).to(x.device)
    rows = (dy[:, None] + torch.arange(h, device=x.device))[:, None, :, None]
    cols = (dx[:, None] + torch.arange(w, device=x.device))[:, None, None, :]
    batch = torch.arange(n, device=x.device)[:, None, None, None]
    chans = torch.arange(c, device=x.device)[None, :, None, None]
    out = padded[batch, chans, rows, cols]
    if flip:
        mirror = (torch.rand(n, generator=generator) < 0.5).to(x.device)
        out = torch.where(mirror[:, None, None, None], out.flip(3), out)
    return out


# --- shapes, splits, statistics --------------------------------------------------------------
def fit_tensor(x: torch.Tensor, shape: Shape, name: str) -> torch.Tensor:
    """uint8 N×C×H×W at the dataset's size → the configured (C, H, W): channels, then resize."""
    c, h, w = shape
    have = x.shape[1]
    if have != c:
        if have == 1 and c == 3:
            x = x.expand(-1, 3, -1, -1)
        elif have == 3 and c == 1:
            weights = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
            x = (x.float() * weights).sum(1, keepdim=True).round().to(torch.uint8)
        else:
            raise DataError(
                f"dataset {name!r} has {have} channel(s); the spec's input asks for {c} "
                "(1 and 3 convert into each other)"
            )
    if tuple(x.shape[2:]) != (h, w):
        out = [
            F.interpolate(chunk.float(), size=(h, w), mode="bilinear", antialias=True)
            .round()
            .clamp(0, 255)
            .to(torch.uint8)
            for chunk in x.split(4096)
        ]
        x = torch.cat(out) if out else x.new_zeros((0, c, h, w))
    return x.contiguous()


def labels_of(source: Source) -> torch.Tensor:
    if isinstance(source, TensorSource):
        return source.y.cpu()
    return torch.as_tensor(source.targets, dtype=torch.long)


def stratified_split(
    labels: torch.Tensor, fraction: float, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """(rest, split) indices; ``split`` holds ``fraction`` of every class (at least one each)."""
    g = torch.Generator().manual_seed(seed)
    rest, split = [], []
    for cls in torch.unique(labels):
        idx = torch.nonzero(labels == cls).flatten()
        idx = idx[torch.randperm(len(idx), generator=g)]
        k = min(len(idx) - 1, max(1, round(fraction * len(idx)))) if len(idx) > 1 else 0
        split.append(idx[:k])
        rest.append(idx[k:])
    return torch.cat(rest).sort().values, torch.cat(split).sort().values


def channel_stats(source: Source, max_items: int = 4096) -> tuple[tuple[float, ...], ...]:
    """Per-channel (mean, std) in [0, 1] over the training split (a sample when it streams)."""
    if isinstance(source, TensorSource):
        x = source.x
    else:
        step = max(1, len(source) // max_items)
        x = torch.stack([source[i][0] for i in range(0, len(source), step)])
    x = x.float().div(255).transpose(0, 1).reshape(x.shape[1], -1)
    mean = x.mean(1)
    std = x.std(1).clamp_min(1e-3)
    return tuple(float(v) for v in mean), tuple(float(v) for v in std)


# --- loading ---------------------------------------------------------------------------------
@dataclass
class Loaded:
    """What a dataset loader returns: splits at the configured size (val and test optional)."""

    train: Source
    test: Source | None
    classes: list[str]
    flip: bool
    val: Source | None = None


Loader = Callable[[Path, bool, Shape, int], Loaded]  # (root, download, input, memory_limit_mb)


def _digits(root: Path, download: bool, shape: Shape, memory_limit_mb: int) -> Loaded:
    """scikit-learn's bundled 8×8 digits (1,797 images, values 0–16): no files needed."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.from_numpy(d.images).mul(255 / 16).round().to(torch.uint8).unsqueeze(1)
    y = torch.from_numpy(d.target).long()
    return Loaded(TensorSource(fit_tensor(x, shape, "digits"), y), None, list("0123456789"), False)


def _registry() -> dict[str, Loader]:
    from blocknas.runners import datasets

    return {
        "digits": _digits,
        "imagefolder": datasets.imagefolder,
        "cifar10": datasets.cifar10,
        "cifar100": datasets.cifar100,
        "mnist": datasets.mnist,
        "fashion_mnist": datasets.fashion_mnist,
    }


DATASETS = ("digits", "imagefolder", "cifar10", "cifar100", "mnist", "fashion_mnist")


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
    if name not in DATASETS:
        raise DataError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    if not 0.0 < val_fraction < 0.5:
        raise DataError(f"val_fraction must be in (0, 0.5), got {val_fraction=}")
    shape = _shape(input)
    if name == "imagefolder" and root is None:
        raise DataError("dataset 'imagefolder' needs data.root (--data-dir): a directory per class")
    base = Path(root).expanduser() if root is not None else DEFAULT_ROOT.expanduser()
    loaded = _registry()[name](base, download, shape, memory_limit_mb)
    train, test = loaded.train, loaded.test
    if test is None:  # a fixed test split, the same whatever the seed
        rest, held = stratified_split(labels_of(train), TEST_FRACTION, seed=0)
        train, test = train.take(rest), train.take(held)
    val = loaded.val
    if val is None:
        keep, held = stratified_split(labels_of(train), val_fraction, seed=seed)
        train, val = train.take(keep), train.take(held)
    if len(train) == 0 or len(val) == 0 or len(test) == 0:
        raise DataError(
            f"dataset {name!r} is too small to split: train {len(train)}, val {len(val)}, "
            f"test {len(test)} images"
        )
    mean, std = channel_stats(train)
    return DataSplits(
        name=name,
        num_classes=len(loaded.classes),
        input_shape=shape,
        train=train,
        val=val,
        test=test,
        mean=mean,
        std=std,
        flip=loaded.flip,
        classes=loaded.classes,
    )


def _shape(input: Shape | tuple[int, ...] | list[int]) -> Shape:
    if len(input) != 3 or any(int(v) < 1 for v in input):
        raise DataError(f"input must be three positive sizes (C, H, W), got {list(input)}")
    c, h, w = (int(v) for v in input)
    return c, h, w
