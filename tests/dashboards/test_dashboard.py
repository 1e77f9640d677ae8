"""``blocknas dashboard``: a real server on loopback, read by Debian's chromium and by plain
HTTP requests, over studies written the way the searcher writes them."""

from __future__ import annotations

import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner
from werkzeug.serving import make_server

from blocknas import load_results, pareto_front
from blocknas.cli import app as cli
from blocknas.dashboards import data, trial
from blocknas.dashboards.app import check_host
from blocknas.dashboards.server import create_app
from blocknas.search.reading import StudyReader
from blocknas.spaces import ArchSpec


@pytest.fixture(scope="module")
def serve(studies: str) -> Iterator[Any]:
    """Start the dashboard on a free loopback port; returns its base URL. Stopped at the end."""
    servers = []

    def start(token: str | None = None, refresh_s: float = 5.0) -> str:
        app = create_app([studies], token=token, refresh_s=refresh_s)
        server = make_server("127.0.0.1", 0, app.server, threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_port}"

    yield start
    for server in servers:
        server.shutdown()


def _status(url: str, headers: dict[str, str] | None = None) -> int:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {})) as r:
            return int(r.status)
    except urllib.error.HTTPError as e:
        return e.code


def test_only_loopback_goes_without_a_token() -> None:
    for host in ("127.0.0.1", "::1", "localhost"):
        check_host(host, None)
    check_host("0.0.0.0", "secret")
    with pytest.raises(ValueError, match=r"--host 0\.0\.0\.0 is reachable from other machines"):
        check_host("0.0.0.0", None)
    r = CliRunner().invoke(cli, ["dashboard", "--host", "10.1.2.3", "--port", "1"])
    assert r.exit_code == 2 and len(r.output.strip().splitlines()) == 1
    assert "pass --token or set BLOCKNAS_DASHBOARD_TOKEN" in r.output


def test_a_request_without_the_token_gets_401(serve: Any) -> None:
    base = serve(token="s3cret")
    assert _status(base + "/") == 401
    assert _status(base + "/_dash-layout") == 401
    assert _status(base + "/", {"Authorization": "Bearer wrong"}) == 401
    assert _status(base + "/", {"Authorization": "Bearer s3cret"}) == 200
    with urllib.request.urlopen(base + "/?token=s3cret") as r:  # sets the cookie for a browser
        assert r.status == 200 and "blocknas_token=s3cret" in r.headers["Set-Cookie"]
    with pytest.raises(urllib.error.HTTPError) as refused:  # a wrong one: 401, and no cookie
        urllib.request.urlopen(base + "/?token=guess")
    assert refused.value.code == 401 and "Set-Cookie" not in refused.value.headers


def _figure(page: Any, graph: str) -> list[dict[str, Any]]:
    page.wait_for_selector(f"#{graph} .scatterlayer .trace", timeout=30_000)
    return page.evaluate(
        f"""() => document.querySelector('#{graph} .js-plotly-plot').data
              .map(t => ({{name: t.name, ids: Array.from(t.customdata || [])}}))"""
    )


def front_numbers(page: Any) -> list[int]:
    return sorted(next(t["ids"] for t in _figure(page, "front-graph") if t["name"] == "front"))


def tighten_macs(page: Any, df: Any) -> None:
    """Move the MACs slider to the median MACs of the complete trials: exactly the front under
    that budget must remain."""
    limit = int(df[df.state == "complete"].macs.median())
    box = page.locator('[id=\'{"budget":"macs"}\'] input').first
    box.fill(str(limit))
    box.press("Tab")
    expected = sorted(pareto_front(df[(df.macs <= limit) | (df.state != "complete")]).number)
    shown = f"front: {len(expected)} trials ({', '.join(map(str, expected))})"
    page.wait_for_function(f"() => document.querySelector('#front-size').innerText == '{shown}'")
    assert expected and front_numbers(page) == expected


def compared(page: Any, frames: list[Any]) -> None:
    """The compare page shows the studies of ``frames``, each with its hypervolume on the
    common reference point."""
    page.wait_for_selector("#compare-table td")
    expected = data.compare(frames)["table"]
    shown = [r.split("\t") for r in page.locator("#compare-table tr").all_inner_texts()[1:]]
    assert [r[0] for r in shown] == [df.attrs["study"] for df in frames]
    for cells, hv in zip(shown, expected.hypervolume, strict=True):
        assert float(cells[3]) == pytest.approx(hv, abs=5e-5)
    names = [t["name"] for t in _figure(page, "compare-graph")]
    assert names == [df.attrs["study"] for df in frames]


def test_studies_front_slider_and_trial(
    studies: str, serve: Any, browser: Any, shots: Path
) -> None:
    db = Path(studies.removeprefix("sqlite:///"))
    before = db.read_bytes()
    base = serve()
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    page.goto(base + "/")
    page.wait_for_selector("#studies .study-row")
    table = data.studies_table([load_results(studies, n) for n in ("alpha", "beta")])
    rows = page.locator("#studies .study-row").all_inner_texts()
    assert len(rows) == 2
    for text, expected in zip(rows, table.to_dict("records"), strict=True):
        cells = text.split("\t")
        assert cells[0] == expected["study"] and cells[2] == str(expected["done"])
        assert cells[4:8] == [
            str(expected[k]) for k in ("complete", "pruned", "infeasible", "failed")
        ]
    page.screenshot(path=str(shots / "dashboard_studies.png"))

    df = load_results(studies, "alpha")
    page.click("text=alpha")
    assert front_numbers(page) == sorted(pareto_front(df).number)
    page.screenshot(path=str(shots / "dashboard_front.png"), full_page=True)

    tighten_macs(page, df)
    page.screenshot(path=str(shots / "dashboard_front_budget.png"), full_page=True)

    # a click on a front point opens its trial: one box per layer, and the export command
    point = page.locator("#front-graph .scatterlayer .trace").first.locator("path.point").first
    point.scroll_into_view_if_needed()
    where = point.bounding_box()  # a real click where it is drawn (plotly's layer takes it)
    page.mouse.click(where["x"] + where["width"] / 2, where["y"] + where["height"] / 2)
    page.wait_for_selector("#diagram .part")
    number = int(page.url.split("n=")[1])
    spec = ArchSpec.from_json(df[df.number == number].spec.item())
    assert page.locator("#diagram .part.layers").count() == len(spec.layers)
    assert page.inner_text("#export-command") == trial.export_command(studies, "alpha", number)
    page.screenshot(path=str(shots / "dashboard_trial.png"), full_page=True)
    page.close()
    assert db.read_bytes() == before  # read-only: not a byte of the study file changed


def test_a_first_read_slower_than_the_refresh_still_shows_the_page(
    serve: Any, browser: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A refresh that fires while a page is still being rendered (a large study read for the
    first time: 12 s at 100,000 trials) supersedes that render in the browser; the page must
    still appear. The first read of each study is slowed here to 1.5 s, refreshes every 0.5 s."""
    read = StudyReader.frame

    def slow_first_read(self: StudyReader) -> Any:
        if not getattr(self, "slowed", False):
            self.slowed = True
            time.sleep(1.5)
        return read(self)

    monkeypatch.setattr(StudyReader, "frame", slow_first_read)  # every caller waits for it
    base = serve(refresh_s=0.5)
    page = browser.new_page()
    page.goto(base + "/front?study=0:alpha")
    page.wait_for_function(
        "() => (document.querySelector('#front-size') || {}).textContent?.startsWith('front:')"
    )
    page.close()


def test_a_third_axis_draws_the_front_in_3d(
    studies: str, serve: Any, browser: Any, shots: Path
) -> None:
    base = serve()
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    page.goto(base + "/front?study=0:beta")
    page.wait_for_selector("#front-graph .scatterlayer .trace")
    page.click("#z")
    page.keyboard.type("params")
    page.keyboard.press("Enter")
    page.wait_for_selector("#front-graph .gl-container canvas", timeout=30_000)
    traces = page.evaluate(
        """() => document.querySelector('#front-graph .js-plotly-plot').data
              .map(t => ({name: t.name, type: t.type, ids: Array.from(t.customdata || [])}))"""
    )
    front = next(t for t in traces if t["name"] == "front")
    assert {t["type"] for t in traces} == {"scatter3d"}
    assert sorted(front["ids"]) == sorted(pareto_front(load_results(studies, "beta")).number)
    page.screenshot(path=str(shots / "dashboard_front_3d.png"), full_page=True)
    page.close()


def test_compare_shows_both_studies_with_their_hypervolumes(
    studies: str, serve: Any, browser: Any, shots: Path
) -> None:
    base = serve()
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    page.goto(base + "/")
    page.click("#compare")
    frames = [load_results(studies, n) for n in ("alpha", "beta")]
    compared(page, frames)
    page.screenshot(path=str(shots / "dashboard_compare.png"), full_page=True)

    # a study's insights: a figure per searched choice, and the importance table
    page.goto(base + "/front?study=0:alpha")
    page.click("#insights")
    page.wait_for_selector("#importance td")
    effects = data.choice_effects(frames[0])
    assert page.locator(".effects").count() == effects.choice.nunique()
    shown = page.locator("#importance tr").all_inner_texts()[1:]
    assert [r.split("\t")[0] for r in shown] == list(data.importance(frames[0]).param)
    page.screenshot(path=str(shots / "dashboard_insights.png"), full_page=True)
    page.close()
