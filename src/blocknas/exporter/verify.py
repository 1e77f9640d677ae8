"""The checks an export must pass, each returning its measured errors for ``metrics.json``.

- ``deploy_form``: the deploy form against the trained training form, eval mode, fp32, on the
  whole test split: max |Δ| ≤ 1e-4 × max |out|.
- one per format: the file run back against the deploy form on inputs of batch sizes 1, 3 and
  32 (and a random batch), |Δ| ≤ atol + rtol·|out| with rtol 1e-3 and atol 1e-5 (torchvision's
  ONNX test tolerance), and the same top-1 on every example of the test split.
- ``test_accuracy``: recomputed from the exported model, equal to the one recorded for the
  trial, up to the test examples whose two top logits lie within the precision the recorded
  value was computed at (a near-tie may fall either way; none in practice at fp32).

A failed check raises :class:`CheckFailed`, which names the check and the error.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import torch

from blocknas.exporter.formats import Runner
from blocknas.runners.data import DataSplits, batches

DEPLOY_RTOL = 1e-4  # of max |out|
FORMAT_RTOL, FORMAT_ATOL = 1e-3, 1e-5
BATCH_SIZES = (1, 3, 32)

Batches = list[tuple[torch.Tensor, torch.Tensor]]


class CheckFailed(ValueError):
    """An export check did not pass; the message names the check and the measured error."""

    def __init__(self, check: str, detail: str) -> None:
        super().__init__(f"export check {check!r} failed: {detail}")
        self.check = check


def test_batches(data: DataSplits, batch_size: int = 256) -> Batches:
    """The test split as normalised CPU batches, the way training evaluates it."""
    source = data.test
    return list(batches(source, batch_size=batch_size, mean=data.mean, std=data.std, device="cpu"))


def _run_all(run: Runner, split: Batches) -> torch.Tensor:
    return torch.cat([run(x) for x, _ in split])


def check_deploy(training: torch.nn.Module, deploy: Runner, split: Batches) -> dict[str, Any]:
    """The deploy form against the training form on the whole test split."""
    with torch.no_grad():
        want = _run_all(training.eval(), split)
    got = _run_all(deploy, split)
    error = float((got - want).abs().max())
    scale = float(want.abs().max())
    limit = DEPLOY_RTOL * scale
    result = {"max_abs_error": error, "max_abs_output": scale, "limit": limit}
    if not error <= limit:
        raise CheckFailed("deploy_form", f"max |Δ| {error:.3g} > 1e-4 × max |out| = {limit:.3g}")
    return result


def sample_inputs(split: Batches, seed: int = 0) -> list[torch.Tensor]:
    """Inputs of batch sizes 1, 3 and 32 cut from the test split, and a random batch of 2."""
    x = torch.cat([xb for xb, _ in split])
    inputs = [x[:n] for n in BATCH_SIZES if n <= len(x)]
    g = torch.Generator().manual_seed(seed)
    return [*inputs, torch.randn(2, *x.shape[1:], generator=g)]


def check_format(
    name: str, run: Runner, deploy: Runner, split: Batches, inputs: list[torch.Tensor]
) -> dict[str, Any]:
    """One exported format against the deploy form: closeness, then top-1 on the test split."""
    worst, max_abs = 0.0, 0.0
    for x in inputs:
        got, want = run(x), deploy(x)
        if got.shape != want.shape:
            raise CheckFailed(
                name, f"batch {len(x)}: output {list(got.shape)}, want {list(want.shape)}"
            )
        diff = (got - want).abs()
        max_abs = max(max_abs, float(diff.max()))
        worst = max(worst, float((diff / (FORMAT_ATOL + FORMAT_RTOL * want.abs())).max()))
    sizes = [len(x) for x in inputs]
    if not worst <= 1.0:
        raise CheckFailed(
            name,
            f"max |Δ| {max_abs:.3g} is {worst:.3g}× the tolerance (rtol {FORMAT_RTOL}, atol "
            f"{FORMAT_ATOL}) on batch sizes {sizes}",
        )
    top1 = _run_all(run, split).argmax(1)
    differ = int((top1 != _run_all(deploy, split).argmax(1)).sum())
    if differ:
        raise CheckFailed(name, f"top-1 differs from the deploy form on {differ} test examples")
    return {
        "max_abs_error": max_abs,
        "tolerance_used": worst,  # the largest |Δ| / (atol + rtol·|out|); ≤ 1 passes
        "rtol": FORMAT_RTOL,
        "atol": FORMAT_ATOL,
        "batch_sizes": sizes,
        "top1_differences": differ,
        "test_examples": len(top1),
    }


def check_test_accuracy(
    run: Runner, split: Batches, recorded: float, precision: float
) -> dict[str, Any]:
    """The test accuracy of the exported model against the one recorded for the trial."""
    logits = _run_all(run, split)
    labels = torch.cat([y for _, y in split])
    n = len(labels)
    correct = int((logits.argmax(1) == labels).sum())
    top2 = logits.topk(min(2, logits.shape[1]), dim=1).values
    margin = top2[:, 0] - top2[:, -1]
    near_ties = int((margin <= 2 * precision * float(logits.abs().max())).sum())
    want = round(recorded * n)
    result = {
        "recomputed": correct / n,
        "recorded": recorded,
        "test_examples": n,
        "difference_examples": abs(correct - want),
        "near_ties_allowed": near_ties,
    }
    if abs(correct - want) > near_ties:
        raise CheckFailed(
            "test_accuracy",
            f"recomputed {correct / n:.4f} ({correct}/{n}) but {recorded:.4f} was recorded for "
            f"the trial ({abs(correct - want)} examples apart, {near_ties} near-ties allowed)",
        )
    return result


def timed(check: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Run a check; its result with the seconds it took (exports of big networks are slow)."""
    t0 = time.perf_counter()
    result = check()
    return {**result, "seconds": round(time.perf_counter() - t0, 3)}
