"""The architecture as a table of parts, stem to head, with each part's share of the cost.

What the dashboard's trial page draws as a diagram and an export's model card lists.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from blocknas.costmodel.counting import breakdown
from blocknas.spaces import ArchSpec


def layer_table(spec: ArchSpec | str) -> pd.DataFrame:
    """The architecture as a diagram's rows, stem to head: each part's block, op, kernel,
    groups, α, attention and Shape Adaptor (its learned σ and size), in a few words (``what``),
    the feature map after it, and its share of the deploy MACs and params."""
    spec = ArchSpec.from_json(spec) if isinstance(spec, str) else spec
    learned = {a.layer: a for a in spec.adaptors.learned}
    parts = breakdown(spec)
    macs, params = sum(p.macs for p in parts) or 1, sum(p.params for p in parts) or 1
    rows = []
    for p in parts:
        row: dict[str, Any] = {"part": p.name, "kind": p.name.split(".")[0]}
        if p.name.startswith("layers."):
            layer = spec.layers[int(p.name.split(".")[1])]
            row |= layer.model_dump(include={"block", "op", "kernel", "groups", "stride"})
            row |= {"alpha": layer.alpha, "attention": layer.attention, "out": layer.out}
        elif p.name.startswith("adaptors."):
            a = learned.get(int(p.name.split(".")[1]))
            row |= {"sigma": a.sigma if a else None, "size": list(a.size) if a else None}
        row["what"] = _what(row)
        row |= {
            "output": "×".join(map(str, p.out_shape)),
            "macs": p.macs,
            "params": p.params,
            "macs_share": p.macs / macs,
            "params_share": p.params / params,
        }
        rows.append(row)
    return pd.DataFrame(rows)


def _what(row: Mapping[str, Any]) -> str:
    """A part in a few words: ``basic conv k3 g2 SE``, ``spconv k3 α0.5``, ``adaptor σ 0.42``."""
    if row["kind"] == "layers":
        words = [row["block"], row["op"], f"k{row['kernel']}"]
        words += [f"g{row['groups']}"] if row["groups"] != 1 else []
        words += [f"α{row['alpha']}"] if row["op"] == "spconv" else []
        words += ["SE"] if row["attention"] == "se" else []
        return " ".join(words) + (" ↓" if row["stride"] == 2 else "")
    if row["kind"] == "adaptors" and row.get("sigma"):
        return f"adaptor σ {row['sigma']:.2f}"
    return str(row["kind"]).removesuffix("s")
