"""The report in chromium with every request that is not the file itself blocked."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from blocknas import load_results, pareto_front
from blocknas.dashboards.report import write_report


def test_the_report_shows_the_front_offline(
    studies: str, browser: Any, tmp_path: Path, shots: Path
) -> None:
    path = write_report(studies, ["alpha"], tmp_path / "alpha.html")
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    blocked: list[str] = []

    def only_the_file(route: Any) -> None:
        if route.request.url.startswith("file:"):
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    page.route("**/*", only_the_file)
    page.goto(path.as_uri())
    page.wait_for_selector("#front-alpha .scatterlayer .trace", timeout=30_000)
    shown = page.evaluate(
        """() => document.getElementById('front-alpha').data
              .filter(t => t.name === 'front').map(t => Array.from(t.customdata))"""
    )
    front = pareto_front(load_results(studies, "alpha"))
    assert len(shown) == 1 and sorted(shown[0]) == sorted(front.number)
    points = page.locator("#front-alpha .scatterlayer .trace").first.locator("path.point")
    assert points.count() >= 1
    page.locator("#front-alpha").screenshot(path=str(shots / "report_front.png"))
    assert blocked == []  # it asked for nothing beyond the file
    page.close()
