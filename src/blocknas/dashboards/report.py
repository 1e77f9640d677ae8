"""``blocknas report``: one self-contained HTML file of one or more studies, readable offline.

plotly.js is inlined once; nothing is fetched when the file is opened. Per study: the summary,
the front plot with its budget lines, the front table, the layers of every front architecture,
hypervolume against trials, what each searched choice gave, and the search config. With several
studies, their comparison on one reference point first.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from pathlib import Path

import optuna
import pandas as pd
import plotly.graph_objects as go

from blocknas.costmodel.summary import layer_table
from blocknas.dashboards import data, figures, trial
from blocknas.metrics import METRICS
from blocknas.search.results import load_results, pareto_front
from blocknas.search.study import storage_for

#: the columns of a front table (those measured)
FRONT_TABLE = ("number", "accuracy", "test_accuracy", "macs", "params", "latency_ms", "arch")
STYLE = """body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222}
table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:3px 7px}
th{background:#f3f3f3}pre{background:#f7f7f7;padding:1em;overflow-x:auto;font-size:12px}
details{margin:.5em 0}h2{border-bottom:2px solid #ddd;margin-top:2em}"""


class _Page:
    """The report's body, figure by figure; plotly.js goes in with the first figure only."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.plotly_in = False

    def text(self, tag: str, content: str, **attrs: str) -> None:
        extra = "".join(f' {k}="{html.escape(v)}"' for k, v in attrs.items())
        self.parts.append(f"<{tag}{extra}>{html.escape(content)}</{tag}>")

    def table(self, df: pd.DataFrame, **attrs: str) -> None:
        shown = df.copy()
        for col in shown.columns:
            if col in METRICS:
                shown[col] = [METRICS[col].show(v, table=True) for v in shown[col]]
        extra = "".join(f' {k}="{html.escape(v)}"' for k, v in attrs.items())
        self.parts.append(f"<div{extra}>{shown.to_html(index=False, na_rep='-')}</div>")

    def figure(self, fig: go.Figure, div_id: str) -> None:
        self.parts.append(
            fig.to_html(full_html=False, include_plotlyjs=not self.plotly_in, div_id=div_id)
        )
        self.plotly_in = True

    def html(self, title: str) -> str:
        head = f'<meta charset="utf-8"><title>{html.escape(title)}</title><style>{STYLE}</style>'
        return f"<!DOCTYPE html><html><head>{head}</head><body>{''.join(self.parts)}</body></html>"


def _config(storage: str, study: str) -> dict[str, object]:
    """The config the search recorded (objectives and budgets for older studies)."""
    loaded = optuna.load_study(study_name=study, storage=storage_for(storage, create=False))
    attrs = loaded.user_attrs
    return attrs.get("config") or {k: attrs.get(k) for k in ("objectives", "budgets")}


def _study_section(page: _Page, df: pd.DataFrame, storage: str) -> None:
    name = str(df.attrs["study"])
    objectives = [m for m, _ in df.attrs["objectives"]]
    costs = [m for m, d in df.attrs["objectives"] if d == "minimize"]
    page.text("h2", f"study {name}", id=f"study-{name}")
    page.table(data.studies_table([df]).round({"hypervolume": 4}), id=f"summary-{name}")
    axes = (costs[0] if costs else "macs", "accuracy")
    if len(objectives) == 3:
        axes3 = (costs[0], costs[1], "accuracy")
        points3, _ = data.drawable(data.front_points(df, *axes3[:2], z="accuracy"))
        page.figure(figures.front_figure(points3, axes3), f"front3d-{name}")
    points, left_out = data.drawable(data.front_points(df, *axes))
    page.figure(
        figures.front_figure(points, axes, df.attrs["budgets"], title=f"front of {name}"),
        f"front-{name}",
    )
    if left_out:
        page.text("p", data.front_caption(points, left_out))
    front = pareto_front(df)
    page.text("h3", f"the front: {len(front)} architectures")
    page.table(
        front[[c for c in FRONT_TABLE if c in front and front[c].notna().any()]],
        id=f"front-table-{name}",
    )
    for row in front.itertuples():
        page.parts.append(
            f"<details><summary>trial {row.number}: {html.escape(row.arch)}</summary>"
        )
        page.figure(figures.layers_figure(layer_table(row.spec)), f"layers-{name}-{row.number}")
        page.text("pre", trial.export_command(storage, name, int(row.number)))
        page.parts.append("</details>")
    page.figure(figures.hypervolume_figure(data.hypervolume_curve(df)), f"convergence-{name}")
    effects = data.choice_effects(df)
    page.text("h3", "what each searched choice gave (feasible complete trials)")
    for choice in ("block", "op"):
        if (effects.choice == choice).any():
            page.figure(figures.effects_figure(effects, choice), f"effects-{name}-{choice}")
    shown = effects.round({"accuracy_mean": 4, "accuracy_max": 4})
    shown["macs_median"] = [METRICS["macs"].show(v) for v in shown.macs_median]
    page.table(shown, id=f"insights-{name}")
    page.text("h3", "search config")
    page.text("pre", json.dumps(_config(storage, name), indent=2, default=str))


def write_report(storage: str, studies: Sequence[str] | None, out: str | Path) -> Path:
    """Write the report of ``studies`` in ``storage`` (all of them when none are named) to
    ``out``; returns its path.

    Example (after ``make demo``)::

        write_report("sqlite:///runs/digits/study.db", None, "report.html")
    """
    names = list(studies or [])
    if not names:
        names = sorted(optuna.get_all_study_names(storage_for(storage, create=False)))
    frames = [load_results(storage, n) for n in names]
    page = _Page()
    page.text("h1", "blocknas report: " + ", ".join(names))
    if len(frames) > 1:
        page.text("h2", "comparison", id="compare")
        cmp = data.compare(frames)
        page.table(cmp["table"], id="compare-table")
        costs = [m for m, d in frames[0].attrs["objectives"] if d == "minimize"]
        page.figure(
            figures.compare_figure(cmp["fronts"], x=costs[0] if costs else "macs"), "compare-fronts"
        )
        page.figure(figures.hypervolume_figure(cmp["curves"]), "compare-convergence")
    for df in frames:
        _study_section(page, df, storage)
    path = Path(out)
    if path.parent and not path.parent.exists():
        path.parent.mkdir(parents=True)
    path.write_text(page.html("blocknas report"), encoding="utf-8")
    return path
