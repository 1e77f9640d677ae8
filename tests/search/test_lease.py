"""The study lease on real databases (SQLite and PostgreSQL): one driver per study."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from blocknas.search.lease import LEASES, STALE_S, Holder, Lease, LeaseHeld, check_free
from blocknas.search.study import storage_for
from tests.postgres import Server


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> sa.engine.Engine:
    """The engine of a real study storage, as a search opens it."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'study.db'}"
    else:
        server: Server = request.getfixturevalue("postgres")
        url = server.create_database(f"lease_{tmp_path.name[-12:].lower()}")
    return storage_for(url).engine  # type: ignore[attr-defined, no-any-return]


def _plant(engine: sa.engine.Engine, study: str, holder: Holder) -> None:
    """A lease row as another driver would have left it."""
    LEASES.metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(sa.delete(LEASES).where(LEASES.c.study == study))
        conn.execute(sa.insert(LEASES).values(**holder.row(study)))


def _dead_pid() -> int:
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], check=True,
                          capture_output=True, text=True)  # fmt: skip
    return int(proc.stdout)


def test_a_live_holder_is_refused_in_one_line_naming_it(engine: sa.engine.Engine) -> None:
    first = Lease(engine, "s")
    assert first.acquire() is None and first.holder() == first.me
    with pytest.raises(LeaseHeld) as refused:
        Lease(engine, "s").acquire()
    message = str(refused.value)
    assert "\n" not in message and f"pid {os.getpid()}" in message
    assert first.me.driver in message and "--resume" in message and "kill -INT" in message
    assert Lease(engine, "other study").acquire() is None  # leases are per study
    first.release()
    assert first.holder() is None
    assert Lease(engine, "s").acquire() is None  # free again


def test_a_dead_process_on_this_host_is_taken_over_at_once(engine: sa.engine.Engine) -> None:
    now = time.time()
    gone = Holder("deadbeef0001", socket.gethostname(), _dead_pid(), now - 5, now)
    _plant(engine, "s", gone)
    lease = Lease(engine, "s")
    assert lease.acquire() == gone  # the stale holder, whose trials the caller requeues
    assert lease.holder() is not None and lease.holder().driver == lease.me.driver  # type: ignore[union-attr]


def test_another_hosts_holder_is_stale_only_without_heartbeats(engine: sa.engine.Engine) -> None:
    now = time.time()
    # the pid means nothing on another host: only its heartbeat counts
    live = Holder("feedface0002", "elsewhere", 1, now - 600, now - 5)
    _plant(engine, "s", live)
    with pytest.raises(LeaseHeld, match="on host elsewhere"):
        Lease(engine, "s").acquire()
    stale = Holder("feedface0003", "elsewhere", 1, now - 600, now - STALE_S - 1)
    _plant(engine, "s", stale)
    assert Lease(engine, "s").acquire() == stale


def test_heartbeats_renew_and_a_taken_over_lease_is_lost(engine: sa.engine.Engine) -> None:
    lease = Lease(engine, "s")
    lease.acquire()
    before = lease.holder().heartbeat  # type: ignore[union-attr]
    lease.start_heartbeat(every_s=0.05)
    time.sleep(0.3)
    assert lease.holder().heartbeat > before  # type: ignore[union-attr]
    assert not lease.lost.is_set()
    # a driver that stopped heartbeating (suspended, cut off) is taken over by another ...
    thief = Lease(engine, "s", stale_s=0.0)
    time.sleep(0.01)
    with engine.begin() as conn:  # its last heartbeat long ago
        conn.execute(sa.update(LEASES).values(heartbeat=0.0, host="elsewhere"))
    assert thief.acquire() is not None
    deadline = time.monotonic() + 5
    while not lease.lost.is_set() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert lease.lost.is_set()  # ... and learns it at its next heartbeat
    lease.release()  # gives up nothing: the lease is the thief's
    assert thief.holder() is not None and thief.holder().driver == thief.me.driver  # type: ignore[union-attr]


def test_drivers_starting_together_get_one_lease(engine: sa.engine.Engine) -> None:
    """Eight would-be drivers at once: exactly one wins, every other is refused."""
    start = threading.Barrier(8)
    won: list[str] = []
    refused: list[str] = []

    def drive() -> None:
        lease = Lease(engine, "race")
        start.wait()
        try:
            lease.acquire()
        except LeaseHeld as e:
            refused.append(str(e))
        else:
            won.append(lease.me.driver)

    threads = [threading.Thread(target=drive) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(won) == 1 and len(refused) == 7, (won, refused)
    assert Lease(engine, "race").holder().driver == won[0]  # type: ignore[union-attr]


def test_submit_checks_the_lease_where_it_can_reach_the_storage(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'study.db'}"
    check_free(url, "s")  # no lease table yet: the job's driver judges
    check_free(f"sqlite:///{tmp_path / 'absent.db'}", "s")  # not reachable from here: same
    lease = Lease(storage_for(url).engine, "s")  # type: ignore[attr-defined]
    lease.acquire()
    with pytest.raises(LeaseHeld, match=f"pid {os.getpid()} "):
        check_free(url, "s")
    lease.release()
    check_free(url, "s")
