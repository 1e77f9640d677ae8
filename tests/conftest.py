"""Shared by every test: Ray's environment is set before any test module imports Ray, and the
run ends without the interpreter's teardown (see :func:`pytest_configure`)."""

import atexit
import logging
import os
import sys
from collections.abc import Iterator

import pytest

from blocknas.runners.ray_session import ray_environment
from tests.postgres import Server, postgres_server

ray_environment()  # token auth and loopback-only, the same in every process the tests start

_STATUS = pytest.StashKey[int]()


def pytest_configure(config: pytest.Config) -> None:
    """End the process with pytest's status once pytest and every other exit handler are done,
    skipping the interpreter's teardown.

    Each Ray session a test starts in this process leaves gRPC and GCS-client threads running
    after ``ray.shutdown()`` (Ray's own; their names are in ``/proc/self/task``). One of them
    jumped to freed memory while the interpreter tore down its modules after a whole, passing
    run (a segfault, exit status 139, seen once in a fresh ``make test``). Registered here,
    before any test imports Ray, this handler runs after Ray's own exit handlers (they run
    last-registered first), so Ray has shut down and every report has been written by then.
    """
    atexit.register(_exit_with_status, config)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    session.config.stash[_STATUS] = int(exitstatus)


def _exit_with_status(config: pytest.Config) -> None:
    status = config.stash.get(_STATUS, None)
    if status is None:  # the session never finished: let Python exit as it would
        return
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


@pytest.fixture(scope="session")
def postgres() -> Iterator[Server]:
    """One real PostgreSQL server for the whole run, on a free loopback port."""
    with postgres_server() as server:
        yield server
