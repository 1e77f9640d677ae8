"""Commands about architectures: blocks, check, cost, presets, space sample, profile."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from blocknas.cli.app import app, fail, parse_input, user_errors

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

    spec = ArchSpec.from_file(spec_file)
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
    table: Annotated[
        Path | None, typer.Option("--table", help="Predict latency from a table.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """MACs and params of the deploy form (what budgets limit) and of the training form;
    latency when a device is given.

    Example: blocknas cost --preset resnet50 --input 3,224,224 --num-classes 1000 --json
    """
    from blocknas.costmodel import cost as compute_cost
    from blocknas.metrics import METRICS

    spec = _spec_of(spec_file, preset, input, num_classes)
    result = compute_cost(spec, device=device).to_dict()
    if table is not None:
        from blocknas.costmodel.table import LatencyTable

        result["predicted_latency_ms"] = LatencyTable.load(table).predict(spec)
    if as_json:
        typer.echo(json.dumps(result))
        return
    for key, value in result.items():
        doc = METRICS[key].doc if key in METRICS else "predicted from the latency table"
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
    from blocknas.costmodel.table import LatencyTable
    from blocknas.costmodel.table import profile as run_profile
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
