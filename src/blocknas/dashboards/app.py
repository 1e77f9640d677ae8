"""``blocknas dashboard``: the web view of one or more storages' studies (Dash, read-only).

Pages: ``/`` the studies, ``/front?study=K`` a study's front with budget sliders,
``/trial?study=K&n=N`` one trial, ``/compare?study=K&study=K2`` several fronts. Every number
comes from :mod:`blocknas.dashboards.data`. The server binds 127.0.0.1 unless told otherwise;
any other host needs a token, which every request must carry (``Authorization: Bearer T``, or
``?token=T`` once, which sets a cookie).
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

import pandas as pd

from blocknas.costmodel.summary import layer_table
from blocknas.dashboards import data, figures, trial
from blocknas.dashboards.live import Studies
from blocknas.metrics import METRICS

LOOPBACK = "127.0.0.1"
TOKEN_ENV = "BLOCKNAS_DASHBOARD_TOKEN"


def require_dash() -> Any:
    try:
        import dash
    except ImportError:
        raise ValueError("the dashboard needs Dash: pip install 'blocknas[dashboard]'") from None
    return dash


def discover(storages: Sequence[str] | None, root: str | Path = "runs") -> list[str]:
    """The storages to show: those given, else every ``study.db`` under ``root``."""
    if storages:
        return list(storages)
    found = sorted(Path(root).glob("**/study.db"))
    if not found:
        raise ValueError(f"no --storage given and no study.db under {root}/; run a search first")
    return [f"sqlite:///{p}" for p in found]


def check_host(host: str, token: str | None) -> None:
    """Only loopback without a token: anything else must be authenticated."""
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback and not token:
        raise ValueError(
            f"--host {host} is reachable from other machines: pass --token or set {TOKEN_ENV}"
        )


def page_link(page: str, **query: Any) -> str:
    return f"/{page}?{urlencode(query, doseq=True)}"


def _studies_page(studies: Studies) -> Any:
    dash = require_dash()
    html = dash.html
    keys = studies.keys()
    table = data.studies_table([studies.frame(k) for k in keys])
    table = table.round({"hypervolume": 4, "best_accuracy": 4})
    table["last_update"] = table["last_update"].dt.strftime("%Y-%m-%d %H:%M:%S")
    head = html.Tr([html.Th(c) for c in table.columns])
    rows = [
        html.Tr(
            [html.Td(dash.dcc.Link(str(r["study"]), href=page_link("front", study=k)))]
            + [html.Td("-" if pd.isna(v) else str(v)) for c, v in r.items() if c != "study"],
            className="study-row",
        )
        for k, r in zip(keys, table.to_dict("records"), strict=True)
    ]
    page = [html.H2("studies"), html.Table([head, *rows], id="studies")]
    if len(keys) > 1:
        page.append(
            dash.dcc.Link("compare all", href=page_link("compare", study=keys), id="compare")
        )
    return html.Div(page)


def _front_controls(df: pd.DataFrame) -> list[Any]:
    dash = require_dash()
    dcc, html = dash.dcc, dash.html
    metrics = [m for m in data.HOVER if m in df and m != "number" and df[m].dtype == float]
    metrics = [m for m in metrics if df[m].notna().any()]
    costs = [m for m, d in df.attrs["objectives"] if d == "minimize"]
    third = costs[1] if len(costs) > 1 and costs[1] in metrics else None  # 3 objectives: 3-D
    sliders = []
    for metric in ("macs", "params", "latency_ms"):
        if metric not in df:
            continue
        values = df.loc[df.state == "complete", metric].dropna()
        if len(values):
            top = float(df.attrs["budgets"].get(metric, values.max()))
            slider = dcc.Slider(
                id={"budget": metric},
                min=float(values.min()),
                max=top,
                value=top,
                marks=None,
                tooltip={"always_visible": True},
            )
            sliders.append(html.Div([html.Label(f"{figures.label(metric)} at most"), slider]))
    colours = metrics + [c for c in ("block", "op") if any(k.endswith(c) for k in df)]
    return [
        dcc.Dropdown(metrics, costs[0] if costs else "macs", id="x", clearable=False),
        dcc.Dropdown(metrics, "accuracy", id="y", clearable=False),
        dcc.Dropdown(metrics, third, id="z", placeholder="third axis (3-D)"),
        dcc.Dropdown(colours, None, id="color", placeholder="colour by"),
        dcc.Checklist(
            ["dominated", "infeasible", "pruned"], ["dominated", "pruned"], id="show", inline=True
        ),
        *sliders,
    ]


def _front_page(studies: Studies, key: str) -> Any:
    dash = require_dash()
    html = dash.html
    df = studies.frame(key)
    return html.Div(
        [
            html.H2(f"front of {df.attrs['study']}"),
            dash.dcc.Link("insights", href=page_link("insights", study=key), id="insights"),
            html.Div(_front_controls(df), id="controls"),
            dash.dcc.Graph(id="front-graph", style={"height": "600px"}),
            html.Div(id="front-size"),
            dash.dcc.Store(id="front-version"),
        ]
    )


BOX = {
    "display": "inline-block",
    "border": "1px solid #888",
    "borderRadius": "6px",
    "padding": "6px 10px",
    "margin": "4px",
    "verticalAlign": "top",
    "fontSize": "13px",
}


def _part_box(part: dict[str, Any]) -> Any:
    """One part of the diagram: what it is, the feature map after it, its share of MACs."""
    html = require_dash().html
    lines = [html.B(part["part"]), html.Br(), part["what"], html.Br()]
    lines += [f"→ {part['output']}", html.Br(), f"{part['macs_share']:.0%} of MACs"]
    colour = {"layers": "#eef4ff", "adaptors": "#fff4e5"}.get(part["kind"], "#f3f3f3")
    return html.Div(lines, className=f"part {part['kind']}", style=BOX | {"background": colour})


def _measured(row: dict[str, Any]) -> str:
    """``accuracy 0.9612 · test accuracy 0.9580 · MACs 1.23M · …`` for what the trial measured."""
    names = ("accuracy", "test_accuracy", "macs", "params", "latency_ms", "epochs")
    shown = [
        f"{METRICS[m].label} {METRICS[m].show(row[m])}"
        for m in names[:-1]
        if m in row and pd.notna(row[m])
    ]
    shown.append(f"epochs {row['epochs']}/{row['epochs_planned']}")
    return " · ".join(shown + ([row["reason"]] if isinstance(row.get("reason"), str) else []))


def _trial_page(studies: Studies, key: str, number: int) -> Any:
    dash = require_dash()
    dcc, html = dash.dcc, dash.html
    df = studies.frame(key)
    rows = df[df.number == number]
    if rows.empty:
        raise ValueError(f"no trial {number} in {key}; trials 0-{len(df) - 1}")
    row = rows.iloc[0].to_dict()
    layers = layer_table(row["spec"])
    storage, name = studies.where(key)
    return html.Div(
        [
            html.H2(f"trial {number} of {name}: {row['state']}"),
            html.P(row["arch"]),
            html.P(_measured(row), id="measured"),
            html.Div([_part_box(r) for r in layers.to_dict("records")], id="diagram"),
            dcc.Graph(figure=figures.layers_figure(layers), id="layers-graph"),
            dcc.Graph(figure=figures.curve_figure(trial.learning_curve(row)), id="curve-graph"),
            html.Pre(trial.export_command(storage, name, number), id="export-command"),
            html.Details(
                [
                    html.Summary("the spec (JSON)"),
                    html.Pre(json.dumps(json.loads(row["spec"]), indent=1), id="spec"),
                ]
            ),
            html.Button("download spec", id="download-button"),
            dcc.Download(id="download"),
            dcc.Store(id="spec-store", data={"spec": row["spec"], "name": f"{name}-{number}"}),
        ]
    )


def _compare_page(studies: Studies, keys: list[str]) -> Any:
    dash = require_dash()
    html = dash.html
    out = data.compare([studies.frame(k) for k in keys])
    table = out["table"].round({"hypervolume": 4})
    head = html.Tr([html.Th(c) for c in table.columns])
    rows = [html.Tr([html.Td(str(v)) for v in r.values()]) for r in table.to_dict("records")]
    return html.Div(
        [
            html.H2("compare"),
            html.Table([head, *rows], id="compare-table"),
            dash.dcc.Graph(figure=figures.compare_figure(out["fronts"]), id="compare-graph"),
            dash.dcc.Graph(figure=figures.hypervolume_figure(out["curves"]), id="hv-graph"),
        ]
    )


def importance_table(studies: Studies, key: str) -> Any:
    """The importance table of the insights page (filled after the page: fANOVA takes
    seconds), computed once per version of the study."""
    html = require_dash().html
    ranked = studies.live(key).derived("importance", data.importance)
    head = html.Tr([html.Th("parameter"), html.Th("importance")])
    rows = [
        html.Tr([html.Td(r["param"]), html.Td(f"{r['importance']:.3f}")])
        for r in ranked.to_dict("records")
    ]
    used, of = ranked.attrs.get("trials", 0), ranked.attrs.get("of", 0)
    note = f"over {used:,} of {of:,} trials, an even sample" if used < of else ""
    return [html.Table([head, *rows], id="importance"), html.P(note)]


def _insights_page(studies: Studies, key: str) -> Any:
    dash = require_dash()
    dcc, html = dash.dcc, dash.html
    df = studies.frame(key)
    effects = data.choice_effects(df)
    graphs = [
        dcc.Graph(figure=figures.effects_figure(effects, c), id=f"effects-{c}", className="effects")
        for c in effects.choice.unique()
    ]
    return html.Div(
        [
            html.H2(f"insights: {df.attrs['study']}"),
            html.P(
                "Per value of each searched choice, over the feasible complete trials: mean and "
                "best accuracy, and how many trials use it."
            ),
            *graphs,
            html.H3("parameter importance for accuracy (fANOVA, choices every trial made)"),
            dcc.Loading(html.Div(id="importance-box")),
        ]
    )


def render(studies: Studies, path: str, search: str) -> Any:
    """The page at ``path`` with its query string (an unknown page: the studies)."""
    query = parse_qs((search or "").lstrip("?"))
    keys = query.get("study", [])
    try:
        if path == "/front" and keys:
            return _front_page(studies, keys[0])
        if path == "/trial" and keys and query.get("n"):
            return _trial_page(studies, keys[0], int(query["n"][0]))
        if path == "/insights" and keys:
            return _insights_page(studies, keys[0])
        if path == "/compare" and len(keys) > 1:
            return _compare_page(studies, keys)
        return _studies_page(studies)
    except ValueError as e:
        return require_dash().html.Div(str(e), className="error")
