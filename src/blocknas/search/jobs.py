"""Searches as Ray jobs: submit one to a cluster's jobs API, list, follow, stop them.

``submit`` packs the config and the files it names (the latency predictor, seed spec files) into a
working folder that travels in the job's runtime environment, and runs ``blocknas search`` on the
cluster against the config's storage, which must be a database both the cluster and the user can
reach (PostgreSQL): a SQLite file would stay inside the job's temporary folder. A stopped or
killed job is continued by submitting the same config with ``resume=True``.

When the cluster uses Ray's token authentication, a token given here is sent as a request
header; Ray's own ``RAY_AUTH_TOKEN`` works too. Tokens are never printed or stored.
"""

from __future__ import annotations

import asyncio
import logging
import shlex
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from blocknas.search.config import SearchConfig
from blocknas.search.study import shown_url
from blocknas.spaces.files import read_yaml

#: the metadata key every job blocknas submits carries (``jobs list`` shows only these)
MARK = "blocknas"
TERMINAL = ("STOPPED", "SUCCEEDED", "FAILED")


@dataclass(frozen=True)
class Job:
    """What ``jobs list`` and ``jobs status`` show of one job."""

    id: str
    status: str
    study: str
    storage: str
    started: float | None  # seconds since the epoch
    ended: float | None
    message: str
    entrypoint: str

    @classmethod
    def from_details(cls, d: Any) -> Job:
        meta = d.metadata or {}
        return cls(
            id=d.submission_id or d.job_id or "?",
            status=str(getattr(d.status, "value", d.status)),
            study=meta.get("study", ""),
            storage=meta.get("storage", ""),
            started=d.start_time / 1000 if d.start_time else None,
            ended=d.end_time / 1000 if d.end_time else None,
            message=(d.message or "").strip().splitlines()[0] if d.message else "",
            entrypoint=d.entrypoint or "",
        )


def client(address: str, token: str | None = None) -> Any:
    """Ray's ``JobSubmissionClient`` for ``http://HEAD:8265``; one line when unreachable."""
    from ray.job_submission import JobSubmissionClient

    if not address.startswith(("http://", "https://")):
        raise ValueError(f"--address={address!r} must be the jobs API URL, e.g. http://HEAD:8265")
    headers = {"Authorization": f"Bearer {token}"} if token else None
    try:
        return JobSubmissionClient(address, headers=headers)
    except (ConnectionError, RuntimeError, ValueError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ValueError(f"cannot reach Ray's jobs API at {address}: {first}") from None


@contextmanager
def _api(address: str) -> Iterator[None]:
    """Errors of the jobs API as one line (an unknown job id, a refused token)."""
    try:
        yield
    except RuntimeError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ValueError(f"the jobs API at {address} says: {first}") from None


def package(config_path: Path, folder: Path) -> SearchConfig:
    """Write the job's working folder: ``config.yaml`` and, under ``files/``, every file the
    config names, with the config's paths pointing at the copies."""
    cfg = SearchConfig.from_file(config_path)
    if cfg.storage is None or cfg.storage.startswith("sqlite"):
        raise ValueError(
            f"{config_path}: storage: a cluster job needs a database that both the cluster and "
            "you can reach, e.g. storage: postgresql+psycopg://user:${PGPASSWORD}@db:5432/nas "
            "(a SQLite file would stay inside the job's temporary folder)"
        )
    data = read_yaml(config_path, "search config")  # checked by from_file above
    files = folder / "files"
    files.mkdir(parents=True)

    def carry(path: str, where: str) -> str:
        source = Path(path) if Path(path).is_absolute() else config_path.parent / path
        if not source.is_file():
            raise ValueError(f"{config_path}: {where}: {path} is not a file")
        shutil.copy2(source, files / source.name)
        return f"files/{source.name}"

    table = (data.get("latency") or {}).get("table")
    if table:
        data["latency"]["table"] = carry(str(table), "latency.table")
    seeds = (data.get("search") or {}).get("seed_specs") or []
    for i, item in enumerate(seeds):
        if isinstance(item, str) and Path(item).suffix in (".yaml", ".yml", ".json"):
            seeds[i] = carry(item, f"search.seed_specs[{i}]")
    (folder / "config.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    return cfg


def submit(
    config_path: str | Path,
    address: str,
    *,
    resume: bool = False,
    trials: int | None = None,
    token: str | None = None,
) -> str:
    """Submit ``blocknas search`` of a config as a Ray job; returns the job id."""
    from blocknas.search.lease import check_free

    api = client(address, token)
    with tempfile.TemporaryDirectory(prefix="blocknas-job-") as tmp:
        cfg = package(Path(config_path), Path(tmp))
        check_free(cfg.storage_url(), cfg.name)  # the job's driver would be refused anyway
        args = ["blocknas", "search", "config.yaml", "--address", "auto"]
        args += ["--resume"] if resume else []
        args += ["--trials", str(trials)] if trials is not None else []
        stamp = time.strftime("%Y%m%d-%H%M%S") + f"-{int(time.time() * 1e3) % 1000:03d}"
        metadata = {MARK: "search", "study": cfg.name, "storage": shown_url(cfg.storage or "")}
        with _api(address), _quiet_sdk():
            return str(
                api.submit_job(
                    entrypoint=shlex.join(args),
                    submission_id=f"blocknas-{cfg.name}-{stamp}",
                    runtime_env={"working_dir": tmp},
                    metadata=metadata,
                )
            )


@contextmanager
def _quiet_sdk() -> Iterator[None]:
    """Ray's SDK logs each upload at INFO on the user's terminal: not blocknas's output."""
    before = logging.root.manager.disable
    logging.disable(logging.INFO)  # the SDK's loggers set their own INFO level
    try:
        yield
    finally:
        logging.disable(before)


def list_jobs(address: str, *, token: str | None = None, every: bool = False) -> list[Job]:
    """The cluster's search jobs (``every``: all its jobs), oldest first."""
    with _api(address):
        details = client(address, token).list_jobs()
    jobs = [Job.from_details(d) for d in details if every or MARK in (d.metadata or {})]
    return sorted(jobs, key=lambda j: j.started or 0.0)


def status(address: str, job_id: str, *, token: str | None = None) -> Job:
    with _api(address):
        return Job.from_details(client(address, token).get_job_info(job_id))


def logs(
    address: str,
    job_id: str,
    *,
    follow: bool = False,
    token: str | None = None,
    write: Callable[[str], None] = print,
) -> None:
    """The job's output so far; with ``follow``, streamed until the job ends."""
    api = client(address, token)
    with _api(address):
        if not follow:
            write(api.get_job_logs(job_id))
            return
        api.get_job_info(job_id)  # an unknown id: one line, before streaming

        async def stream() -> None:
            async for chunk in api.tail_job_logs(job_id):
                write(chunk)

        asyncio.run(stream())


def stop(address: str, job_id: str, *, token: str | None = None, wait_s: float = 120.0) -> Job:
    """Stop a job (Ray interrupts its driver; running trials are resumed by ``--resume``) and
    wait until it has stopped."""
    api = client(address, token)
    with _api(address):
        api.stop_job(job_id)
        deadline = time.monotonic() + wait_s
        while True:
            job = Job.from_details(api.get_job_info(job_id))
            if job.status in TERMINAL or time.monotonic() > deadline:
                return job
            time.sleep(0.5)
