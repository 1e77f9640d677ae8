"""A real PostgreSQL server for the tests: a fresh cluster in a temp folder on a free loopback
port, password authentication, stopped by its process id.

The server refuses to run as root, so under root it runs as the ``postgres`` user (Debian's
``postgresql`` package creates it); otherwise as the current user.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

PASSWORD_ENV = "BLOCKNAS_TEST_PGPASSWORD"


def bindir() -> Path | None:
    """PostgreSQL's server binaries (``pg_config --bindir``), or None where there are none."""
    pg_config = shutil.which("pg_config")
    if pg_config is None:
        return None
    out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
    path = Path(out.stdout.strip())
    return path if (path / "postgres").is_file() and (path / "initdb").is_file() else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Server:
    port: int
    password: str
    user: str = "blocknas"

    def url(self, database: str, *, literal_password: bool = False) -> str:
        """A SQLAlchemy URL; the password as ``${BLOCKNAS_TEST_PGPASSWORD}`` unless literal."""
        secret = self.password if literal_password else "${" + PASSWORD_ENV + "}"
        return f"postgresql+psycopg://{self.user}:{secret}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """A new empty database; returns its URL (password from the environment)."""
        import psycopg

        with psycopg.connect(
            host="127.0.0.1",
            port=self.port,
            user=self.user,
            password=self.password,
            dbname="postgres",
            autocommit=True,
        ) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


def _as_server_user(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


@contextmanager
def postgres_server() -> Iterator[Server]:
    """Start a server, yield it, stop it (by its pid) and delete its files."""
    binaries = bindir()
    assert binaries is not None, (
        "PostgreSQL server binaries are missing (apt-get install postgresql)"
    )
    root = Path(tempfile.mkdtemp(prefix="blocknas-pg-", dir="/tmp"))
    data, password = root / "data", "pw-" + os.urandom(6).hex()
    (root / "pw").write_text(password + "\n")
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        shutil.chown(root / "pw", "postgres")
    initdb = [str(binaries / "initdb"), "-D", str(data), "-U", "blocknas", "--auth=scram-sha-256"]
    subprocess.run(
        _as_server_user([*initdb, f"--pwfile={root / 'pw'}", "--no-sync"]),
        check=True,
        capture_output=True,
    )
    port = free_port()
    server = subprocess.Popen(
        _as_server_user(
            [
                str(binaries / "postgres"),
                "-D",
                str(data),
                "-p",
                str(port),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                f"unix_socket_directories={root}",
                "-c",
                "fsync=off",
            ]
        ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        _wait_until_ready(port, server, password)
        os.environ[PASSWORD_ENV] = password
        yield Server(port, password)
    finally:
        os.environ.pop(PASSWORD_ENV, None)
        os.killpg(server.pid, signal.SIGINT)  # fast shutdown
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        shutil.rmtree(root, ignore_errors=True)


def _wait_until_ready(port: int, server: subprocess.Popen[bytes], password: str) -> None:
    import psycopg

    deadline = time.monotonic() + 60
    while True:
        if server.poll() is not None:
            err = server.stderr.read().decode() if server.stderr else ""
            raise RuntimeError(f"postgres exited: {err[-2000:]}")
        try:
            args = {"host": "127.0.0.1", "port": port, "user": "blocknas", "password": password}
            psycopg.connect(**args, dbname="postgres", connect_timeout=2).close()
            return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
