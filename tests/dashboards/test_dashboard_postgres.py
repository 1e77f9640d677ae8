"""The dashboard on a study in a real PostgreSQL server, in Debian's chromium: the studies row,
the front, a trial page whose export command keeps the password out."""

from __future__ import annotations

import threading
from typing import Any

from werkzeug.serving import make_server

from blocknas import load_results, pareto_front
from blocknas.dashboards import trial
from blocknas.dashboards.server import create_app
from blocknas.search.synthetic import synthetic_study
from tests.dashboards.test_dashboard import front_numbers
from tests.postgres import Server


def test_the_dashboard_reads_a_postgresql_study(postgres: Server, browser: Any) -> None:
    url = postgres.create_database("dash")
    synthetic_study(url, "pg", 40, seed=3)
    app = create_app([url])
    server = make_server("127.0.0.1", 0, app.server, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.goto(f"http://127.0.0.1:{server.server_port}/")
        page.wait_for_selector("#studies .study-row")
        assert page.locator("#studies .study-row").first.inner_text().startswith("pg")
        page.click("text=pg")
        df = load_results(url, "pg")
        assert front_numbers(page) == sorted(pareto_front(df).number)
        number = int(pareto_front(df).number.iloc[0])
        page.goto(f"http://127.0.0.1:{server.server_port}/trial?study=0:pg&n={number}")
        page.wait_for_selector("#export-command")
        command = page.inner_text("#export-command")
        assert command == trial.export_command(url, "pg", number)
        assert postgres.password not in page.content() and "${" in command
        page.close()
    finally:
        server.shutdown()
