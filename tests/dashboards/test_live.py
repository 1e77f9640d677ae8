"""The dashboard open while a real search runs: new trials appear without a reload, and the
search, writing the same SQLite file the dashboard polls, meets no lock error."""

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

from blocknas import load_results
from blocknas.dashboards.server import create_app
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


def test_a_running_search_shows_up_without_a_reload(
    tmp_path: Path, browser: Any, shots: Path
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
        server = make_server("127.0.0.1", 0, create_app([url], refresh_s=1).server)
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
