"""Commands for searches on a cluster: ``submit`` and ``jobs`` (Ray's jobs API, contracts §3)."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from blocknas.cli.app import app, user_errors

jobs_app = typer.Typer(
    no_args_is_help=True,
    help="The cluster's search jobs: list, status, logs, stop.",
)
app.add_typer(jobs_app, name="jobs")

Address = Annotated[
    str,
    typer.Option(
        "--address",
        envvar="RAY_API_SERVER_ADDRESS",
        help="The cluster's jobs API, e.g. http://HEAD:8265 (or RAY_API_SERVER_ADDRESS).",
    ),
]
Token = Annotated[
    str | None,
    typer.Option(
        "--token",
        envvar="RAY_AUTH_TOKEN",
        show_default=False,
        help="Ray's auth token when the cluster has token authentication (or RAY_AUTH_TOKEN).",
    ),
]
JobId = Annotated[str, typer.Argument(help="A job id, as submit and jobs list print it.")]


@app.command()
@user_errors
def submit(
    config: Annotated[Path, typer.Argument(help="A search config (YAML).")],
    address: Address,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the config's study.")] = False,
    trials: Annotated[int | None, typer.Option("--trials", help="Trials to train.")] = None,
    token: Token = None,
) -> None:
    """Run a search as a Ray job on a cluster; prints the job id and how to follow it. The
    config's storage must be a database the cluster and you can reach (PostgreSQL).

    Example: blocknas submit examples/cifar10.yaml --address http://127.0.0.1:8265
    """
    from blocknas.search.jobs import submit as submit_job

    if trials is not None and trials < 1:
        raise ValueError(f"--trials={trials} must be ≥ 1")
    job_id = submit_job(config, address, resume=resume, trials=trials, token=token)
    typer.echo(job_id)
    a = f"--address {address}"
    typer.echo(
        f"follow it:  blocknas jobs logs {job_id} --follow {a}\n"
        f"its state:  blocknas jobs status {job_id} {a}\n"
        f"stop it:    blocknas jobs stop {job_id} {a}   (then submit --resume continues it)",
        err=True,
    )


def _when(seconds: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(seconds)) if seconds else "-"


@jobs_app.command("list")
@user_errors
def list_cmd(
    address: Address,
    token: Token = None,
    every: Annotated[bool, typer.Option("--all", help="Every job, not only searches.")] = False,
) -> None:
    """The cluster's search jobs, oldest first.

    Example: blocknas jobs list --address http://127.0.0.1:8265
    """
    from blocknas.search.jobs import list_jobs

    jobs = list_jobs(address, token=token, every=every)
    typer.echo(f"{'job':<40} {'status':<10} {'study':<20} started")
    for j in jobs:
        typer.echo(f"{j.id:<40} {j.status:<10} {j.study:<20} {_when(j.started)}")
    if not jobs:
        typer.echo("no search jobs on this cluster", err=True)


@jobs_app.command("status")
@user_errors
def status_cmd(job_id: JobId, address: Address, token: Token = None) -> None:
    """One job's status, study, storage and times.

    Example: blocknas jobs status blocknas-cifar10-20261125-101500-123 --address http://127.0.0.1:8265
    """
    from blocknas.search.jobs import status

    j = status(address, job_id, token=token)
    typer.echo(f"{j.id}: {j.status}" + (f" ({j.message})" if j.message else ""))
    typer.echo(
        f"study {j.study!r} in {j.storage}; started {_when(j.started)}, ended {_when(j.ended)}"
    )


@jobs_app.command("logs")
@user_errors
def logs_cmd(
    job_id: JobId,
    address: Address,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Stream until it ends.")] = False,
    token: Token = None,
) -> None:
    """A job's output: its trial lines and its summary.

    Example: blocknas jobs logs blocknas-cifar10-20261125-101500-123 --follow --address http://127.0.0.1:8265
    """
    from blocknas.search.jobs import logs

    def write(text: str) -> None:
        sys.stdout.write(text)
        sys.stdout.flush()

    logs(address, job_id, follow=follow, token=token, write=write)


@jobs_app.command("stop")
@user_errors
def stop_cmd(job_id: JobId, address: Address, token: Token = None) -> None:
    """Stop a job; ``blocknas submit CONFIG --resume`` continues its study later.

    Example: blocknas jobs stop blocknas-cifar10-20261125-101500-123 --address http://127.0.0.1:8265
    """
    from blocknas.search.jobs import stop

    j = stop(address, job_id, token=token)
    typer.echo(f"{j.id}: {j.status}")
