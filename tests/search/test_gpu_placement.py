"""``resources: {gpus: 0.5}``: trials go only to nodes with GPUs, two per GPU. The cluster is a
real multi-node Ray on loopback whose one worker declares a GPU (Ray schedules on what nodes
declare); trials train on the CPU here, since this machine has no CUDA device."""

from __future__ import annotations

import json
import os
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from blocknas.runners.trainable import run_trial
from tests.search.test_search import _run, config


def recording(folder: Path) -> Any:
    """The real trainable, which first writes where it runs and which GPUs Ray gave it."""

    def trainable(cfg: dict[str, Any]) -> None:
        import ray

        record = {
            "node": ray.get_runtime_context().get_node_id(),
            "gpus": [str(g) for g in ray.get_gpu_ids()],
            "cuda_visible": os.environ.get("CUDA_VISIBLE_DEVICES"),
            "assigned": ray.get_runtime_context().get_assigned_resources(),
            "start": time.time(),
        }
        name = Path(cfg["checkpoint"]).stem  # trial_00012: the Optuna trial number
        (folder / f"{name}.json").write_text(json.dumps(record))
        run_trial(cfg)

    return trainable


def test_half_gpu_trials_pack_two_per_gpu_on_gpu_nodes_only(tmp_path: Path) -> None:
    import ray
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    cluster.add_node(num_cpus=3)  # CPUs only: no trial may land here
    cluster.add_node(num_cpus=3, num_gpus=1)
    cluster.wait_for_nodes()
    records = tmp_path / "records"
    records.mkdir()
    cfg = config(tmp_path, search={"trials": 4, "concurrency": 4}, train={"epochs": 3})
    cfg["resources"] = {"cpus": 1, "gpus": 0.5}
    try:
        outcome, _ = _run(cfg, address=cluster.address, trainable=recording(records))
    finally:
        ray.shutdown()
        cluster.shutdown()
    seen = [json.loads(p.read_text()) for p in records.iterdir()]
    assert len(seen) == outcome.results.launched.astype(bool).sum() >= 4
    assert len({r["node"] for r in seen}) == 1  # all on the node with the GPU
    assert all(r["gpus"] == ["0"] and r["cuda_visible"] == "0" for r in seen), seen
    assert all(r["assigned"].get("GPU") == 0.5 for r in seen), seen  # half a GPU each
    # so at most two at once on the one GPU (Ray's accounting), and two did share it
    # from when training started on the worker to when the driver recorded the trial finished
    done = outcome.results.set_index("number").datetime_complete
    starts = {
        int(p.stem.split("_")[1]): json.loads(p.read_text())["start"] for p in records.iterdir()
    }
    events = sorted(
        [(datetime.fromtimestamp(t), 1) for t in starts.values()]
        + [(done[n].to_pydatetime(), -1) for n in starts]
    )
    running, most = 0, 0
    for _, step in events:
        running += step
        most = max(most, running)
    assert most >= 2, events
