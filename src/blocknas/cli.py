"""The ``blocknas`` command line: a thin layer over the Python API.

Bad input ends with one line on stderr naming what is wrong and exit status 2; ``--debug``
shows the traceback instead.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import click
import typer

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Neural architecture search for CNNs under MACs and latency budgets.",
)

F = TypeVar("F", bound=Callable[..., Any])


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def user_errors(fn: F) -> F:
    """Turn the errors a user can cause into a one-line message and exit status 2."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from blocknas.spaces.errors import SpecError

        try:
            return fn(*args, **kwargs)
        except (SpecError, ValueError, OSError) as e:
            ctx = click.get_current_context(silent=True)
            if ctx is not None and ctx.find_root().params.get("debug"):
                raise
            _fail(str(e).splitlines()[0] if str(e) else type(e).__name__)

    return wrapper  # type: ignore[return-value]


@app.callback()
def _main(
    debug: Annotated[bool, typer.Option("--debug", help="Show Python tracebacks.")] = False,
) -> None:
    """Global options; ``--debug`` is read back from the root context by :func:`user_errors`."""


@app.command()
@user_errors
def blocks(
    verify: Annotated[
        bool,
        typer.Option(
            "--verify",
            help="Build every block × op combination, train one step and check its deploy form.",
        ),
    ] = False,
) -> None:
    """List the registered ops, blocks and stems; with --verify, test every combination.

    Example: blocknas blocks --verify
    """
    from blocknas.spaces import BLOCKS, OPS, STEMS

    typer.echo("ops:    " + ", ".join(OPS.names()))
    typer.echo("blocks: " + ", ".join(BLOCKS.names()))
    typer.echo("stems:  " + ", ".join(STEMS.names()))
    if not verify:
        return
    from blocknas.spaces.selftest import verify_all

    typer.echo(f"\n{'block':<18}{'op':<8}{'status':<10}{'params':>9}{'deploy':>9}  max rel diff")
    failed = 0
    for c in verify_all():
        if c.status == "ok":
            typer.echo(
                f"{c.block:<18}{c.op:<8}{c.status:<10}{c.params:>9,}{c.deploy_params:>9,}"
                f"  {c.rel_diff:.1e}"
            )
        else:
            failed += c.status == "failed"
            typer.echo(f"{c.block:<18}{c.op:<8}{c.status:<10}  {c.message}")
    if failed:
        _fail(f"{failed} combination(s) failed")


@app.command()
@user_errors
def check(
    spec_file: Annotated[Path, typer.Argument(help="An ArchSpec file (.yaml or .json).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Validate a spec, build it, and compare its deploy form with the training form.

    Example: blocknas check examples/specs/resnet20_acb.yaml --json
    """
    import torch

    from blocknas import ArchSpec, build, to_deploy

    spec = ArchSpec.from_file(spec_file)
    torch.manual_seed(0)
    net = build(spec).eval()
    deployed = to_deploy(net)
    x = torch.randn(2, *spec.input)
    with torch.no_grad():
        ref, out = net(x), deployed(x)
    result = {
        "layers": len(spec.layers),
        "params": sum(p.numel() for p in net.parameters()),
        "deploy_params": sum(p.numel() for p in deployed.parameters()),
        "output": list(ref.shape[1:]),
        "deploy_max_abs_diff": float((ref - out).abs().max()),
    }
    if as_json:
        typer.echo(json.dumps(result))
    else:
        typer.echo(
            f"{spec_file}: ok, {result['layers']} layers, {result['params']:,} params "
            f"({result['deploy_params']:,} deployed), output {result['output']}, "
            f"deploy max abs diff {result['deploy_max_abs_diff']:.1e}"
        )


def _parse_input(text: str) -> tuple[int, int, int]:
    try:
        c, h, w = (int(v) for v in text.split(","))
    except ValueError:
        raise ValueError(f"--input={text!r} must be C,H,W, e.g. 3,224,224") from None
    if min(c, h, w) < 1:
        raise ValueError(f"--input={text!r}: C, H and W must each be ≥ 1")
    return c, h, w


@app.command()
@user_errors
def cost(
    spec_file: Annotated[Path | None, typer.Argument(help="An ArchSpec file.")] = None,
    preset: Annotated[str | None, typer.Option("--preset", help="A preset name.")] = None,
    input: Annotated[
        str | None, typer.Option("--input", help="C,H,W (default: the spec's).")
    ] = None,
    num_classes: Annotated[int | None, typer.Option("--num-classes", min=1)] = None,
    device: Annotated[
        str | None, typer.Option("--device", help="Measure latency: cpu|cuda.")
    ] = None,
    table: Annotated[
        Path | None, typer.Option("--table", help="Predict latency from a table.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Params and MACs of the training and deploy forms; latency when a device is given.

    Example: blocknas cost --preset resnet50 --input 3,224,224 --num-classes 1000 --json
    """
    from blocknas import ArchSpec, presets
    from blocknas.cost import cost as compute_cost

    if (spec_file is None) == (preset is None):
        raise ValueError("give exactly one of SPEC_FILE or --preset NAME")
    if preset is not None:
        natural_input, natural_classes = presets.intended(preset)
        spec = presets.get(
            preset,
            input=natural_input if input is None else _parse_input(input),
            num_classes=natural_classes if num_classes is None else num_classes,
        )
    else:
        assert spec_file is not None
        spec = ArchSpec.from_file(spec_file)
        overrides: dict[str, Any] = {}
        if input is not None:
            overrides["input"] = list(_parse_input(input))
        if num_classes is not None:
            overrides["num_classes"] = num_classes
        if overrides:
            spec = ArchSpec.from_dict({**spec.to_dict(), **overrides})
    result = compute_cost(spec, device=device).to_dict()
    if table is not None:
        from blocknas.cost.table import LatencyTable

        result["predicted_latency_ms"] = LatencyTable.load(table).predict(spec)
    if as_json:
        typer.echo(json.dumps(result))
    else:
        for key, value in result.items():
            shown = (
                "-"
                if value is None
                else (f"{value:,}" if isinstance(value, int) else f"{value:.4g}")
            )
            typer.echo(f"{key:>22}  {shown}")


@app.command("presets")
@user_errors
def presets_cmd() -> None:
    """List the presets with params and MACs of their training and deploy forms.

    Example: blocknas presets
    """
    from blocknas import presets
    from blocknas.cost import cost as compute_cost

    typer.echo(f"{'preset':<22}{'input':>14}{'params':>14}{'MACs':>10}{'deploy MACs':>13}")
    for name in presets.names():
        natural_input, natural_classes = presets.intended(name)
        spec = presets.get(name, input=natural_input, num_classes=natural_classes)
        c = compute_cost(spec)
        shape = "x".join(map(str, spec.input))
        macs, deploy = f"{c.macs / 1e9:.3f}G", f"{c.deploy_macs / 1e9:.3f}G"
        typer.echo(f"{name:<22}{shape:>14}{c.params:>14,}{macs:>10}{deploy:>13}")


space_app = typer.Typer(no_args_is_help=True, help="Search spaces.")
app.add_typer(space_app, name="space")


@space_app.command("sample")
@user_errors
def space_sample(
    config: Annotated[Path, typer.Argument(help="A search config (its space: section) or space.")],
    seed: Annotated[int, typer.Option("--seed", help="Random seed of the draw.")] = 0,
) -> None:
    """Print one ArchSpec JSON drawn from the search space.

    Example: blocknas space sample examples/digits.yaml --seed 3
    """
    from blocknas.spaces.schema import SearchSpace

    typer.echo(SearchSpace.from_file(config).sample_random(seed).to_json())


@app.command()
@user_errors
def profile(
    config: Annotated[Path, typer.Argument(help="A search config (its space: section) or space.")],
    device: Annotated[str, typer.Option("--device", help="cpu or cuda.")] = "cpu",
    samples: Annotated[int, typer.Option("--samples", min=1, help="Specs drawn.")] = 100,
    threads: Annotated[int, typer.Option("--threads", min=1, help="Torch threads.")] = 1,
    batch: Annotated[int, typer.Option("--batch", min=1, help="Batch size timed.")] = 1,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Table file to write.")] = None,
) -> None:
    """Measure a latency table: each distinct part (stem, adaptor, block, head at its input
    shape) of specs drawn from the space, timed once on the device. An existing table file
    for the same device, threads and batch is extended.

    Example: blocknas profile examples/digits.yaml --device cpu --samples 50 -o latency.json
    """
    from blocknas.cost.table import LatencyTable
    from blocknas.cost.table import profile as run_profile
    from blocknas.spaces.schema import SearchSpace

    space = SearchSpace.from_file(config)
    out = out or Path("runs") / f"latency_{device}.json"
    table = LatencyTable(device=device, threads=threads, batch=batch)
    if out.exists():
        table = LatencyTable.load(out)
        if (table.device, table.threads, table.batch) != (device, threads, batch):
            raise ValueError(
                f"{out} was measured with device={table.device}, threads={table.threads}, "
                f"batch={table.batch}; pass the same or choose another --out"
            )
    before = len(table.entries)
    with typer.progressbar(length=samples, label="profiling", file=sys.stderr) as bar:
        run_profile(space, table, samples=samples, seed=seed, progress=lambda _d, _t: bar.update(1))
    out.parent.mkdir(parents=True, exist_ok=True)
    table.save(out)
    typer.echo(f"{out}: {len(table.entries)} parts ({len(table.entries) - before} new)")


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

    Example: blocknas search examples/digits.yaml
    """
    from blocknas.search.config import SearchConfig
    from blocknas.search.run import describe, run_search

    cfg = SearchConfig.from_file(config)
    outcome = run_search(
        cfg,
        address=address,
        resume=resume,
        trials=trials,
        echo=lambda line: typer.echo(line, err=True),
    )
    typer.echo(describe(outcome))


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
    from blocknas.runners.config import DataConfig, TrainConfig, read_train_config
    from blocknas.runners.train import EpochReport, train

    spec = ArchSpec.from_file(spec_file)
    data_cfg, train_cfg = read_train_config(config) if config else (DataConfig(), TrainConfig())
    flags: dict[str, Any] = {"epochs": epochs, "seed": seed, "batch_size": batch_size, "lr": lr}
    flags |= {"device": device, "threads": threads}
    train_cfg = TrainConfig.from_dict(
        {**train_cfg.model_dump(), **{k: v for k, v in flags.items() if v is not None}}, "train"
    )
    data_flags = {"name": data, "root": data_dir, "download": download or None}
    data_cfg = DataConfig.from_dict(
        {**data_cfg.model_dump(), **{k: v for k, v in data_flags.items() if v is not None}}, "data"
    )
    splits = data_cfg.load(spec.input, seed=train_cfg.seed)
    checkpoint = checkpoint or Path("runs") / f"{spec_file.stem}.pt"
    with typer.progressbar(length=1, label="training", file=sys.stderr) as bar:

        def on_step(done: int, total: int, loss: float) -> None:
            bar.length = total
            bar.label = f"loss {loss:.3f}"
            bar.update(done - bar.pos)

        def on_epoch(r: EpochReport) -> None:
            typer.echo(
                f"\repoch {r.epoch}/{train_cfg.epochs}: loss {r.train_loss:.4f}, "
                f"val accuracy {r.val_accuracy:.4f}, {r.seconds:.1f} s",
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


def main() -> None:
    """Console-script entry point."""
    app(prog_name="blocknas")


if __name__ == "__main__":  # pragma: no cover
    main()
