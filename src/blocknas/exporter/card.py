"""``card.md``: the model card of an export package, written from what the export measured.

It says what the network is (a summary, a diagram and a table of its parts), what data it saw,
how well it does and what it costs, how it was searched and trained, what was verified, the
versions, its limitations, and how to load it with and without blocknas.
"""

from __future__ import annotations

import json
from typing import Any

from blocknas.costmodel.summary import layer_table
from blocknas.metrics import METRICS
from blocknas.spaces import ArchSpec


def _table(rows: list[tuple[str, str]], header: tuple[str, str] = ("", "")) -> str:
    lines = [f"| {header[0]} | {header[1]} |", "|---|---|"]
    return "\n".join(lines + [f"| {a} | {b} |" for a, b in rows])


def _diagram(parts: list[dict[str, Any]]) -> str:
    """A Mermaid flowchart, stem to head: each part in a few words and its output map."""
    nodes = [f'  p{i}["{p["part"]}: {p["what"]}<br/>{p["output"]}"]' for i, p in enumerate(parts)]
    edges = [f"  p{i} --> p{i + 1}" for i in range(len(parts) - 1)]
    return "\n".join(["```mermaid", "flowchart TD", *nodes, *edges, "```"])


def _architecture(spec: ArchSpec) -> str:
    parts = layer_table(spec).to_dict("records")
    rows = [
        f"| {p['part']} | {p['what']} | {p['output']} | {METRICS.show('macs', p['macs'])} | "
        f"{METRICS.show('params', p['params'])} |"
        for p in parts
    ]
    blocks = sorted({layer.block for layer in spec.layers})
    ops = sorted({layer.op for layer in spec.layers})
    summary = (
        f"{len(spec.layers)} layers on {'×'.join(map(str, spec.input))} inputs, "
        f"{spec.num_classes} classes; blocks: {', '.join(blocks)}; ops: {', '.join(ops)}; "
        f"{len(spec.adaptors.learned)} Shape Adaptor(s), frozen at their learned sizes."
    )
    table = "\n".join(["| part | what | output | macs | params |", "|---|---|---|---|---|", *rows])
    return f"{summary}\n\n{_diagram(parts)}\n\n{table}\n\nThe full spec is `spec.json`."


def _results(metrics: dict[str, Any]) -> str:
    names = ["accuracy", "test_accuracy", "macs", "flops", "params", "latency_ms"]
    rows = [
        (f"`{n}`", METRICS.show(n, metrics[n]) + f" ({METRICS[n].doc})")
        for n in names
        if metrics.get(n) is not None
    ]
    rows.append(("latency measured on", metrics["latency_device"]))
    rows.append(
        (
            "training form",
            f"{METRICS.show('train_macs', metrics['train_macs'])} macs, "
            f"{METRICS.show('train_params', metrics['train_params'])} params",
        )
    )
    return _table(rows, ("metric", "value"))


#: the training settings a reader of the card wants to see (all of them are in manifest.json)
TRAINING = (
    "epochs",
    "batch_size",
    "optimizer",
    "lr",
    "momentum",
    "weight_decay",
    "warmup_epochs",
    "label_smoothing",
    "augment",
    "amp",
    "seed",
)


def _settings(train: dict[str, Any]) -> str:
    return ", ".join(f"{k}={train[k]}" for k in TRAINING if k in train)


def _verification(checks: dict[str, dict[str, Any]]) -> str:
    rows = []
    for name, c in checks.items():
        if name == "test_accuracy":
            text = f"recomputed {c['recomputed']:.4f} = recorded {c['recorded']:.4f}"
        elif name == "deploy_form":
            text = f"max abs error {c['max_abs_error']:.2e} ≤ {c['limit']:.2e}"
        else:
            text = (
                f"max abs error {c['max_abs_error']:.2e} ({c['tolerance_used']:.2f} of the "
                f"tolerance), same top-1 on {c['test_examples']} test images"
            )
        rows.append((f"`{name}`", text))
    return _table(rows, ("check", "measured"))


def _loading(input_shape: list[int], prep: dict[str, Any]) -> str:
    c, h, w = input_shape
    return f"""Inputs are float32 batches of shape N×{c}×{h}×{w}, scaled to [0, 1] and normalised
per channel with mean {prep["mean"]} and std {prep["std"]}; the output is N×classes logits.

With blocknas (checksums verified, weights only):

```python
import blocknas, torch
model = blocknas.load_exported("path/to/package")
logits = model(torch.zeros(1, {c}, {h}, {w}))
```

Without blocknas (TorchScript, ONNX Runtime, or torch.export):

```python
import torch
model = torch.jit.load("model.ts")
logits = model(torch.zeros(1, {c}, {h}, {w}))

import numpy as np, onnxruntime as ort
session = ort.InferenceSession("model.onnx")
logits = session.run(None, {{"input": np.zeros((1, {c}, {h}, {w}), np.float32)}})[0]

program = torch.export.load("model.pt2").module()
```"""


LIMITATIONS = """- Measured on the study's own data: accuracy elsewhere is unknown.
- Latency was measured once, on the device named above, at export; other devices differ.
- The input size is fixed (Shape Adaptors are frozen for it); only the batch size may vary
  (1 to 4096 in `model.pt2` and `model.onnx`).
- A search trains each candidate briefly; unless the weights say "retrained", they come from
  that short training."""


def model_card(facts: dict[str, Any], spec: ArchSpec) -> str:
    """The card's markdown; ``facts`` holds the manifest's information, the metrics and the
    verification (see :func:`blocknas.exporter.run.export`)."""
    m, s = facts["metrics"], facts["source"]
    trained = (
        f"retrained from scratch for {s['epochs']} epochs"
        if s["weights"] == "retrained"
        else f"the trial's own weights after {facts['epochs']} epochs of search training"
    )
    search = facts["search"]
    sections = [
        f"# Model card: {facts['study']}, trial {facts['trial']}",
        f"Exported by blocknas {facts['versions']['blocknas']} on {facts['created']} "
        f"({search['how']}). Weights: {trained}.",
        "## Architecture\n\n" + _architecture(spec),
        f"## Data\n\nDataset `{facts['data']['name']}` at {'×'.join(map(str, spec.input))}; "
        f"validation split {facts['data']['val_fraction']} of the training data (seed "
        f"{facts['data']['split_seed']}), used for selection; the test split "
        f"({m['test_examples']} images) never was.",
        "## Results and costs\n\n" + _results(m),
        "## How it was searched and trained\n\n"
        + _table(
            [
                ("objectives", ", ".join(f"{n} ({d})" for n, d in search["objectives"])),
                ("budgets", json.dumps(search["budgets"]) if search["budgets"] else "none"),
                ("chosen by", search["how"]),
                ("training", _settings(facts["train"])),
            ]
        ),
        "## Verified at export\n\n" + _verification(facts["verification"]),
        "## Versions\n\n" + _table([(k, str(v)) for k, v in facts["versions"].items()]),
        "## Limitations\n\n" + LIMITATIONS,
        "## How to load it\n\n" + _loading(list(spec.input), facts["preprocessing"]),
    ]
    return "\n\n".join(sections) + "\n"
