"""The Ray Tune trainable: one search trial = one call to :func:`~blocknas.runners.train.train`.

It reports once per epoch (``epoch``, ``accuracy``, ``train_loss`` and the candidate's fixed
analytic costs, which the early-stopping scheduler compares) and once more at the end with every
final metric and ``final: True``. A trial that raises (NaN loss, out of memory, a bad spec)
reports ``error`` with a one-line reason and ends normally, so the search records the reason
instead of a Ray traceback. Datasets are loaded once per worker process and reused across the
trials an actor runs (Tune's ``reuse_actors``).
"""

from __future__ import annotations

import time
from typing import Any

from blocknas.runners.config import DataConfig, TrainConfig
from blocknas.runners.data import DataSplits
from blocknas.runners.train import EpochReport, train
from blocknas.spaces import ArchSpec

_DATA: dict[tuple[Any, ...], DataSplits] = {}  # per worker process: datasets already loaded


def _data(cfg: DataConfig, input: tuple[int, int, int], seed: int) -> DataSplits:
    key = (cfg.model_dump_json(), input, seed)
    if key not in _DATA:
        _DATA.clear()  # one dataset per worker at a time: memory stays bounded
        _DATA[key] = cfg.load(input, seed=seed)
    return _DATA[key]


def node_name() -> str:
    """The Ray node this trial runs on: its IP and the start of its node id."""
    import ray

    ctx = ray.get_runtime_context()
    return f"{ray.util.get_node_ip_address()}/{ctx.get_node_id()[:8]}"


def run_trial(config: dict[str, Any]) -> None:
    """Tune function trainable; ``config``: spec, train, data, costs, checkpoint, split_seed."""
    from ray import tune

    t0 = time.perf_counter()
    base: dict[str, Any] = {"node": node_name(), **config.get("costs", {})}
    last_epoch = 0

    def on_epoch(r: EpochReport) -> None:
        nonlocal last_epoch
        last_epoch = r.epoch
        tune.report(
            {
                **base,
                "epoch": r.epoch,
                "accuracy": r.accuracy,
                "train_loss": r.train_loss,
                "sigmas": r.sigmas,
            }
        )

    try:
        spec = ArchSpec.from_dict(config["spec"])
        train_cfg = TrainConfig(**config["train"])
        data = _data(DataConfig(**config["data"]), spec.input, int(config.get("split_seed", 0)))
        result = train(
            spec,
            data,
            train_cfg,
            on_epoch=on_epoch,
            checkpoint=config.get("checkpoint"),
            resume=True,
        )
    except Exception as e:  # a failed trial is data for the search, not a crash of it
        reason = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}".rstrip(": ")
        tune.report(
            {
                **base,
                "epoch": last_epoch,
                "final": True,
                "error": reason,
                "wall_seconds": time.perf_counter() - t0,
            }
        )
        return
    tune.report(
        {
            **base,
            **result.metrics,
            "final": True,
            "epoch": result.metrics["epochs"],
            "spec": result.spec.to_json(),
            "wall_seconds": time.perf_counter() - t0,
        }
    )
