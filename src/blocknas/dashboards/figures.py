"""Plotly figures, each drawn from what one function of :mod:`blocknas.dashboards.data` computed:
no numbers are worked out here. The dashboard and the report draw the same figures.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from blocknas.metrics import METRICS

#: how each kind of trial is drawn: colour, marker size and whether it is shown by default
STYLE: dict[str, dict[str, Any]] = {
    "front": {"color": "#d62728", "size": 11, "symbol": "diamond"},
    "dominated": {"color": "#1f77b4", "size": 7, "symbol": "circle"},
    "infeasible": {"color": "#9e9e9e", "size": 7, "symbol": "x"},
    "pruned": {"color": "#ff7f0e", "size": 6, "symbol": "circle-open"},
    "failed": {"color": "#000000", "size": 6, "symbol": "x-open"},
    "interrupted": {"color": "#8c564b", "size": 6, "symbol": "triangle-down-open"},
    "running": {"color": "#2ca02c", "size": 8, "symbol": "star"},
}
#: 3-D scatters know fewer marker symbols: these stand in
SYMBOLS_3D = {"star": "cross", "x-open": "x", "triangle-down-open": "diamond-open"}
#: a trace of more points than this is drawn with WebGL
GL_POINTS = 2_000


def label(metric: str) -> str:
    """An axis title: the metrics table's label and unit (``MACs``, ``latency (ms)``)."""
    if metric not in METRICS:
        return metric
    m = METRICS[metric]
    return f"{m.label} ({m.unit})" if m.unit and m.unit != m.label else m.label


def _log(metric: str) -> bool:
    """Costs span orders of magnitude: drawn on a log axis."""
    return metric in METRICS and METRICS[metric].direction == "minimize"


def _hover(points: pd.DataFrame) -> list[str]:
    """Each point's hover text: the trial, its architecture, what it measured and, when it did
    not end on the front, why (column by column: tens of thousands of points in milliseconds)."""
    partial = points["partial"].map({True: ", at its last epoch", False: ""})
    text = "trial " + points["number"].astype(str) + " (" + points["kind"] + partial + ")"
    arch = points["arch"].fillna("").astype(str) if "arch" in points else ""
    text = text + "<br>" + arch
    for name in ("accuracy", "test_accuracy", "macs", "params", "latency_ms"):
        if name in points:
            m = METRICS[name]
            shown = points[name].map(
                lambda v, m=m: "" if pd.isna(v) else f"<br>{m.label}: {m.show(v)}"
            )
            text = text + shown
    if "reason" in points:
        why = points["kind"].isin(["infeasible", "pruned", "failed"]) & points["reason"].map(
            lambda r: isinstance(r, str)
        )
        text = text + ("<br>" + points["reason"].astype(str)).where(why, "")
    return text.tolist()


def front_figure(
    points: pd.DataFrame,
    axes: tuple[str, ...],
    budgets: Mapping[str, float] | None = None,
    *,
    title: str = "",
) -> go.Figure:
    """A scatter of :func:`~blocknas.dashboards.data.front_points` (2-D, or 3-D with three
    axes), one trace per kind of trial; the front joined as a step line; budgets as lines."""
    fig = go.Figure()
    three = len(axes) == 3
    for kind, style in STYLE.items():
        pts = points[points.kind == kind]
        if pts.empty:
            continue
        symbol = SYMBOLS_3D.get(style["symbol"], style["symbol"]) if three else style["symbol"]
        marker = {"color": style["color"], "size": style["size"], "symbol": symbol}
        if (
            "color" in pts
            and kind in ("front", "dominated")
            and pd.api.types.is_numeric_dtype(pts["color"])
        ):
            marker |= {"color": pts["color"], "colorscale": "Viridis", "showscale": kind == "front"}
        common = {
            "name": kind,
            "mode": "markers",
            "marker": marker,
            "customdata": pts["number"].tolist(),  # plain numbers: a click reads them
            "hovertext": _hover(pts),
            "hoverinfo": "text",
        }
        if three:
            fig.add_trace(go.Scatter3d(x=pts.x, y=pts.y, z=pts.z, **common))
        elif len(pts) > GL_POINTS:  # WebGL: thousands of points stay fast to draw and zoom
            fig.add_trace(go.Scattergl(x=pts.x, y=pts.y, **common))
        else:
            fig.add_trace(go.Scatter(x=pts.x, y=pts.y, **common))
    if not three:
        front = points[points.kind == "front"].sort_values("x")
        line = {"color": STYLE["front"]["color"], "width": 1, "shape": "hv"}
        fig.add_trace(  # no hover: a click or hover on a front point must reach the point
            go.Scatter(
                x=front.x, y=front.y, mode="lines", line=line, name="front line", hoverinfo="skip"
            )
        )
        for metric, limit in (budgets or {}).items():
            if metric == axes[0]:
                fig.add_vline(x=limit, line_dash="dash", annotation_text=f"budget {limit:.3g}")
            elif metric == axes[1]:
                fig.add_hline(y=limit, line_dash="dash", annotation_text=f"budget {limit:.3g}")
        fig.update_xaxes(title=label(axes[0]), type="log" if _log(axes[0]) else "linear")
        fig.update_yaxes(title=label(axes[1]), type="log" if _log(axes[1]) else "linear")
    else:
        titles = {f"{a}axis_title": label(m) for a, m in zip("xyz", axes, strict=True)}
        fig.update_layout(scene=titles)
    fig.update_layout(title=title, legend_title_text="trials", margin={"t": 40})
    return fig


def hypervolume_figure(curves: pd.DataFrame, by: str = "trials") -> go.Figure:
    """Hypervolume against trials (or ``epochs_spent``), one line per study."""
    fig = go.Figure()
    studies = curves["study"].unique() if "study" in curves else [None]
    for study in studies:
        c = curves if study is None else curves[curves.study == study]
        fig.add_trace(
            go.Scatter(x=c[by], y=c.hypervolume, mode="lines", line_shape="hv", name=study)
        )
    fig.update_xaxes(title=by.replace("_", " "))
    fig.update_yaxes(title="normalised hypervolume", range=[0, 1])
    return fig.update_layout(title="convergence", margin={"t": 40})


def compare_figure(fronts: pd.DataFrame, x: str = "macs", y: str = "accuracy") -> go.Figure:
    """The fronts of several studies overlaid (rows of :func:`pareto_front` with ``study``)."""
    fig = go.Figure()
    for study, front in fronts.groupby("study", sort=False):
        front = front.sort_values(x)
        fig.add_trace(
            go.Scatter(
                x=front[x],
                y=front[y],
                mode="lines+markers",
                line_shape="hv",
                name=str(study),
                customdata=front["number"].tolist(),
                hovertext=front["arch"],
                hoverinfo="text+x+y",
            )
        )
    fig.update_xaxes(title=label(x), type="log" if _log(x) else "linear")
    return fig.update_yaxes(title=label(y)).update_layout(title="fronts", margin={"t": 40})


def effects_figure(effects: pd.DataFrame, choice: str) -> go.Figure:
    """Mean and best accuracy per value of one searched choice, with trials per value."""
    e = effects[effects.choice == choice]
    fig = go.Figure()
    fig.add_trace(go.Bar(x=e.value, y=e.accuracy_mean, name="mean accuracy", text=e.trials))
    fig.add_trace(go.Scatter(x=e.value, y=e.accuracy_max, mode="markers", name="best accuracy"))
    fig.update_traces(texttemplate="%{text} trials", selector={"type": "bar"})
    if len(e):  # bars from just below the lowest mean: the differences are what matter
        fig.update_yaxes(range=[max(0.0, float(e.accuracy_mean.min()) - 0.05), 1.0])
    return fig.update_layout(title=choice, yaxis_title="accuracy", margin={"t": 40})


def layers_figure(layers: pd.DataFrame) -> go.Figure:
    """The architecture as a row of boxes, stem to head, one per part: what it is, the feature
    map after it; bar heights are its share of MACs."""
    names = [w.replace(" ", "<br>", 1) for w in layers.what]
    x = [f"{i}: {p}" for i, p in enumerate(layers.part)]
    fig = go.Figure(
        go.Bar(
            x=x,
            y=layers.macs_share,
            text=names,
            textposition="inside",
            customdata=layers.output,
            hovertemplate="%{text}<br>out %{customdata}<br>%{y:.1%} of MACs<extra></extra>",
        )
    )
    ticks = [f"{p}<br>{o}" for p, o in zip(layers.part, layers.output, strict=True)]
    fig.update_xaxes(ticktext=ticks, tickvals=x)
    return fig.update_layout(title="layers: share of MACs", yaxis_tickformat=".0%")


def curve_figure(curve: Mapping[str, Any]) -> go.Figure:
    """A trial's validation accuracy per epoch, and where early stopping ended it."""
    fig = go.Figure(go.Scatter(x=curve["epoch"], y=curve["accuracy"], mode="lines+markers"))
    if curve.get("stopped_at"):
        fig.add_vline(x=curve["stopped_at"], line_dash="dot", annotation_text="stopped")
    planned = curve.get("planned")
    fig.update_xaxes(title="epoch", range=[0.5, (planned or len(curve["epoch"]) or 1) + 0.5])
    return fig.update_layout(title="learning curve", yaxis_title="validation accuracy")
