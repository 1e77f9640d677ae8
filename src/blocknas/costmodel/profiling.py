"""Profiling: time specs drawn from a space into a latency predictor file, and say how good it is.

A profile run draws training specs and held-out specs from the space (separate seed streams) and
measures each training spec (its parts, timed inside the running network, and its whole latency)
and each held-out spec twice (whole latency only, minutes apart: the re-measurement noise),
interleaved (:func:`_schedule`), writing the file after each step so that an interrupted run
resumes where it stopped and a later run extends the file. It then fits the predictor (on every
training part) and reports, on the held-out specs, predicted by a model fitted without any of
their parts (:meth:`~LatencyPredictor.held_out_model`), the share within ±10 %, the median
and worst error, Spearman's rank correlation, and the same numbers for the second pass against
the first: what the clock itself allows.
"""

from __future__ import annotations

import json
import os
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from blocknas.costmodel.features import entry, spec_parts
from blocknas.costmodel.latency import check_device, measure_latency, own_rng
from blocknas.costmodel.memory import check_space_memory
from blocknas.costmodel.predictor import LatencyPredictor, Sample, Target
from blocknas.spaces import ArchSpec, build, to_deploy
from blocknas.spaces.files import MB, read_json
from blocknas.spaces.schema import SearchSpace

#: ``progress(done, total)`` after each measured spec
Progress = Callable[[int, int], None]
#: held-out specs are drawn from seeds this far above the training ones
HOLDOUT_SEED_OFFSET = 1_000_003
#: re-measurement noise (median) above which a profile's report warns that the clock is too
#: noisy to judge the predictor (an idle 2-core VM measured 2-3 %; a busy one over 20 %)
NOISY = 0.05
#: the most a predictor file may hold (its trees: ~0.5 MB, each profiled spec: ~3 kB)
PREDICTOR_LIMIT = 100 * MB


@contextmanager
def _threads(n: int) -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def time_parts(
    spec: ArchSpec, *, device: str, batch: int, threads: int, min_run_time: float = 0.3
) -> list[float]:
    """Median time (ms) of each part of ``spec``'s deploy form inside whole forward passes.

    On a CPU the clock is read around each part; on a GPU a pair of CUDA events brackets it, so
    nothing is synchronised between parts and kernels overlap as in a plain forward.
    """
    dev = check_device(device)
    with own_rng(dev):
        net = to_deploy(build(spec).to(dev))
        x = torch.randn(batch, *spec.input, device=dev)
    names = [part.name for part, _ in spec_parts(spec, batch)]
    cuda = dev.type == "cuda"
    marks: dict[str, list[Any]] = {n: [] for n in names}

    def stamp() -> Any:
        if not cuda:
            return time.perf_counter()
        event = torch.cuda.Event(enable_timing=True)
        event.record()
        return event

    hooks = []
    for name in names:
        module = net.get_submodule(name)
        hooks.append(module.register_forward_pre_hook(lambda *_, n=name: marks[n].append(stamp())))
        hooks.append(module.register_forward_hook(lambda *_, n=name: marks[n].append(stamp())))
    try:
        with torch.no_grad(), _threads(threads):
            for _ in range(3):
                net(x)
            for v in marks.values():
                v.clear()
            start, runs = time.perf_counter(), 0
            while runs < 10 or time.perf_counter() - start < min_run_time:
                net(x)
                runs += 1
            if cuda:
                torch.cuda.synchronize(dev)
    finally:
        for h in hooks:
            h.remove()

    def elapsed(a: Any, b: Any) -> float:
        return float(a.elapsed_time(b)) if cuda else (b - a) * 1e3

    return [
        statistics.median(elapsed(a, b) for a, b in zip(m[0::2], m[1::2], strict=True))
        for m in (marks[n] for n in names)
    ]


def measure_sample(spec: ArchSpec, target: Target) -> Sample:
    """A training sample: the spec's parts timed in context, and its whole latency."""
    times = time_parts(spec, device=target.device, batch=target.batch, threads=target.threads)
    keys = [entry(p, s) for p, s in spec_parts(spec, target.batch)]
    return Sample(spec, "train", [whole_latency(spec, target)], list(zip(keys, times, strict=True)))


def whole_latency(spec: ArchSpec, target: Target) -> float:
    """The spec's latency as a trained trial measures it (:func:`measure_latency`)."""
    return measure_latency(spec, device=target.device, batch=target.batch, threads=target.threads)


def read(path: Path) -> LatencyPredictor:
    """The predictor at ``path``; ValueError (one line, naming the file) if it is not one."""
    data = read_json(path, "latency predictor", limit=PREDICTOR_LIMIT)
    try:
        return LatencyPredictor.from_dict(data)
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None


def write(predictor: LatencyPredictor, path: Path) -> None:
    """Write atomically: a kill mid-write leaves the previous file whole."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(predictor.to_dict()))
    os.replace(tmp, path)


def profile(
    space: SearchSpace,
    path: Path,
    target: Target,
    *,
    samples: int = 120,
    holdout: int = 30,
    seed: int = 0,
    progress: Progress | None = None,
) -> LatencyPredictor:
    """Profile ``samples`` training and ``holdout`` held-out specs of ``space`` into the file
    at ``path`` (created, resumed or extended: specs already in it are not measured again),
    then fit the predictor and fill its report. The file must be for ``target``.
    """
    predictor = read(path) if path.exists() else LatencyPredictor(target)
    predictor.check(target, path)
    check_space_memory(space)  # before any spec is built
    drawn: set[str] = set()  # the run's specs: the same on a resumed run, measured only once
    train = _draw(space, seed, samples, drawn)
    held = _draw(space, seed + HOLDOUT_SEED_OFFSET, holdout, drawn)
    done = {s.spec.to_json() for s in predictor.samples}
    train = [s for s in train if s.to_json() not in done]
    held = [s for s in held if s.to_json() not in done]
    firsts = [Sample(spec, "holdout", []) for spec in held]
    seconds = [s for s in predictor.samples if s.role == "holdout" and len(s.latency_ms) < 2]
    steps = _schedule(train, firsts, seconds + firsts)
    for step, (kind, item) in enumerate(steps, 1):
        if kind == "train":
            predictor.samples.append(measure_sample(item, target))
        else:  # a held-out spec's first or second measurement
            if not item.latency_ms:
                predictor.samples.append(item)
            item.latency_ms.append(whole_latency(item.spec, target))
        write(predictor, path)
        if progress is not None:
            progress(step, len(steps))
    predictor.fit(seed)
    predictor.report = evaluate(predictor, seed)
    write(predictor, path)
    return predictor


def _schedule(
    train: list[ArchSpec], firsts: list[Sample], seconds: list[Sample]
) -> list[tuple[str, Any]]:
    """The order of measurement: held-out first passes spread over the first half of the
    training specs, second passes over the second half. A machine whose speed drifts during the
    run then moves the training data, the first and the second passes alike, and the report
    compares like with like."""
    half = len(train) // 2
    steps: list[tuple[str, Any]] = []
    for specs, held in ((train[:half], firsts), (train[half:], seconds)):
        # each list evenly over [0, 1); at the same place a held-out item goes first
        placed: list[tuple[float, int, tuple[str, Any]]] = [
            (i / len(specs), 1, ("train", spec)) for i, spec in enumerate(specs)
        ]
        placed += [(j / len(held), 0, ("holdout", h)) for j, h in enumerate(held)]
        steps += [step for *_, step in sorted(placed, key=lambda p: (p[0], p[1]))]
    return steps


def _draw(space: SearchSpace, seed: int, n: int, drawn: set[str]) -> list[ArchSpec]:
    """``n`` distinct specs of the space from seeds ``seed`` on, none already ``drawn`` (fewer
    if a small space runs out: at most ``20·n`` draws); adds them to ``drawn``."""
    out: list[ArchSpec] = []
    for i in range(20 * n):
        if len(out) == n:
            break
        spec = space.sample_random(seed + i)
        key = spec.to_json()
        if key not in drawn:
            drawn.add(key)
            out.append(spec)
    return out


def _errors(predicted: list[float], measured: list[float]) -> dict[str, float]:
    from scipy.stats import spearmanr

    errors = [abs(p - m) / m for p, m in zip(predicted, measured, strict=True)]
    rho = float(spearmanr(predicted, measured)[0]) if len(set(measured)) > 1 else float("nan")
    return {
        "within_10pct": sum(e <= 0.10 for e in errors) / len(errors),
        "median_error": statistics.median(errors),
        "max_error": max(errors),
        "spearman": rho,
        "median_ratio": statistics.median(p / m for p, m in zip(predicted, measured, strict=True)),
    }


def evaluate(predictor: LatencyPredictor, seed: int = 0) -> dict[str, Any] | None:
    """The held-out report: a model that never saw their parts, and the first pass, each against
    the second pass."""
    held = [s for s in predictor.samples if s.role == "holdout" and len(s.latency_ms) >= 2]
    train = [s for s in predictor.samples if s.role == "train"]
    if len(held) < 2:
        return None
    model = predictor.held_out_model(seed)
    later = [s.latency_ms[1] for s in held]
    return {
        "holdout_specs": len(held),
        "train_specs": len(train),
        "parts_profiled": len({k for s in train for k, _ in s.parts}),
        "median_latency_ms": statistics.median(later),
        "predictor": _errors([model.predict(s.spec) for s in held], later),
        "remeasured": _errors([s.latency_ms[0] for s in held], later),
    }


def report_table(report: dict[str, Any]) -> str:
    """The report as a small aligned table (what ``blocknas profile`` prints at the end)."""
    rows = [
        ("within ±10%", "{:.0%}", "within_10pct"),
        ("median error", "{:.1%}", "median_error"),
        ("worst error", "{:.1%}", "max_error"),
        ("Spearman", "{:.3f}", "spearman"),
        ("median ratio", "{:.3f}", "median_ratio"),
    ]
    head = (
        f"held-out specs: {report['holdout_specs']} (median {report['median_latency_ms']:.3f} ms)"
        f", none of their parts among the {report['parts_profiled']} parts of "
        f"{report['train_specs']} profiled specs; both columns against a second measurement"
    )
    lines = [head, f"{'':<14}{'predicted':>12}{'re-measured':>14}"]
    for label, fmt, key in rows:
        p, r = report["predictor"][key], report["remeasured"][key]
        lines.append(f"{label:<14}{fmt.format(p):>12}{fmt.format(r):>14}")
    noise = report["remeasured"]["median_error"]
    if noise > NOISY:
        lines.append(
            f"warning: the same networks measured twice differ by {noise:.1%} (median), more "
            f"than {NOISY:.0%}: this machine's clock cannot judge ±10%. Profile again on an "
            "idle machine (no other jobs, no shared cores) before budgeting on it"
        )
    return "\n".join(lines)
