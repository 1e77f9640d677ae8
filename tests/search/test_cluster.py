"""Searches as Ray jobs against a real Ray head on loopback and a real PostgreSQL server:
submit, list, follow, read while running, stop, resume, a second study at once, a killed driver."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from blocknas import load_results
from blocknas.dashboards.live import LiveStudy
from blocknas.search import jobs
from tests.cli import blocknas_cli
from tests.postgres import Server
from tests.rayhead import Head, ray_head
from tests.search.test_search import _descendants, _is_loopback, _listening, config

TRAINED = ("complete", "pruned")


@pytest.fixture(scope="module")
def head(postgres: Server) -> Iterator[Head]:
    """The head gets the database password in its environment, as a cluster gets a Secret."""
    with ray_head(num_cpus=2) as h:
        yield h


def write_config(tmp_path: Path, name: str, url: str, trials: int) -> Path:
    cfg: dict[str, Any] = config(tmp_path, name=name, storage=url)
    cfg["search"] |= {"trials": trials, "concurrency": 1}
    cfg["resources"] = {"cpus": 1, "gpus": 0}
    cfg["results"] = "runs"  # inside the job's working folder on the cluster
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def wait(what: str, ready: Any, seconds: float = 240) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = ready()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def trained(url: str, name: str) -> Any:
    try:
        df = load_results(url, name)
    except ValueError:  # the job has not created its study yet
        return pd.DataFrame({"number": [], "state": []})
    return df[df.state.isin(TRAINED)]


def driver_pid(marker: str) -> int | None:
    """The job driver running ``blocknas search config.yaml ... marker`` (the Python process,
    not the shell Ray runs the entrypoint in: killing that would orphan the driver, which the
    study's lease then rightly keeps live)."""
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            argv = (d / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        text = " ".join(a.decode(errors="replace") for a in argv)
        shell = argv[0].endswith(b"sh")
        if "search config.yaml" in text and marker in text and "blocknas" in text and not shell:
            return int(d.name)
    return None


def test_search_jobs_end_to_end(head: Head, postgres: Server, tmp_path: Path) -> None:
    url_a, url_b = postgres.create_database("cluster"), postgres.url("cluster")
    cfg_a = write_config(tmp_path, "clusa", url_a, trials=400)  # stopped long before
    cfg_b = write_config(tmp_path, "clusb", url_b, trials=2)
    submitted = blocknas_cli("submit", str(cfg_a), "--address", head.address)
    assert submitted.returncode == 0, submitted.stderr
    job_a = submitted.stdout.strip()
    assert "blocknas jobs logs" in submitted.stderr and postgres.password not in submitted.stderr
    assert "INFO" not in submitted.stderr  # only blocknas's lines, not the SDK's
    job_b = jobs.submit(cfg_b, head.address)  # a second study in the same database, at once

    listed = blocknas_cli("jobs", "list", "--address", head.address)
    assert listed.returncode == 0 and job_a in listed.stdout and job_b in listed.stdout
    # the study is read from PostgreSQL while the job runs: results and the dashboard's reader
    rows = wait("a trained trial of job A", lambda: len(trained(url_a, "clusa")) >= 1)
    assert rows and jobs.status(head.address, job_a).status == "RUNNING"
    assert len(LiveStudy(url_a, "clusa").frame()) >= 1
    follow = blocknas_cli("jobs", "logs", job_b, "--follow", "--address", head.address)
    assert follow.returncode == 0 and "trial " in follow.stdout and "Pareto front" in follow.stdout
    assert jobs.status(head.address, job_b).status == "SUCCEEDED"

    wait("two trained trials of job A", lambda: len(trained(url_a, "clusa")) >= 2)
    stopped = blocknas_cli("jobs", "stop", job_a, "--address", head.address)
    assert stopped.returncode == 0 and "STOPPED" in stopped.stdout, stopped.stdout
    before = trained(url_a, "clusa")[["number", "state"]]
    # jobs stop sends the driver SIGTERM: a clean stop, its running trial interrupted, not failed
    assert "failed" not in set(load_results(url_a, "clusa").state)

    # resume, then SIGKILL the driver, then resume again: nothing lost, nothing twice
    target = len(before) + 3
    job = jobs.submit(cfg_a, head.address, resume=True, trials=target)
    pid = wait("job A's resumed driver", lambda: driver_pid(f"--trials {target}"))
    wait("one more trained trial", lambda: len(trained(url_a, "clusa")) > len(before))
    os.kill(pid, signal.SIGKILL)
    wait("the killed job to end", lambda: jobs.status(head.address, job).status in jobs.TERMINAL)
    job = jobs.submit(cfg_a, head.address, resume=True, trials=target)
    wait(
        "the resumed job to finish",
        lambda: jobs.status(head.address, job).status in jobs.TERMINAL,
        seconds=300,
    )
    assert jobs.status(head.address, job).status == "SUCCEEDED", blocknas_cli(
        "jobs", "logs", job, "--address", head.address
    ).stdout[-3000:]
    df = load_results(url_a, "clusa")
    assert df.number.is_unique and df.state.isin(TRAINED).sum() == target
    after = df.set_index("number").loc[before.number, "state"]
    assert list(after) == list(before.state)  # trials trained before the stop, kept as they were
    assert df[df.state.isin(TRAINED)]["param.s0.out"].notna().all()
    assert len(trained(url_b, "clusb")) == 2  # the other study is untouched

    # nothing the head started listens beyond loopback
    seen = _listening(_descendants(head.pid))
    assert seen and all(_is_loopback(a) for a in seen), seen


def test_submit_refuses_what_the_cluster_cannot_use(head: Head, tmp_path: Path) -> None:
    sqlite = write_config(tmp_path, "local", f"sqlite:///{tmp_path}/s.db", trials=1)
    proc = blocknas_cli("submit", str(sqlite), "--address", head.address)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert "a cluster job needs a database" in proc.stderr
    proc = blocknas_cli("jobs", "status", "no-such-job", "--address", head.address)
    assert (
        proc.returncode == 2 and proc.stderr.startswith("error: ") and proc.stderr.count("\n") == 1
    )
    proc = blocknas_cli("jobs", "list", "--address", "http://127.0.0.1:9")
    assert proc.returncode == 2 and "cannot reach Ray's jobs API" in proc.stderr
