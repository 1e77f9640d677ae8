"""Datasets as train/val/test splits, and the batches the trainer draws from them.

Small datasets (digits, MNIST, CIFAR, an image folder that fits ``memory_limit_mb``) live as one
uint8 tensor per split, on the training device once :meth:`DataSplits.to` has moved them: a
batch is an index, a crop and a flip on the device, with no DataLoader worker overhead. Larger
ones stay a :class:`torch.utils.data.Dataset` that decodes per item and streams through
DataLoader workers. Either way a batch leaves :func:`batches` as normalized float32.

The val split is carved out of the training data, stratified by class, with the search's seed;
the test split is the dataset's own (or a fixed stratified share, for digits and flat folders) and
is reported, never used for selection.

This module is the core the loaders build on; the loaders themselves, their registry and
``load_data`` live in :mod:`blocknas.runners.datasets`, which imports this one (never the reverse).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Literal

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

Shape = tuple[int, int, int]
TEST_FRACTION = 0.2  # for datasets without their own test split
DataField = Literal["name", "root", "download", "num_classes", "input"]


class DataError(ValueError):
    """A dataset that cannot be loaded: missing files, a bad name, a shape it cannot take.

    ``field`` names the config field at fault (``"root"``, ``"num_classes"``, ...), so that a
    caller can point at it; None when no single field is.

    >>> import pickle
    >>> e = pickle.loads(pickle.dumps(DataError("num_classes=3, but ...", field="num_classes")))
    >>> e.field, str(e)
    ('num_classes', 'num_classes=3, but ...')
    """

    def __init__(self, message: str, field: DataField | None = None) -> None:
        self.message = message
        self.field: DataField | None = field
        super().__init__(message)

    def __reduce__(self) -> tuple[type[DataError], tuple[str, DataField | None]]:
        # Keep the error picklable with its field (Ray ships exceptions between processes).
        return (DataError, (self.message, self.field))


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
def as_shape(input: Shape | tuple[int, ...] | list[int]) -> Shape:
    """The spec's input as (C, H, W), checked: three positive sizes.

    >>> as_shape([3, 32, 32])
    (3, 32, 32)
    """
    if len(input) != 3 or any(int(v) < 1 for v in input):
        raise DataError(
            f"input must be three positive sizes (C, H, W), got {list(input)}", field="input"
        )
    c, h, w = (int(v) for v in input)
    return c, h, w


def channel_choices(have: int | None) -> tuple[int, ...]:
    """The input channels images with ``have`` channels can feed (None: they decode to either).

    Grey and RGB convert into each other (:func:`fit_tensor`); other counts stay as they are.

    >>> channel_choices(1), channel_choices(None), channel_choices(4)
    ((1, 3), (1, 3), (4,))
    """
    return (1, 3) if have is None or have in (1, 3) else (have,)


def check_channels(name: str, have: int | None, want: int) -> None:
    """A one-line :class:`DataError` (field ``input``) when ``want`` channels cannot be fed."""
    allowed = channel_choices(have)
    if want not in allowed:
        native = "loads with 1 or 3 channels" if have is None else f"has {have} channel(s)"
        convert = " (grey and RGB convert into each other)" if allowed == (1, 3) else ""
        raise DataError(
            f"input asks for {want} channel(s), but dataset {name!r} {native}; allowed: "
            f"{' or '.join(map(str, allowed))}{convert}",
            field="input",
        )


def fit_tensor(x: torch.Tensor, shape: Shape, name: str) -> torch.Tensor:
    """uint8 N×C×H×W at the dataset's size → the configured (C, H, W): channels, then resize."""
    c, h, w = shape
    have = x.shape[1]
    check_channels(name, have, c)
    if have == 1 and c == 3:
        x = x.expand(-1, 3, -1, -1)
    elif have == 3 and c == 1:
        weights = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
        x = (x.float() * weights).sum(1, keepdim=True).round().to(torch.uint8)
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


def fits_memory(n: int, shape: Shape, memory_limit_mb: int) -> bool:
    """Whether ``n`` uint8 images of ``shape`` fit ``memory_limit_mb`` MiB, to live as a tensor."""
    c, h, w = shape
    return n * c * h * w <= memory_limit_mb * 2**20


class _ResizeItem:
    """Reads item ``i`` of an in-memory native-size tensor at the configured size (picklable)."""

    def __init__(self, x: torch.Tensor, shape: Shape, name: str) -> None:
        self.x, self.shape, self.name = x, shape, name

    def __call__(self, i: int) -> torch.Tensor:
        return fit_tensor(self.x[i : i + 1], self.shape, self.name)[0]


def sized_source(x: torch.Tensor, y: torch.Tensor, shape: Shape, limit: int, name: str) -> Source:
    """Native-size images as a split: in memory at ``shape`` when it fits, else item by item."""
    if fits_memory(len(y), shape, limit):
        return TensorSource(fit_tensor(x, shape, name), y)
    return StreamSource(_ResizeItem(x, shape, name), y.tolist())


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


# --- from a loader's output to splits --------------------------------------------------------
@dataclass
class Loaded:
    """What a dataset loader returns: splits at the configured size (val and test optional)."""

    train: Source
    test: Source | None
    classes: list[str]
    val: Source | None = None


@dataclass
class DatasetInfo:
    """What a dataset holds, as a cheap check learns it from file names, without loading it."""

    num_classes: int
    channels: int | None  # native image channels; None: image files that decode to 1 or 3
    classes: list[str] = field(default_factory=list)  # empty when unknown before a download


def check_val_fraction(val_fraction: float) -> None:
    """Checked before loading, so that a bad value fails before any file is read."""
    if not 0.0 < val_fraction < 0.5:
        raise DataError(f"val_fraction must be in (0, 0.5), got {val_fraction=}")


def make_splits(
    name: str,
    loaded: Loaded,
    shape: Shape,
    *,
    flip: bool,
    seed: int = 0,
    val_fraction: float = 0.1,
) -> DataSplits:
    """Carve the splits a loader did not provide: a fixed test share, then val with ``seed``.

    >>> x = torch.zeros(40, 1, 4, 4, dtype=torch.uint8)
    >>> loaded = Loaded(TensorSource(x, torch.arange(40) % 2), None, ["a", "b"])
    >>> d = make_splits("toy", loaded, (1, 4, 4), flip=False, val_fraction=0.25)
    >>> len(d.train), len(d.val), len(d.test)
    (24, 8, 8)
    """
    check_val_fraction(val_fraction)
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
        flip=flip,
        classes=loaded.classes,
    )
