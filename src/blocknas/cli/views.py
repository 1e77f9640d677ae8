"""Commands that show results: ``report`` (one offline HTML file)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from blocknas.cli.app import app, user_errors


@app.command()
@user_errors
def report(
    storage: Annotated[
        str,
        typer.Option("--storage", help="The study storage, e.g. sqlite:///runs/digits/study.db"),
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="The HTML file to write.")],
    study: Annotated[
        list[str] | None,
        typer.Option("--study", help="A study to include (repeat it; default: every study)."),
    ] = None,
) -> None:
    """Write one self-contained HTML report, readable offline: summary, front, the layers of
    every front architecture, convergence, insights, config; with several studies, their
    comparison.

    Example: blocknas report --storage sqlite:///runs/digits/study.db -o report.html
    """
    from blocknas.dashboards.report import write_report

    path = write_report(storage, study, out)
    typer.echo(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")


@app.command()
@user_errors
def dashboard(
    storage: Annotated[
        list[str] | None,
        typer.Option("--storage", help="A study storage (repeat it; default: runs/**/study.db)."),
    ] = None,
    host: Annotated[str, typer.Option("--host", help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535)] = 8050,
    token: Annotated[
        str | None,
        typer.Option(
            "--token", help="Required for a non-loopback host (or BLOCKNAS_DASHBOARD_TOKEN)."
        ),
    ] = None,
) -> None:
    """Browse studies in the browser: fronts with budget sliders, trials, comparisons. Read-only;
    binds 127.0.0.1 unless told otherwise, and any other host needs a token.

    Example: blocknas dashboard --storage sqlite:///runs/digits/study.db
    """
    from blocknas.dashboards.app import TOKEN_ENV, check_host, discover
    from blocknas.dashboards.server import serve
    from blocknas.search.study import check_sqlite

    token = token or os.environ.get(TOKEN_ENV) or None
    check_host(host, token)  # before anything is said or started
    for url in discover(storage):  # a damaged file now; one not there yet may still come
        check_sqlite(url)
    typer.echo(f"dashboard on http://{host}:{port}/ (Ctrl-C stops it)", err=True)
    serve(storage, host=host, port=port, token=token)
