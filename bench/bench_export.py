"""Latency of each exported format on CPU at batch 1 and 32, against the network's training form.

Two ResNet-20s on 3×32×32 with random weights (BN statistics randomised, so BN folding is
exercised): ``examples/specs/resnet20_acb.yaml`` (ACNet blocks) and the same spec with every
layer's op a plain conv. For each: the training form (eager, eval mode, no grad), the deploy form
(eager), and every format of :data:`blocknas.exporter.formats.FORMATS`, written from the deploy form
and run back (ONNX through an ``onnxruntime.InferenceSession`` made here, so that its threads are
set like torch's). Every format's output is checked against the deploy form's first.

Each cell is the median over ``--rounds`` rounds of a median of repeated ``perf_counter`` runs
(``--min-time`` seconds each); every form is timed once per round, the two networks' same form
one after the other, and each ratio is the median over rounds of the ratio within a round.
Goals (the export issue): the ACB deploy form within 5% of the plain-conv deploy form, and at
least 1.5× faster than the ACB training form.

Run: ``.venv/bin/python bench/bench_export.py [--threads N] [--min-time S] [--rounds R]``.
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import onnxruntime as ort
import torch

from blocknas import ArchSpec, build, to_deploy
from blocknas.exporter.formats import FORMATS, ONNX
from blocknas.spaces.selftest import randomize_bn

ROOT = Path(__file__).resolve().parents[1]
BATCHES = (1, 32)
TRAIN, DEPLOY = "training form (eager)", "deploy form (eager)"
DEPLOY_GOAL = 1.05  # ACB deploy / plain-conv deploy, at most
SPEEDUP_GOAL = 1.5  # ACB training / ACB deploy, at least

Forward = Callable[[torch.Tensor], object]
Runs = dict[tuple[str, str, int], list[float]]  # (network, form, batch) → ms in each round


def networks() -> dict[str, ArchSpec]:
    """The ACB ResNet-20 and the same spec with every layer's op a plain conv."""
    acb = ArchSpec.from_file(ROOT / "examples" / "specs" / "resnet20_acb.yaml")
    data = acb.to_dict()
    for layer in data["layers"]:
        layer["op"] = "conv"
    return {"acb": acb, "conv": ArchSpec.from_dict(data)}


def median_ms(fn: Callable[[], object], min_time: float, min_runs: int = 5) -> float:
    """Median milliseconds of ``fn()`` after a warm-up, over ``min_time`` s (≥ ``min_runs``)."""
    for _ in range(3):
        fn()
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < min_runs or time.perf_counter() - start < min_time:
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def ort_forward(path: Path, threads: int) -> Forward:
    """An ONNX Runtime session on ``path`` with ``threads`` intra- and inter-op threads."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = threads
    session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name

    def run(x: torch.Tensor) -> object:
        return session.run(None, {name: x.numpy()})[0]

    return run


def check(label: str, out: object, ref: torch.Tensor, atol: float = 1e-5) -> None:
    """Fail loudly unless ``out`` matches ``ref`` (rtol 1e-3)."""
    got = torch.as_tensor(out)
    if got.shape != ref.shape or not torch.allclose(got, ref, rtol=1e-3, atol=atol):
        diff = (got - ref).abs().max().item() if got.shape == ref.shape else "shape"
        raise SystemExit(f"{label}: output does not match the deploy form's (max diff {diff})")


def forms(spec: ArchSpec, tmp: Path, threads: int) -> dict[str, Forward]:
    """Every form of ``spec``'s network to time, each checked against the deploy form."""
    model = build(spec)
    randomize_bn(model)
    model.eval()
    deploy = to_deploy(model)
    x = torch.randn(4, *spec.input)
    with torch.no_grad():
        ref = deploy(x)
        check(TRAIN, model(x), ref, atol=1e-4)  # BN folding moves the last float bits
    out: dict[str, Forward] = {TRAIN: model, DEPLOY: deploy}
    for fmt in FORMATS:
        path = tmp / fmt.filename
        fmt.write(deploy, torch.zeros(2, *spec.input), path)
        runner: Forward = fmt.load(path)
        check(f"{fmt.name} ({fmt.filename})", runner(x), ref)
        if fmt is ONNX:
            runner = ort_forward(path, threads)
            check(f"{fmt.name} (own session)", runner(x), ref)
            label = f"ONNX Runtime ({fmt.filename})"
        else:
            label = f"{fmt.name} ({fmt.filename})"
        out[label] = runner
    return out


def measure(
    nets: dict[str, dict[str, Forward]], shape: tuple[int, ...], rounds: int, min_time: float
) -> Runs:
    """Each form's median ms at each batch in each round; every form once per round, the two
    networks' same form timed one right after the other."""
    inputs = {b: torch.randn(b, *shape) for b in BATCHES}
    runs: Runs = {}
    with torch.no_grad():
        for _ in range(rounds):
            for b, x in inputs.items():
                for form in nets["acb"]:
                    for net, fs in nets.items():
                        ms = median_ms(partial(fs[form], x), min_time)
                        runs.setdefault((net, form, b), []).append(ms)
    return runs


def ratio(runs: Runs, num: tuple[str, str], den: tuple[str, str], b: int) -> float:
    """The median over rounds of ``num`` ms / ``den`` ms, both timed in the same round."""
    pairs = zip(runs[(*num, b)], runs[(*den, b)], strict=True)
    return statistics.median(n / d for n, d in pairs)


def machine(threads: int) -> str:
    """The CPU model, its core count, the torch and onnxruntime versions and the threads."""
    cpu = "unknown CPU"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return (
        f"machine: {cpu}, {os.cpu_count()} cores; torch {torch.__version__}, "
        f"onnxruntime {ort.__version__}; {threads} thread(s)"
    )


def table(runs: Runs) -> list[str]:
    """Markdown rows: ms per batch, speed-up against the training form, ACB / plain conv."""
    cols = " | ".join(f"batch {b} ms" for b in BATCHES)
    up = " | ".join(f"speed-up b{b}" for b in BATCHES)
    vs = " | ".join(f"÷ plain conv b{b}" for b in BATCHES)
    n = 2 + 3 * len(BATCHES)
    lines = [f"| network | form | {cols} | {up} | {vs} |", "|---|---|" + "---:|" * (n - 2)]
    names = dict.fromkeys(net for net, _, _ in runs)
    kinds = dict.fromkeys(form for _, form, _ in runs)
    for net, form in itertools.product(names, kinds):
        cells = [f"{statistics.median(runs[(net, form, b)]):.2f}" for b in BATCHES]
        cells += [f"{ratio(runs, (net, TRAIN), (net, form), b):.2f}×" for b in BATCHES]
        peer = ("conv", form)
        cells += [
            f"{ratio(runs, (net, form), peer, b):.2f}" if net != "conv" else "" for b in BATCHES
        ]
        lines.append(f"| {net} | {form} | " + " | ".join(cells) + " |")
    return lines


def goals(runs: Runs) -> list[str]:
    """Whether each goal of the export issue holds at each batch."""
    lines = []
    for b in BATCHES:
        vs_conv = ratio(runs, ("acb", DEPLOY), ("conv", DEPLOY), b)
        speedup = ratio(runs, ("acb", TRAIN), ("acb", DEPLOY), b)
        lines.append(
            f"batch {b}: ACB deploy / plain-conv deploy {vs_conv:.3f} (goal ≤ {DEPLOY_GOAL}: "
            f"{'met' if vs_conv <= DEPLOY_GOAL else 'NOT met'}); ACB training / ACB deploy "
            f"{speedup:.2f}× (goal ≥ {SPEEDUP_GOAL}×: "
            f"{'met' if speedup >= SPEEDUP_GOAL else 'NOT met'})"
        )
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--min-time", type=float, default=1.0, help="seconds per measurement")
    ap.add_argument("--rounds", type=int, default=5)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    print(machine(a.threads))
    with tempfile.TemporaryDirectory() as d:
        nets: dict[str, dict[str, Forward]] = {}
        specs = networks()
        for name, spec in specs.items():
            (Path(d) / name).mkdir()
            nets[name] = forms(spec, Path(d) / name, a.threads)
        print("every format's output matches its deploy form's (rtol 1e-3, atol 1e-5)")
        runs = measure(nets, specs["acb"].input, a.rounds, a.min_time)
    print(
        f"\nms: median over {a.rounds} rounds of the median over ≥ {a.min_time} s; ratios: "
        "median over rounds of the ratio within a round; speed-up = training form ms / form ms\n"
    )
    print("\n".join(table(runs)))
    print()
    print("\n".join(goals(runs)))


if __name__ == "__main__":
    main()
