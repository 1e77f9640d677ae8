"""The dashboard's Dash app: its layout, callbacks and access control (pages: :mod:`.app`)."""

from __future__ import annotations

import hmac
import os
from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import parse_qs

from blocknas.dashboards import data, figures
from blocknas.dashboards.app import (
    LOOPBACK,
    TOKEN_ENV,
    Studies,
    check_host,
    discover,
    importance_table,
    page_link,
    render,
    require_dash,
)

COOKIE = "blocknas_token"
#: pages drawn again at every refresh (the front page redraws only its figure)
LIVE_PAGES = ("/", "/compare")


def _guard(server: Any, token: str) -> None:
    """Every request carries the token (header, cookie, or ``?token=`` which sets the cookie);
    any other gets 401."""
    from flask import Response, request

    def same(given: str | None) -> bool:
        return hmac.compare_digest((given or "").encode(), token.encode())

    def allowed() -> bool:
        given = request.headers.get("Authorization", "").removeprefix("Bearer ")
        return same(given or request.cookies.get(COOKIE) or request.args.get("token"))

    @server.before_request
    def check() -> Any:
        if not allowed():
            return Response("401: a token is required\n", 401, {"WWW-Authenticate": "Bearer"})
        return None

    @server.after_request
    def remember(response: Any) -> Any:
        if same(request.args.get("token")):  # never for a wrong one: its answer is a 401
            response.set_cookie(COOKIE, token, httponly=True, samesite="Strict")
        return response


def tick_only(triggered: Iterable[str]) -> bool:
    """Whether the refresh tick alone triggered a call (``triggered``: Dash's
    ``ctx.triggered_prop_ids``). Dash sends a tick and a user's change that arrive together
    in one call, naming the tick first in ``triggered_id``; a check on that alone dropped the
    user's change (a slider moved during a refresh)."""
    return set(triggered) == {"tick.n_intervals"}


def _front_callback(app: Any, studies: Studies) -> None:
    dash = require_dash()
    Input, Output, State = dash.Input, dash.Output, dash.State

    @app.callback(
        Output("front-graph", "figure"),
        Output("front-size", "children"),
        Output("front-version", "data"),
        Input("x", "value"),
        Input("y", "value"),
        Input("z", "value"),
        Input("color", "value"),
        Input("show", "value"),
        Input({"budget": dash.ALL}, "value"),
        Input("tick", "n_intervals"),
        State({"budget": dash.ALL}, "id"),
        State({"budget": dash.ALL}, "max"),
        State("url", "search"),
        State("front-version", "data"),
    )
    def draw(
        x: str,
        y: str,
        z: str | None,
        color: str | None,
        show: list[str],
        limits: list[float],
        _tick: int,
        ids: list[dict[str, str]],
        tops: list[float],
        search: str,
        seen: int | None,
    ) -> Any:
        key = parse_qs(search.lstrip("?"))["study"][0]
        live = studies.live(key)
        df = live.frame()
        if tick_only(dash.ctx.triggered_prop_ids) and seen == live.version:
            raise dash.exceptions.PreventUpdate  # nothing new: the figure stays as it is
        # a slider left at its top (the search's budget) tightens nothing
        budgets = {
            i["budget"]: v
            for i, v, top in zip(ids, limits, tops, strict=True)
            if v is not None and v < top
        }
        points = data.front_points(df, x, y, z=z, color=color, budgets=budgets, front=live.front())
        hidden = {"dominated", "infeasible", "pruned", "failed", "interrupted"} - set(show or [])
        points, left_out = data.drawable(points[~points.kind.isin(hidden)])
        fig = figures.front_figure(points, (x, y, z) if z else (x, y), df.attrs["budgets"])
        fig.update_layout(uirevision=f"{key} {x} {y} {z}")  # a refresh keeps the user's zoom
        return fig, data.front_caption(points, left_out), live.version

    @app.callback(
        Output("url", "href"),
        Input("front-graph", "clickData"),
        State("url", "search"),
        prevent_initial_call=True,
    )
    def open_trial(click: dict[str, Any] | None, search: str) -> Any:
        trials = [p["customdata"] for p in (click or {}).get("points", []) if "customdata" in p]
        if not trials:
            return dash.no_update
        key = parse_qs(search.lstrip("?"))["study"][0]
        return page_link("trial", study=key, n=int(trials[0]))


def create_app(
    storages: Sequence[str] | None = None, *, token: str | None = None, refresh_s: float = 5.0
) -> Any:
    """The Dash app over ``storages`` (default: every ``study.db`` under ``runs/``); the studies
    table, the front and the comparison refresh every ``refresh_s`` seconds.

    Example::

        create_app(["sqlite:///runs/digits/study.db"]).run(host="127.0.0.1", port=8050)
    """
    dash = require_dash()
    dcc, html = dash.dcc, dash.html
    studies = Studies(discover(storages))
    studies.warm()  # the first page finds the studies read
    app = dash.Dash(__name__, title="blocknas", suppress_callback_exceptions=True)
    if token:
        _guard(app.server, token)
    nav = html.Nav([dcc.Link("studies", href="/")], style={"marginBottom": "1em"})
    tick = int(refresh_s * 1000)
    app.layout = html.Div(
        [
            dcc.Location(id="url"),
            nav,
            html.Div(id="page"),
            dcc.Store(id="shown"),  # the path and query the page shows
            dcc.Interval(id="tick", interval=tick),
        ],
        style={"fontFamily": "system-ui, sans-serif", "margin": "1em 2em"},
    )

    @app.callback(
        dash.Output("page", "children"),
        dash.Output("shown", "data"),
        dash.Input("url", "pathname"),
        dash.Input("url", "search"),
        dash.Input("tick", "n_intervals"),
        dash.State("shown", "data"),
    )
    def page(path: str, search: str, _tick: int, shown: str | None) -> Any:
        where = f"{path}{search}"
        if tick_only(dash.ctx.triggered_prop_ids) and path not in LIVE_PAGES and shown == where:
            # a page with controls refreshes its figure in place; but a tick during a slow
            # first render supersedes that render in the browser, so it must render too
            raise dash.exceptions.PreventUpdate
        return render(studies, path or "/", search or ""), where

    @app.callback(
        dash.Output("download", "data"),
        dash.Input("download-button", "n_clicks"),
        dash.State("spec-store", "data"),
        prevent_initial_call=True,
    )
    def download(_clicks: int, spec: dict[str, str]) -> Any:
        return {"content": spec["spec"], "filename": f"{spec['name']}.json"}

    @app.callback(dash.Output("importance-box", "children"), dash.Input("url", "search"))
    def importance(search: str) -> Any:
        return importance_table(studies, parse_qs(search.lstrip("?"))["study"][0])

    _front_callback(app, studies)
    return app


def serve(
    storages: Sequence[str] | None = None,
    host: str = LOOPBACK,
    port: int = 8050,
    token: str | None = None,
) -> None:
    """Run the dashboard until interrupted; refuses a non-loopback host without a token."""
    token = token or os.environ.get(TOKEN_ENV) or None
    check_host(host, token)
    app = create_app(storages, token=token)
    app.run(host=host, port=port, debug=False)
