"""``blocknas export``: a trial of a study as a verified deploy package (contracts §3, §4)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from blocknas.cli.app import ProgressBar, app, fail, user_errors

if TYPE_CHECKING:
    from blocknas.runners.train import EpochReport


@app.command("export")
@user_errors
def export_cmd(
    storage: Annotated[
        str,
        typer.Option("--storage", help="The study storage, e.g. sqlite:///runs/digits/study.db"),
    ],
    study: Annotated[str, typer.Option("--study", help="The study's name.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="The package folder to write.")],
    trial: Annotated[
        int | None, typer.Option("--trial", help="Export this trial (not with --pick).")
    ] = None,
    pick: Annotated[
        str | None,
        typer.Option("--pick", help="best (default), smallest or knee, from the feasible front."),
    ] = None,
    epochs: Annotated[
        int | None,
        typer.Option("--epochs", help="Retrain from scratch for N epochs first."),
    ] = None,
    max_macs: Annotated[
        float | None, typer.Option("--max-macs", help="A tighter MACs budget for the pick.")
    ] = None,
    max_latency_ms: Annotated[
        float | None,
        typer.Option("--max-latency-ms", help="A tighter latency budget for the pick."),
    ] = None,
    device: Annotated[
        str | None,
        typer.Option("--device", help="Where latency is measured (default: the study's)."),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Replace the package files in a non-empty --out.")
    ] = False,
) -> None:
    """Export a trial deploy-ready (ACNet fused, BN folded, Shape Adaptors frozen) as spec,
    weights, TorchScript, torch.export and ONNX with a model card, and verify every format
    against the trained network before anything lands in --out.

    Picks: best = most accurate; smallest = fewest MACs within 1 point of the best accuracy;
    knee = nearest the ideal point of the front scaled to [0, 1]. A failed check exits 1 and
    leaves nothing in --out.

    Example: blocknas export --storage sqlite:///runs/digits/study.db --study digits
    --pick knee --out export/digits-knee
    """
    from blocknas.exporter.run import Progress, export
    from blocknas.exporter.verify import CheckFailed

    budgets = {"macs": max_macs, "latency_ms": max_latency_ms}
    bar = _RetrainBar(epochs)
    progress = Progress(
        echo=lambda line: typer.echo(line, err=True), on_step=bar.step, on_epoch=bar.epoch
    )
    try:
        path = export(
            storage,
            study,
            out=out,
            trial=trial,
            pick=pick,
            epochs=epochs,
            force=force,
            budgets={k: v for k, v in budgets.items() if v is not None},
            device=device,
            progress=progress,
        )
    except CheckFailed as e:
        fail(f"{e}; nothing was written to {out}", code=1)
    except ImportError as e:
        fail(str(e))
    except KeyboardInterrupt:
        fail("interrupted; run the same command again to resume", code=130)
    finally:
        bar.close()
    typer.echo(str(path))


class _RetrainBar(ProgressBar):
    """A progress bar over the retrain's batches, opened when the first batch is done."""

    def __init__(self, epochs: int | None) -> None:
        super().__init__("retraining")
        self.epochs = epochs

    def step(self, done: int, total: int, loss: float) -> None:
        self.update(done, total, f"retraining, loss {loss:.3f}")

    def epoch(self, r: EpochReport) -> None:
        typer.echo(
            f"\repoch {r.epoch}/{self.epochs}: loss {r.train_loss:.4f}, accuracy {r.accuracy:.4f}",
            err=True,
        )
