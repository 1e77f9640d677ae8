"""Commands about architectures: blocks, check, cost, presets, space sample, profile."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from blocknas.cli.app import ProgressBar, app, fail, parse_input, user_errors

if TYPE_CHECKING:
    from blocknas import ArchSpec


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

    typer.echo(
        f"\n{'block':<18}{'op':<8}{'status':<10}{'train_params':>13}{'params':>9}  max rel diff"
    )
    failed = 0
    for c in verify_all():
        if c.status == "ok":
            typer.echo(
                f"{c.block:<18}{c.op:<8}{c.status:<10}{c.train_params:>13,}{c.params:>9,}"
                f"  {c.rel_diff:.1e}"
            )
        else:
            failed += c.status == "failed"
            typer.echo(f"{c.block:<18}{c.op:<8}{c.status:<10}  {c.message}")
    if failed:
        fail(f"{failed} combination(s) failed")


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
    from blocknas.costmodel.memory import check_memory

    spec = ArchSpec.from_file(spec_file)
    check_memory(spec)  # before anything is allocated
    torch.manual_seed(0)
    net = build(spec).eval()
    deployed = to_deploy(net)
    x = torch.randn(2, *spec.input)
    with torch.no_grad():
        ref, out = net(x), deployed(x)
    result = {  # params: the deploy form's (contracts §5); train_params: the training form's
        "layers": len(spec.layers),
        "params": sum(p.numel() for p in deployed.parameters()),
        "train_params": sum(p.numel() for p in net.parameters()),
        "output": list(ref.shape[1:]),
        "deploy_max_abs_diff": float((ref - out).abs().max()),
    }
    if as_json:
        typer.echo(json.dumps(result))
    else:
        typer.echo(
            f"{spec_file}: ok, {result['layers']} layers, {result['params']:,} params "
            f"({result['train_params']:,} in training form), output {result['output']}, "
            f"deploy max abs diff {result['deploy_max_abs_diff']:.1e}"
        )


def _spec_of(
    spec_file: Path | None, preset: str | None, input: str | None, num_classes: int | None
) -> ArchSpec:
    """The spec of ``blocknas cost``: a file or a preset, at the given input and classes."""
    from blocknas import ArchSpec, presets

    if preset is not None and spec_file is None:
        natural_input, natural_classes = presets.intended(preset)
        return presets.get(
            preset,
            input=natural_input if input is None else parse_input(input),
            num_classes=natural_classes if num_classes is None else num_classes,
        )
    if spec_file is None or preset is not None:
        raise ValueError("give exactly one of SPEC_FILE or --preset NAME")
    spec = ArchSpec.from_file(spec_file)
    overrides: dict[str, Any] = {}
    if input is not None:
        overrides["input"] = list(parse_input(input))
    if num_classes is not None:
        overrides["num_classes"] = num_classes
    return ArchSpec.from_dict({**spec.to_dict(), **overrides}) if overrides else spec


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
    threads: Annotated[
        int | None,
        typer.Option("--threads", min=1, help="Torch threads (default: all; a predictor's)."),
    ] = None,
    batch: Annotated[
        int | None, typer.Option("--batch", min=1, help="Batch size (default 1; a predictor's).")
    ] = None,
    table: Annotated[
        Path | None,
        typer.Option("--table", help="Predict latency with a predictor (`blocknas profile`)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """MACs and params of the deploy form (what budgets limit) and of the training form;
    latency when a device is given, predicted latency with --table (nothing is measured).

    Example: blocknas cost examples/specs/resnet20_acb.yaml --table runs/latency_cpu.json --json
    """
    from blocknas.costmodel import cost as compute_cost
    from blocknas.costmodel.memory import check_memory
    from blocknas.metrics import METRICS

    spec = _spec_of(spec_file, preset, input, num_classes)
    check_memory(spec)  # a spec too large to build is refused, with or without --device
    predicted = None
    if table is not None:  # a predictor for another setting is refused before any work
        from blocknas.costmodel.predictor import Target
        from blocknas.costmodel.profiling import read

        predictor = read(table)
        have = predictor.target
        here = Target.here(device or have.device, threads or have.threads, batch or have.batch)
        predictor.check(here, table)
        predicted = predictor.predict(spec)
    result = compute_cost(spec, device=device, batch=batch or 1, threads=threads).to_dict()
    if predicted is not None:
        result["predicted_latency_ms"] = predicted
    if as_json:
        typer.echo(json.dumps(result))
        return
    for key, value in result.items():
        doc = METRICS[key].doc if key in METRICS else "predicted by the latency predictor"
        typer.echo(f"{key:>22}  {METRICS.show(key, value, table=True):>16}  {doc}")


@app.command("presets")
@user_errors
def presets_cmd() -> None:
    """List the presets with the MACs and params of their deploy and training forms.

    Example: blocknas presets
    """
    from blocknas import presets
    from blocknas.costmodel import cost as compute_cost

    columns = ("params", "macs", "train_params", "train_macs")
    typer.echo(f"{'preset':<22}{'input':>14}" + "".join(f"{c:>16}" for c in columns))
    for name in presets.names():
        natural_input, natural_classes = presets.intended(name)
        spec = presets.get(name, input=natural_input, num_classes=natural_classes)
        c = compute_cost(spec).to_dict()
        shape = "x".join(map(str, spec.input))
        typer.echo(f"{name:<22}{shape:>14}" + "".join(f"{c[k]:>16,}" for k in columns))


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
    samples: Annotated[
        int, typer.Option("--samples", min=1, help="Training specs drawn and profiled.")
    ] = 120,
    holdout: Annotated[
        int, typer.Option("--holdout", min=0, help="Held-out specs, measured twice.")
    ] = 30,
    threads: Annotated[int, typer.Option("--threads", min=1, help="Torch threads.")] = 1,
    batch: Annotated[int, typer.Option("--batch", min=1, help="Batch size timed.")] = 1,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Predictor file to write or extend.")
    ] = None,
) -> None:
    """Build a latency predictor: time specs drawn from the space (each part inside the running
    network, and the whole), fit a regression that predicts parts never profiled, and report its
    error on held-out specs next to the clock's own re-measurement noise. An interrupted run
    resumes and an existing file for the same device, threads and batch is extended.

    Example: blocknas profile examples/cifar10.yaml --device cpu --threads 1 -o latency.json
    """
    from blocknas.costmodel.predictor import Target
    from blocknas.costmodel.profiling import profile as run_profile
    from blocknas.costmodel.profiling import report_table
    from blocknas.spaces.schema import SearchSpace

    space = SearchSpace.from_file(config)
    out = out or Path("runs") / f"latency_{device}.json"
    target = Target.here(device, threads, batch)
    try:
        with ProgressBar("profiling") as bar:
            predictor = run_profile(
                space, out, target, samples=samples, holdout=holdout, seed=seed, progress=bar.update
            )
    except KeyboardInterrupt:  # every measured spec is already in the file
        fail(f"interrupted; {out} keeps what was measured: run the same command to resume", 130)
    trained = sum(s.role == "train" for s in predictor.samples)
    typer.echo(f"{out}: {trained} profiled specs, on {target.describe()}")
    if predictor.report is not None:
        typer.echo(report_table(predictor.report))
