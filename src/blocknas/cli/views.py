"""Commands that show results: ``report`` (one offline HTML file)."""

from __future__ import annotations

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
