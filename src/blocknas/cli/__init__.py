"""The ``blocknas`` command line: a thin layer over the Python API (contracts §3).

Every command prints ``--help`` with an example; bad input ends with one line on stderr naming
what is wrong and exit status 2; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

from blocknas.cli import arch, cluster, export, jobs, views  # noqa: F401  # each registers its commands on the app
from blocknas.cli.app import app

__all__ = ["app", "main"]


def main() -> None:
    """Console-script entry point."""
    app(prog_name="blocknas")
