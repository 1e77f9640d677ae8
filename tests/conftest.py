"""Shared by every test: Ray's environment is set before any test module imports Ray."""

from collections.abc import Iterator

import pytest

from blocknas.runners.ray_session import ray_environment
from tests.postgres import Server, postgres_server

ray_environment()  # token auth and loopback-only, the same in every process the tests start


@pytest.fixture(scope="session")
def postgres() -> Iterator[Server]:
    """One real PostgreSQL server for the whole run, on a free loopback port."""
    with postgres_server() as server:
        yield server
