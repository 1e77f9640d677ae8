"""Starting or joining Ray the way blocknas needs it.

Embedded mode (no address) starts a private local Ray that binds to 127.0.0.1 only: Ray advertises
the machine's external address unless ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` is set before it
starts. Token authentication (``RAY_AUTH_MODE``) must be the same in every process; when the user
has a ``~/.ray/auth_token`` it is enabled, otherwise Ray's default applies. Only what this module
started is shut down, never other Ray processes on the machine.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

LOOPBACK = "127.0.0.1"


def ray_environment(address: str | None = None) -> dict[str, str]:
    """Set (and return) the environment every Ray process of a search must share.

    Call it before ``import ray``: Ray reads ``RAY_AUTH_MODE`` once, when imported, and a driver
    whose mode differs from the cluster's cannot connect. Child processes inherit it, so a
    ``ray.cluster_utils.Cluster`` started afterwards agrees. Token authentication is on for an
    embedded Ray (Ray's own default for new local clusters, which writes ``~/.ray/auth_token``
    when missing) and for a cluster when that token file exists. A value the user exported wins.
    """
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    if address is None or (Path.home() / ".ray" / "auth_token").is_file():
        os.environ.setdefault("RAY_AUTH_MODE", "token")
    # Ray Tune's own tables and progress reports: off; the search prints its own lines.
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    # Tune's default result loggers: off; the search passes the JSON and CSV ones itself (the
    # TensorBoard one cost the driver two threads and 5-13 ms per trial)
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    keys = ("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "RAY_AUTH_MODE", "RAY_AIR_NEW_OUTPUT")
    return {k: os.environ[k] for k in keys if k in os.environ}


@contextmanager
def ray_session(
    address: str | None = None, *, num_cpus: int | None = None, num_gpus: int | None = None
) -> Iterator[str]:
    """Ray for the duration of a ``with`` block; yields a description of where it runs.

    ``address=None`` starts an embedded Ray on loopback (``num_cpus``/``num_gpus`` default to the
    machine's); an address joins that cluster. If this process is already connected to Ray
    (e.g. a test started a cluster), that connection is used and left open.
    """
    ray_environment(address)  # before the import: Ray reads RAY_AUTH_MODE once, when imported
    import ray

    if ray.is_initialized():
        yield "the Ray this process is already connected to"
        return
    kwargs: dict[str, object] = {
        "include_dashboard": False,
        "configure_logging": True,
        "logging_level": logging.WARNING,
        "log_to_driver": False,
    }
    if address is None:
        ray.init(
            num_cpus=num_cpus,
            num_gpus=num_gpus,
            _node_ip_address=LOOPBACK,
            **kwargs,  # type: ignore[arg-type]
        )
        where = f"embedded Ray on {LOOPBACK}"
    else:
        ray.init(address=address, **kwargs)  # type: ignore[arg-type]
        where = f"Ray cluster at {address}"
    try:
        yield where
    finally:
        ray.shutdown()
