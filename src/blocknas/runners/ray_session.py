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
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any, TextIO

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
    # Ctrl-C is the search's to handle (blocknas.search.signals): Tune's handler would print
    # its own resume hint (``Tuner.restore(...)``), which is not how a blocknas search resumes
    os.environ.setdefault("TUNE_DISABLE_SIGINT_HANDLER", "1")
    keys = ("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "RAY_AUTH_MODE", "RAY_AIR_NEW_OUTPUT")
    return {k: os.environ[k] for k in keys if k in os.environ}


@contextmanager
def ray_session(
    address: str | None = None,
    *,
    num_cpus: int | None = None,
    num_gpus: int | None = None,
    log: Path | None = None,
) -> Iterator[str]:
    """Ray for the duration of a ``with`` block; yields a description of where it runs.

    ``address=None`` starts an embedded Ray on loopback (``num_cpus``/``num_gpus`` default to the
    machine's); an address joins that cluster. If this process is already connected to Ray
    (e.g. a test started a cluster), that connection is used and left open. ``log``: a file
    that takes Ray's own messages (:func:`output_to`) instead of the terminal.
    """
    ray_environment(address)  # before the import: Ray reads RAY_AUTH_MODE once, when imported
    import ray

    with output_to(log) if log else nullcontext() as handler:
        if ray.is_initialized():
            yield "the Ray this process is already connected to"
            return
        with _connected(ray, address, num_cpus, num_gpus, configure_logging=log is None) as where:
            if handler is not None:  # ray.init(configure_logging=False) cleared the "ray"
                logging.getLogger("ray").addHandler(handler)  # logger's handlers, ours too
            yield where


@contextmanager
def _connected(
    ray: Any,
    address: str | None,
    num_cpus: int | None,
    num_gpus: int | None,
    *,
    configure_logging: bool,
) -> Iterator[str]:
    kwargs: dict[str, object] = {
        "include_dashboard": False,
        "configure_logging": configure_logging,
        "logging_level": logging.WARNING,
        "log_to_driver": False,
    }
    if address is None:
        ray.init(num_cpus=num_cpus, num_gpus=num_gpus, _node_ip_address=LOOPBACK, **kwargs)
        where = f"embedded Ray on {LOOPBACK}"
    else:
        ray.init(address=address, **kwargs)
        where = f"Ray cluster at {address}"
    try:
        yield where
    finally:
        ray.shutdown()


@contextmanager
def output_to(log: Path) -> Iterator[logging.Handler]:
    """Everything Ray says, into ``log`` for the ``with`` block: its Python loggers, Python
    warnings, and whatever its native code writes to the process's stdout and stderr (file
    descriptors 1 and 2). The process's own ``sys.stdout``/``sys.stderr`` keep writing to
    the terminal, so a search's lines still reach the user. Yields the handler of the "ray"
    logger, to be added again after a ``ray.init`` (which clears that logger's handlers)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    stream = log.open("a", encoding="utf-8", buffering=1)
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    ray_logger = logging.getLogger("ray")
    saved = (ray_logger.handlers[:], ray_logger.propagate)
    ray_logger.handlers, ray_logger.propagate = [handler], False
    try:
        with warnings.catch_warnings(), _descriptors_to(stream):

            def show(
                message: Warning | str,
                category: type[Warning],
                filename: str,
                lineno: int,
                file: TextIO | None = None,
                line: str | None = None,
            ) -> None:
                stream.write(warnings.formatwarning(message, category, filename, lineno, line))

            warnings.showwarning = show
            yield handler
    finally:
        ray_logger.handlers, ray_logger.propagate = saved
        stream.close()


@contextmanager
def _descriptors_to(stream: TextIO) -> Iterator[None]:
    """File descriptors 1 and 2 pointed at ``stream``'s file; ``sys.stdout``/``sys.stderr``,
    where they write to those descriptors, moved to copies of the originals meanwhile."""
    moved: list[tuple[str, int, int, TextIO]] = []
    try:
        for name, fd in (("stdout", 1), ("stderr", 2)):
            current: TextIO = getattr(sys, name)
            current.flush()
            kept = os.dup(fd)
            if _fileno(current) == fd:  # a terminal or a pipe, not a notebook's or pytest's
                setattr(sys, name, os.fdopen(os.dup(kept), "w", buffering=1, encoding="utf-8"))
            moved.append((name, fd, kept, current))
            os.dup2(stream.fileno(), fd)
        yield
    finally:
        stream.flush()
        for name, fd, kept, original in reversed(moved):
            replaced = getattr(sys, name)
            if replaced is not original:
                replaced.close()
                setattr(sys, name, original)
            os.dup2(kept, fd)
            os.close(kept)


def _fileno(stream: TextIO) -> int | None:
    try:
        return stream.fileno()
    except (AttributeError, OSError, ValueError):
        return None
