"""The dashboard open while a real search runs: new trials appear without a reload, and the
search, writing the same SQLite file the dashboard polls, meets no lock error. Then the finished
search's studies row, front and trial page, as the other dashboard tests check them on
synthetic studies."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import yaml
from werkzeug.serving import make_server

from blocknas import load_results, pareto_front
from blocknas.dashboards import data
from blocknas.dashboards.server import create_app
from blocknas.spaces import ArchSpec
from tests.dashboards.test_dashboard import compared, front_numbers, tighten_macs
from tests.search.test_search import config

TRIALS = 6


def _wait_for_study(url: str, proc: subprocess.Popen[bytes], seconds: float = 180) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        with contextlib.suppress(ValueError):
            load_results(url)  # read-only: refused until the search has created the study
            return
        time.sleep(0.5)
    raise AssertionError("the search never created its study")


def _done(page: Any) -> int:
    return int(page.locator("#studies .study-row").first.inner_text().split("\t")[2])


def _the_finished_search(page: Any, url: str, synthetic: str) -> None:
    """The real search's study: the right counts, exactly its front, exactly the front under a
    tighter MACs budget, a click on a front point opens that trial with one box per layer, and
    the comparison with a study of another storage (``synthetic``)."""
    df = load_results(url)
    expected = data.studies_table([df]).iloc[0]
    cells = page.locator("#studies .study-row").first.inner_text().split("\t")
    assert cells[2] == str(expected["done"])
    assert cells[4:8] == [str(expected[k]) for k in ("complete", "pruned", "infeasible", "failed")]
    page.click(f"text={df.attrs['study']}")
    front = sorted(pareto_front(df).number)
    assert front and front_numbers(page) == front
    tighten_macs(page, df)
    page.goto(page.url)  # the budget back at the search's
    assert front_numbers(page) == front
    point = page.locator("#front-graph .scatterlayer .trace").first.locator("path.point").first
    point.scroll_into_view_if_needed()
    where = point.bounding_box()
    page.mouse.click(where["x"] + where["width"] / 2, where["y"] + where["height"] / 2)
    page.wait_for_selector("#diagram .part")
    number = int(page.url.split("n=")[1])
    assert number in front
    spec = ArchSpec.from_json(df[df.number == number].spec.item())
    assert page.locator("#diagram .part.layers").count() == len(spec.layers)
    assert "blocknas export" in page.inner_text("#export-command")
    # compared with a study of another storage (the same objectives)
    other = load_results(synthetic, "alpha")
    page.goto(page.url.split("/trial")[0] + f"/compare?study=0:{df.attrs['study']}&study=1:alpha")
    compared(page, [df, other])


def test_a_running_search_shows_up_without_a_reload(
    tmp_path: Path, browser: Any, shots: Path, studies: str
) -> None:
    cfg = config(tmp_path, search={"trials": TRIALS, "concurrency": 2})
    path = tmp_path / "search.yaml"
    path.write_text(yaml.safe_dump(cfg))
    url = f"sqlite:///{tmp_path / 'runs' / 'tiny' / 'study.db'}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "blocknas.cli", "search", str(path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    server = None
    try:
        _wait_for_study(url, proc)
        server = make_server("127.0.0.1", 0, create_app([url, studies], refresh_s=1).server)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        page = browser.new_page()
        page.goto(f"http://127.0.0.1:{server.server_port}/")
        page.wait_for_selector("#studies .study-row")
        first = _done(page)
        page.evaluate("() => { window.sameDocument = true; }")  # gone if the page reloads
        page.wait_for_function(
            f"""() => document.querySelector('#studies .study-row').innerText
                       .split('\\t')[2] > {first}""",
            timeout=240_000,
        )
        assert page.evaluate("() => window.sameDocument === true")
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err.decode()
        assert "locked" not in err.decode().lower()
        page.wait_for_function(
            f"""() => document.querySelector('#studies .study-row').innerText
                       .split('\\t')[2] == '{TRIALS}'""",
            timeout=30_000,
        )
        assert page.evaluate("() => window.sameDocument === true")
        assert "finished" in page.locator("#studies .study-row").first.inner_text()
        page.screenshot(path=str(shots / "dashboard_live.png"))
        _the_finished_search(page, url, studies)
        page.close()
    finally:
        if server is not None:
            server.shutdown()
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # the search we started, and its Ray
            proc.wait()
    df = load_results(url)
    assert (df.state != "running").all() and df.launched.sum() == TRIALS
