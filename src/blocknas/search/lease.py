"""One driver per study: a lease row in the study's own database.

Two drivers on one study corrupt it quietly: the second takes the first's running trials for
interrupted ones, fails and requeues them, and the first can no longer record what it trained.
So a search holds a lease on its study, a row of ``blocknas_leases`` in the same database as
the Optuna tables (SQLite or PostgreSQL alike), naming the driver, its host and process, when
it started and its last heartbeat. Every change is one conditional statement, so two drivers
starting together cannot both win: the row's primary key admits one ``INSERT``, and a takeover
is an ``UPDATE … WHERE driver = <the stale holder>``.

A lease is live while its holder heartbeats (every :data:`HEARTBEAT_S`); on the holder's own
host it is also dead as soon as its process is (a SIGKILLed driver is taken over at once). A
holder on another host is stale after :data:`STALE_S` without a heartbeat, which assumes the
hosts' clocks agree within a few seconds (NTP).
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

#: seconds between a driver's heartbeats
HEARTBEAT_S = 10.0
#: seconds without a heartbeat after which a lease held from another host is stale
STALE_S = 60.0

_META = sa.MetaData()
LEASES = sa.Table(
    "blocknas_leases",
    _META,
    sa.Column("study", sa.String(512), primary_key=True),
    sa.Column("driver", sa.String(64), nullable=False),
    sa.Column("host", sa.String(255), nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("started", sa.Float, nullable=False),
    sa.Column("heartbeat", sa.Float, nullable=False),
)


class LeaseHeld(ValueError):
    """Another live driver holds the study (a one-line message naming it and how to stop it)."""


@dataclass(frozen=True)
class Holder:
    """Who holds a study's lease, as its row records it."""

    driver: str
    host: str
    pid: int
    started: float
    heartbeat: float

    @classmethod
    def me(cls) -> Holder:
        """A new driver: this process on this host."""
        now = time.time()
        return cls(uuid.uuid4().hex[:12], socket.gethostname(), os.getpid(), now, now)

    def alive(self, now: float, stale_s: float = STALE_S) -> bool:
        """Whether the holder may still be running: a recent heartbeat and, on this host, a
        process with its pid."""
        if now - self.heartbeat > stale_s:
            return False
        return self.host != socket.gethostname() or _process_exists(self.pid)

    def describe(self, now: float) -> str:
        """``driver 3f2a9c01d4e5 (pid 4242 on host gpu-1, since 08:40:12, heartbeat 3 s ago)``."""
        since = datetime.fromtimestamp(self.started).strftime("%Y-%m-%d %H:%M:%S")
        return (
            f"driver {self.driver} (pid {self.pid} on host {self.host}, since {since}, "
            f"heartbeat {max(0.0, now - self.heartbeat):.0f} s ago)"
        )

    def row(self, study: str) -> dict[str, Any]:
        return {"study": study, **asdict(self)}


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


class Lease:
    """This driver's lease on ``study`` in the database of ``engine``.

    Example (a study in a SQLite file)::

        lease = Lease(storage.engine, "digits")
        stale = lease.acquire()  # the stopped driver it took over from, if any
        lease.start_heartbeat()
        ...
        lease.release()
    """

    def __init__(self, engine: sa.engine.Engine, study: str, stale_s: float = STALE_S) -> None:
        self.engine, self.study, self.stale_s = engine, study, stale_s
        self.me = Holder.me()
        self.lost = threading.Event()  # set when another driver took the lease over
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def holder(self) -> Holder | None:
        """The study's current holder (None: no lease)."""
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(LEASES).where(LEASES.c.study == self.study)).first()
        return None if row is None else Holder(*row[1:])

    def acquire(self) -> Holder | None:
        """Take the lease, free or stale (returns the stale holder taken over, whose running
        trials the caller then requeues); a live holder raises :class:`LeaseHeld`."""
        _create_table(self.engine)
        for _ in range(3):  # lost a race: read the winner and judge again
            current = self.holder()
            now = time.time()
            if current is None:
                if self._insert():
                    return None
            elif current.alive(now, self.stale_s):
                raise LeaseHeld(self.held_message(current, now))
            elif self._take_over(current):
                return current
        raise LeaseHeld(f"study {self.study!r}: another driver is taking it over right now")

    def held_message(self, holder: Holder, now: float) -> str:
        """Who holds the study, and how to stop them (one line)."""
        local = holder.host == socket.gethostname()
        stop = f"kill -INT {holder.pid}" + ("" if local else f" on {holder.host}")
        return (
            f"study {self.study!r} is being searched by {holder.describe(now)}; one driver per "
            f"study: wait for it, or stop it with `{stop}` (or Ctrl-C in its terminal, or "
            "`blocknas jobs stop JOB`) and then run with --resume"
        )

    def _insert(self) -> bool:
        try:
            with self.engine.begin() as conn:
                conn.execute(sa.insert(LEASES).values(**self.me.row(self.study)))
        except sa.exc.IntegrityError:
            return False
        return True

    def _take_over(self, stale: Holder) -> bool:
        new = self.me.row(self.study) | {"heartbeat": time.time()}
        with self.engine.begin() as conn:
            done = conn.execute(
                sa.update(LEASES)
                .where(LEASES.c.study == self.study, LEASES.c.driver == stale.driver)
                .values(**new)
            )
        return done.rowcount == 1

    def beat(self) -> bool:
        """Renew the heartbeat; False (and :attr:`lost` set) when another driver holds it now."""
        with self.engine.begin() as conn:
            done = conn.execute(
                sa.update(LEASES)
                .where(LEASES.c.study == self.study, LEASES.c.driver == self.me.driver)
                .values(heartbeat=time.time())
            )
        if done.rowcount != 1:
            self.lost.set()
        return done.rowcount == 1

    def start_heartbeat(self, every_s: float = HEARTBEAT_S) -> None:
        """Heartbeat from a daemon thread until :meth:`release`."""

        def run() -> None:
            while not self._stop.wait(every_s) and not self.lost.is_set():
                try:
                    self.beat()
                except sa.exc.SQLAlchemyError:  # a busy or briefly unreachable database
                    continue  # the next beat retries; the lease is stale only after STALE_S

        self._thread = threading.Thread(target=run, name="blocknas-lease", daemon=True)
        self._thread.start()

    def release(self) -> None:
        """Stop heartbeating and give the lease up (only if this driver still holds it)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    sa.delete(LEASES).where(
                        LEASES.c.study == self.study, LEASES.c.driver == self.me.driver
                    )
                )
        except sa.exc.SQLAlchemyError:
            pass  # unreachable now: the lease goes stale and --resume takes it over


def check_free(url: str, study: str) -> None:
    """Refuse (:class:`LeaseHeld`, one line) when a live driver holds ``study`` in the storage
    at ``url``: what ``blocknas submit`` checks before it queues a job. A storage this machine
    cannot reach, or one without a lease table yet, is left to the job's driver to judge."""
    from blocknas.search.study import storage_for

    try:
        engine = storage_for(url, create=False).engine  # type: ignore[attr-defined]
        lease = Lease(engine, study)
        holder = lease.holder()
    except (ValueError, sa.exc.SQLAlchemyError):
        return
    now = time.time()
    if holder is not None and holder.alive(now, lease.stale_s):
        raise LeaseHeld(lease.held_message(holder, now))


def _create_table(engine: sa.engine.Engine, tries: int = 5) -> None:
    """The lease table, next to Optuna's. Two drivers creating it at once on PostgreSQL
    collide (a duplicate type); the later one finds it made."""
    for attempt in range(tries):
        try:
            _META.create_all(engine, checkfirst=True)
            return
        except (sa.exc.IntegrityError, sa.exc.ProgrammingError, sa.exc.OperationalError):
            if attempt == tries - 1:
                raise
            time.sleep(0.2 * (attempt + 1))
