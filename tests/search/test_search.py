"""The main job end to end with real Ray, real Optuna storage and real training on digits."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
import pytest
import sqlalchemy.exc
import yaml

from blocknas import load_results, pareto_front
from blocknas.search.config import SearchConfig
from blocknas.search.run import SearchOutcome, run_search
from blocknas.search.study import record, storage_for

BUDGET = 100_000  # macs (deploy form): about a third of this space is over it


def config(tmp_path: Path, **overrides: Any) -> dict[str, Any]:
    """A small search: 8×8 digits, two one-layer stages, two epochs per trial."""
    cfg: dict[str, Any] = {
        "name": "tiny",
        "space": {
            "input": [1, 8, 8],
            "num_classes": 10,
            "stem": {"out": 8},
            "layer": {"block": ["plain", "basic"], "op": ["conv", "dwsep"]},
            "stages": [
                {"depth": 1, "out": [8, 16]},
                {"depth": 1, "out": [16, 32], "stride": 2},
            ],
        },
        "budgets": {"macs": BUDGET},
        "data": {"name": "digits"},
        "train": {"epochs": 2, "batch_size": 64, "workers": 0, "threads": 1},
        "search": {"sampler": "random", "trials": 4, "concurrency": 2, "max_failures": 0},
        "results": str(tmp_path / "runs"),
    }
    for key, value in overrides.items():
        cfg[key] = cfg[key] | value if isinstance(value, dict) else value
    return cfg


# --- sockets: nothing but loopback -----------------------------------------------------------
def _descendants(root: int) -> set[int]:
    parent: dict[int, int] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                parent[int(d.name)] = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    out, todo = {root}, [root]
    while todo:
        p = todo.pop()
        kids = [c for c, pp in parent.items() if pp == p and c not in out]
        out.update(kids)
        todo.extend(kids)
    return out


def _listening(pids: set[int]) -> set[str]:
    """Local addresses that ``pids`` listen on (TCP, IPv4 and IPv6), from /proc."""
    inodes: set[str] = set()
    for pid in pids:
        try:
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
        except OSError:
            continue
    found = set()
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/net/{table}").read_text().splitlines()[1:]:
            cols = line.split()
            if cols[3] == "0A" and cols[9] in inodes:  # 0A: LISTEN
                found.add(_address(cols[1]))
    return found


def _address(hex_addr: str) -> str:
    host, port = hex_addr.split(":")
    raw = bytes.fromhex(host)
    if len(raw) == 4:
        ip = ".".join(str(b) for b in raw[::-1])
    else:  # IPv6: four little-endian 32-bit words
        words = [raw[i : i + 4][::-1] for i in range(0, 16, 4)]
        ip = ":".join(b"".join(words)[i : i + 2].hex() for i in range(0, 16, 2))
    return f"{ip}:{int(port, 16)}"


def _is_loopback(addr: str) -> bool:
    """127.0.0.0/8, ::1, or 127.x mapped into IPv6 (::ffff:7f00:1)."""
    ip = addr.rsplit(":", 1)[0]
    mapped = "0000:0000:0000:0000:0000:ffff:7f"
    return ip.startswith(("127.", mapped)) or ip == "0000:0000:0000:0000:0000:0000:0000:0001"


class ListenerWatch(threading.Thread):
    """Samples, every half second, what this process and its children listen on."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.seen: set[str] = set()
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.5):
            self.seen |= _listening(_descendants(os.getpid()))


# --- the tests -------------------------------------------------------------------------------
def _run(cfg: dict[str, Any], **kwargs: Any) -> tuple[SearchOutcome, list[str]]:
    lines: list[str] = []
    outcome = run_search(SearchConfig.from_dict(cfg), echo=lines.append, **kwargs)
    return outcome, lines


def _check_records(df: Any, cfg: dict[str, Any]) -> None:
    """Every launched trial was within budget; every trained one carries its full record."""
    assert df.attrs["planned_trials"] == cfg["search"]["trials"]
    launched = df[df.launched.astype(bool)]
    assert (launched.macs <= BUDGET).all(), launched[["number", "macs"]]
    rejected = df[~df.launched.astype(bool)]
    assert (rejected.state == "infeasible").all()
    assert (rejected.macs > BUDGET).all()
    assert rejected.reason.str.startswith("over budget: macs").all()
    # not trained, so not measured: missing, never 0; latency predicted when it is an objective
    assert rejected.accuracy.isna().all()
    if "latency_ms" in cfg.get("objectives", []):
        assert (rejected.latency_ms > 0).all()
    else:
        assert rejected.latency_ms.isna().all()
    assert rejected.wall_seconds.isna().all() and (rejected.flops == 2 * rejected.macs).all()
    done = df[df.state == "complete"]
    for row in done.itertuples():
        assert row.epochs == cfg["train"]["epochs"]
        assert 0.0 <= row.accuracy <= 1.0 and 0.0 <= row.test_accuracy <= 1.0
        assert Path(row.checkpoint).is_file() and row.node and row.wall_seconds > 0
        assert json.loads(row.spec)["input"] == [1, 8, 8]
        assert row.latency_ms > 0


def test_local_search_within_budget_and_loopback_only(tmp_path: Path) -> None:
    watch = ListenerWatch()
    watch.start()
    cfg = config(tmp_path)
    try:
        outcome, lines = _run(cfg)
    finally:
        watch.done.set()
        watch.join()
    df = outcome.results
    s = outcome.results.attrs
    assert s["objectives"] == [("accuracy", "maximize"), ("macs", "minimize")]
    _check_records(df, cfg)
    launched_done = df[df.launched.astype(bool) & df.state.isin(["complete", "pruned", "failed"])]
    assert len(launched_done) == 4  # the requested trials all ran; rejections do not count
    assert outcome.rejected == int((~df.launched.astype(bool)).sum())
    front = pareto_front(df)
    assert len(front) >= 1 and (front.state == "complete").all() and (front.macs <= BUDGET).all()
    # progress: one line per finished trial, then a summary line after each
    trial_lines = [ln for ln in lines if ln.startswith("trial ")]
    assert len(trial_lines) == 4 and any("accuracy 0." in ln and "MACs" in ln for ln in trial_lines)
    summaries = [ln for ln in lines if ln.startswith("  done ") and "hypervolume" in ln]
    assert summaries and summaries[-1].startswith("  done 4/4, running 0")
    # the results reload from the storage alone, by the public API
    again = load_results(outcome.storage, "tiny")
    assert again.number.tolist() == df.number.tolist()
    # Ray and the trials listened on loopback only
    assert watch.seen, "the watcher saw no listening socket at all"
    assert all(_is_loopback(a) for a in watch.seen), watch.seen


def _flaky(tmp_path: Path) -> Callable[[dict[str, Any]], None]:
    """The real trainable, except that the first trial raises and the second hits a NaN."""
    from blocknas.runners.trainable import run_trial

    raise_flag, nan_flag = tmp_path / "raise_once", tmp_path / "nan_once"
    raise_flag.touch()
    nan_flag.touch()

    def trainable(config: dict[str, Any]) -> None:
        try:
            raise_flag.unlink()
        except FileNotFoundError:
            pass
        else:
            raise RuntimeError("boom: this trial crashes")
        try:
            nan_flag.unlink()
        except FileNotFoundError:
            pass
        else:
            config = config | {"train": config["train"] | {"lr": 1e30}}
        run_trial(config)

    return trainable


def test_failing_trials_are_recorded_and_the_search_finishes(tmp_path: Path) -> None:
    cfg = config(tmp_path, search={"trials": 4})
    outcome, _ = _run(cfg, trainable=_flaky(tmp_path))
    df = outcome.results
    failed = df[df.state == "failed"]
    reasons = sorted(failed.reason)
    assert len(failed) == 2, df[["number", "state", "reason"]]
    assert any("loss" in r for r in reasons), reasons  # the NaN: reported by the trainable
    assert any("failed" in r or "boom" in r for r in reasons), reasons  # the crash
    assert (df.state == "complete").sum() == 2  # the search went on to its four trials
    assert all(not p for p in pareto_front(df).number.isin(failed.number))


def test_two_node_cluster_runs_trials_on_both_nodes(tmp_path: Path) -> None:
    import ray
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    try:
        # with a latency objective: a predictor is profiled first, the trials report measured
        cfg = config(tmp_path, search={"trials": 4, "concurrency": 2})
        cfg["objectives"] = ["accuracy", "macs", "latency_ms"]
        cfg["latency"] = {"samples": 8, "holdout": 2}
        outcome, _ = _run(cfg, address=cluster.address)
    finally:
        ray.shutdown()
        cluster.shutdown()
    df = outcome.results
    _check_records(df, cfg)
    assert df.attrs["objectives"][2] == ("latency_ms", "minimize")
    assert (df[df.state == "complete"].latency_ms > 0).all()
    # every trial that trained (complete, or stopped early by halving) says where it ran
    ran = df[df.state.isin(["complete", "pruned"])]
    assert ran.node.notna().all(), ran[["number", "state", "node"]]
    nodes = set(ran.node)
    assert len(nodes) == 2, df[["number", "state", "node"]]
    assert all(n.startswith("127.0.0.1/") for n in nodes), nodes


def test_resume_after_sigkill_keeps_every_completed_trial_once(tmp_path: Path) -> None:
    cfg = config(tmp_path, search={"trials": 6, "concurrency": 2})
    path = tmp_path / "search.yaml"
    path.write_text(yaml.safe_dump(cfg))
    storage = f"sqlite:///{tmp_path / 'runs' / 'tiny' / 'study.db'}"
    cmd = [sys.executable, "-m", "blocknas.cli", "search", str(path)]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
    )
    before: dict[int, tuple[float, ...]] = {}
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and len(before) < 2:
            time.sleep(1)
            try:  # read only: never race the driver creating the tables
                study = optuna.load_study(
                    study_name="tiny", storage=storage_for(storage, create=False)
                )
            except (ValueError, KeyError, sqlalchemy.exc.SQLAlchemyError):
                continue  # not there yet
            else:
                before = {
                    t.number: tuple(t.values)
                    for t in study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
                    if record(t).get("launched")
                }
        assert len(before) >= 2, proc.stderr.read().decode() if proc.poll() is not None else ""
    finally:
        os.kill(proc.pid, signal.SIGKILL)  # the driver only, like a lost terminal
        proc.wait()
        time.sleep(1)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # then what that driver started, nothing else

    resumed = subprocess.run(
        [*cmd, "--resume"], capture_output=True, text=True, timeout=400, start_new_session=True
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    # the killed driver's lease is taken over at once (its process is gone), then its trials
    # are queued again, recorded as interrupted, never as failed
    assert "took study 'tiny' over from stopped driver" in resumed.stderr
    assert f"pid {proc.pid} " in resumed.stderr
    df = load_results(storage, "tiny")
    complete = df[(df.state == "complete") & df.launched.astype(bool)]
    for number, values in before.items():  # kept, with the same values, exactly once
        row = complete[complete.number == number]
        assert len(row) == 1
        assert (float(row.accuracy.iloc[0]), float(row.macs.iloc[0])) == values
    assert "failed" not in set(df.state)
    finished = df[df.launched.astype(bool) & df.state.isin(["complete", "pruned"])]
    assert len(finished) == 6  # the requested trials, none repeated or lost
    assert "Pareto front" in resumed.stdout


def test_existing_study_needs_resume(tmp_path: Path) -> None:
    cfg = SearchConfig.from_dict(config(tmp_path))
    from blocknas.search.study import open_study

    open_study(cfg, resume=False)
    with pytest.raises(ValueError, match=r"already exists.*--resume"):
        open_study(cfg, resume=False)


def test_trial_on_a_dying_node_is_retried_elsewhere(tmp_path: Path) -> None:
    import ray
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})  # trials on workers
    doomed = cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    cfg = config(
        tmp_path,
        train={"epochs": 40},
        search={"trials": 1, "concurrency": 1, "max_failures": 2},
    )
    first_epoch = tmp_path / "runs" / "tiny" / "checkpoints" / "trial_00000.pt"
    outcome: list[SearchOutcome] = []
    ray.init(address=cluster.address, log_to_driver=False)  # the search reuses this connection
    # The search runs in a thread: Ray adds and removes nodes from the main thread only.
    search = threading.Thread(target=lambda: outcome.append(_run(cfg)[0]), daemon=True)
    search.start()
    try:
        deadline = time.monotonic() + 120
        while not first_epoch.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert first_epoch.exists(), "the trial never finished its first epoch"
        cluster.add_node(num_cpus=1)  # somewhere to go
        cluster.remove_node(doomed, allow_graceful=False)  # mid-trial
        search.join(timeout=300)
    finally:
        ray.shutdown()
        cluster.shutdown()
    assert outcome, "the search did not finish"
    df = outcome[0].results
    done = df[df.state == "complete"]
    assert len(done) == 1, df[["number", "state", "reason"]]
    assert done.epochs.iloc[0] == 40
    node = str(done.node.iloc[0])
    assert node.split("/")[1] != doomed.node_id[:8], node  # finished on the new node
