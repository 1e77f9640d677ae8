"""A real Ray head for the cluster tests: ``ray start --head --block`` on loopback, with its own
temp folder, ports and jobs API, stopped by its process group, never ``ray stop``."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.postgres import free_port


@dataclass(frozen=True)
class Head:
    address: str  # the jobs API: http://127.0.0.1:PORT
    pid: int  # of `ray start --block`; every Ray process of the head is in its process group
    temp_dir: Path


def _wait_for_jobs_api(address: str, proc: subprocess.Popen[bytes], seconds: float) -> None:
    from ray.job_submission import JobSubmissionClient

    deadline = time.monotonic() + seconds
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"ray start exited with {proc.returncode}")
        try:
            JobSubmissionClient(address).list_jobs()
            return
        except Exception:  # not up yet: connection refused, 503, ...
            if time.monotonic() > deadline:
                raise
            time.sleep(1)


@contextmanager
def ray_head(num_cpus: int = 2) -> Iterator[Head]:
    """Start a head on 127.0.0.1 (GCS, dashboard and jobs API on free ports), yield, stop it."""
    temp = Path(tempfile.mkdtemp(prefix="bn-ray-", dir="/tmp"))  # short: Ray's socket paths
    cwd = temp / "cwd"
    cwd.mkdir()
    dash = free_port()
    bindir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": bindir + os.pathsep + os.environ.get("PATH", "")}
    cmd = [
        str(Path(bindir) / "ray"),
        "start",
        "--head",
        "--block",
        "--disable-usage-stats",
        "--node-ip-address=127.0.0.1",
        f"--port={free_port()}",
        f"--num-cpus={num_cpus}",
        "--num-gpus=0",
        "--include-dashboard=true",
        "--dashboard-host=127.0.0.1",
        f"--dashboard-port={dash}",
        f"--dashboard-agent-listen-port={free_port()}",
        f"--ray-client-server-port={free_port()}",
        f"--temp-dir={temp / 'ray'}",
    ]
    log = open(temp / "head.log", "wb")  # noqa: SIM115  # closed after the head stops
    proc = subprocess.Popen(
        cmd, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    address = f"http://127.0.0.1:{dash}"
    try:
        _wait_for_jobs_api(address, proc, 120)
        yield Head(address, proc.pid, temp)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(5)  # the head's own graceful stop can take longer: the test's is over
        with contextlib.suppress(ProcessLookupError):  # whatever of the head is left
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        log.close()
        shutil.rmtree(temp, ignore_errors=True)
