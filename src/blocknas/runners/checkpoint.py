"""Checkpoints: one file per trained candidate, loadable with ``torch.load(weights_only=True)``.

A checkpoint holds the spec (with the learned adaptor σ and sizes), the weights, the metrics,
the per-epoch history, the training config, and the optimizer, schedule, scaler and RNG states a
resumed run needs. Only tensors and plain containers go in, so loading never unpickles code.
Writes are atomic (a temporary file, then a rename): a run killed mid-save leaves the previous
checkpoint intact.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from blocknas.spaces import ArchSpec, Network, SpecError, build
from blocknas.spaces.files import first_line, read_torch

FORMAT = "blocknas.checkpoint"
VERSION = 1
#: what every checkpoint holds, and of which type (the rest only a resumed run reads)
_FIELDS: dict[str, type] = {
    "spec": dict,
    "state_dict": dict,
    "metrics": dict,
    "epoch": int,
    "history": list,
    "config": dict,
}


def save_checkpoint(
    path: str | Path,
    *,
    spec: ArchSpec,
    model: nn.Module,
    metrics: dict[str, Any],
    epoch: int,
    history: list[dict[str, Any]] | None = None,
    config: dict[str, Any] | None = None,
    resume_state: dict[str, Any] | None = None,
) -> Path:
    """Write a checkpoint atomically; returns its path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "spec": spec.to_dict(),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "metrics": metrics,
        "epoch": epoch,
        "history": history or [],
        "config": config or {},
        **(resume_state or {}),
    }
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save(data, tmp)
    os.replace(tmp, path)
    return path


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """The checkpoint's contents (on CPU); a one-line ValueError naming the file if it is
    missing, foreign, truncated or corrupt.

    >>> load_checkpoint("/nonexistent/model.pt")
    Traceback (most recent call last):
    ...
    ValueError: checkpoint /nonexistent/model.pt does not exist
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"checkpoint {path} does not exist")
    data = read_torch(path, "blocknas checkpoint")
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ValueError(f"{path}: not a blocknas checkpoint")
    if data.get("version") != VERSION:
        raise ValueError(
            f"{path}: checkpoint version {data.get('version')!r}; this reads {VERSION}"
        )
    wrong = [key for key, kind in _FIELDS.items() if not isinstance(data.get(key), kind)]
    if wrong:
        raise ValueError(f"{path}: a damaged blocknas checkpoint (no valid {', '.join(wrong)})")
    return data


def load_model(path: str | Path) -> tuple[Network, ArchSpec]:
    """The trained network (training form, eval mode) and its spec, rebuilt from a checkpoint."""
    return network(load_checkpoint(path), path)


def network(data: dict[str, Any], path: str | Path) -> tuple[Network, ArchSpec]:
    """The network (eval mode) and spec of a loaded checkpoint; one line naming the file if its
    spec or weights do not fit together."""
    try:
        spec = ArchSpec.from_dict(data["spec"])
    except SpecError as e:
        raise ValueError(f"{path}: a damaged blocknas checkpoint (spec: {e})") from None
    model = build(spec)
    try:
        model.load_state_dict(data["state_dict"])
    except (RuntimeError, TypeError, ValueError) as e:  # a missing, extra or reshaped tensor
        raise ValueError(
            f"{path}: a damaged blocknas checkpoint (its weights do not fit its spec: "
            f"{first_line(e)})"
        ) from None
    return model.eval(), spec
