"""Commands that train: ``search`` (the main job) and ``train`` (one architecture)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from blocknas.cli.app import app, user_errors

if TYPE_CHECKING:
    from blocknas.runners.config import DataConfig, TrainConfig


@app.command()
@user_errors
def search(
    config: Annotated[Path, typer.Argument(help="A search config (YAML).")],
    address: Annotated[
        str | None, typer.Option("--address", help="A Ray cluster to run on (default: embedded).")
    ] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the config's study.")] = False,
    trials: Annotated[
        int | None, typer.Option("--trials", min=1, help="Trials to train (default: config).")
    ] = None,
) -> None:
    """Search the config's space: Optuna proposes, budgets reject, Ray Tune trains.

    Ctrl-C (SIGINT) or SIGTERM stops it cleanly: running trials are recorded as interrupted,
    the exit status is 130 or 143, and the last line is the command that continues it.

    Example: blocknas search examples/digits.yaml
    """
    from blocknas.search.config import SearchConfig
    from blocknas.search.results import failure_reasons, trained
    from blocknas.search.run import run_search
    from blocknas.search.text import failures

    cfg = SearchConfig.from_file(config)
    again = " ".join(
        ["blocknas search", str(config), "--resume"]
        + ([f"--address {address}"] if address else [])
        + ([f"--trials {trials}"] if trials else [])
    )
    try:
        outcome = run_search(
            cfg,
            address=address,
            resume=resume,
            trials=trials,
            echo=lambda line: typer.echo(line, err=True),
        )
    except KeyboardInterrupt:  # a second Ctrl-C, or one before training started
        typer.echo(f"interrupted; nothing trained is lost; continue with:\n{again}", err=True)
        raise typer.Exit(130) from None
    typer.echo(outcome.describe())
    if outcome.stopped_by:
        typer.echo(
            f"stopped by {outcome.stopped_by}: running trials recorded as interrupted and "
            f"queued again; continue with:\n{again}",
            err=True,
        )
        raise typer.Exit(outcome.exit_code)
    if not trained(outcome.results):  # contracts §3: a search in which no trial completed
        typer.echo(failures(failure_reasons(outcome.results), outcome.notes), err=True)
        raise typer.Exit(1)


@app.command("train")
@user_errors
def train_cmd(
    spec_file: Annotated[Path, typer.Argument(help="An ArchSpec file (JSON or YAML).")],
    data: Annotated[str | None, typer.Option("--data", help="Dataset name.")] = None,
    epochs: Annotated[int | None, typer.Option("--epochs", min=1)] = None,
    seed: Annotated[int | None, typer.Option("--seed")] = None,
    config: Annotated[
        Path | None, typer.Option("--config", help="YAML with train: and data: sections.")
    ] = None,
    data_dir: Annotated[Path | None, typer.Option("--data-dir", help="Dataset files.")] = None,
    download: Annotated[bool, typer.Option("--download", help="Fetch torchvision data.")] = False,
    batch_size: Annotated[int | None, typer.Option("--batch-size", min=2)] = None,
    lr: Annotated[float | None, typer.Option("--lr")] = None,
    device: Annotated[str | None, typer.Option("--device", help="auto, cpu or cuda.")] = None,
    threads: Annotated[int | None, typer.Option("--threads", min=1)] = None,
    checkpoint: Annotated[
        Path | None, typer.Option("--checkpoint", "-o", help="Default: runs/<spec>.pt")
    ] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue from --checkpoint.")] = False,
) -> None:
    """Train one architecture; progress on stderr, then one JSON line of metrics on stdout.

    Example: blocknas train examples/specs/digits_small.yaml --data digits --epochs 15
    """
    from blocknas import ArchSpec
    from blocknas.costmodel.memory import check_memory
    from blocknas.runners.checkpoint import load_checkpoint
    from blocknas.runners.train import EpochReport, train

    spec = ArchSpec.from_file(spec_file)
    flags: dict[str, Any] = {"epochs": epochs, "seed": seed, "batch_size": batch_size, "lr": lr}
    flags |= {"device": device, "threads": threads}
    data_flags = {"name": data, "root": data_dir, "download": download or None}
    data_cfg, train_cfg = _configs(config, data_flags, flags)
    check_memory(spec)  # a spec too large to build is refused before its data is loaded
    checkpoint = checkpoint or Path("runs") / f"{spec_file.stem}.pt"
    if resume and checkpoint.exists():
        load_checkpoint(checkpoint)  # a damaged one is refused before any work
    splits = data_cfg.load(spec.input, seed=train_cfg.seed)
    with typer.progressbar(length=1, label="training", file=sys.stderr) as bar:

        def on_step(done: int, total: int, loss: float) -> None:
            bar.length = total
            bar.label = f"loss {loss:.3f}"
            bar.update(done - bar.pos)

        def on_epoch(r: EpochReport) -> None:
            typer.echo(
                f"\repoch {r.epoch}/{train_cfg.epochs}: loss {r.train_loss:.4f}, "
                f"accuracy {r.accuracy:.4f}, {r.seconds:.1f} s",
                err=True,
            )

        result = train(
            spec,
            splits,
            train_cfg,
            on_step=on_step,
            on_epoch=on_epoch,
            checkpoint=checkpoint,
            resume=resume,
        )
    typer.echo(json.dumps({**result.metrics, "checkpoint": str(checkpoint)}))


def _configs(
    path: Path | None, data_flags: dict[str, Any], train_flags: dict[str, Any]
) -> tuple[DataConfig, TrainConfig]:
    """The ``data:`` and ``train:`` sections of ``--config`` (or defaults), flags on top."""
    from blocknas.runners.config import DataConfig, TrainConfig, read_train_config

    data_cfg, train_cfg = read_train_config(path) if path else (DataConfig(), TrainConfig())
    given = lambda flags: {k: v for k, v in flags.items() if v is not None}  # noqa: E731
    return (
        DataConfig.from_dict({**data_cfg.model_dump(), **given(data_flags)}, "data"),
        TrainConfig.from_dict({**train_cfg.model_dump(), **given(train_flags)}, "train"),
    )
