"""``blocknas report``: one self-contained HTML file with the studies' numbers."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from blocknas import load_results, pareto_front
from blocknas.cli import app
from blocknas.dashboards import trial
from blocknas.dashboards.report import write_report


@pytest.fixture(scope="module")
def report(studies: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_report(studies, None, tmp_path_factory.mktemp("report") / "r" / "report.html")


def test_the_report_holds_every_study_and_their_fronts(studies: str, report: Path) -> None:
    text = report.read_text()
    assert 'id="compare"' in text and 'id="compare-fronts"' in text
    for name in ("alpha", "beta"):
        df = load_results(studies, name)
        front = pareto_front(df)
        table = text.split(f'id="front-table-{name}"')[1].split("</table>")[0]
        rows = re.findall(r"<tr>\s*<td>(\d+)</td>", table)
        assert sorted(map(int, rows)) == sorted(front.number)
        for n in front.number:  # each front architecture: its layers and its export command
            assert f'id="layers-{name}-{n}"' in text
            cmd = trial.export_command(studies, name, int(n))
            assert cmd.replace('"', "&quot;").replace("'", "&#x27;") in text
        assert f'id="convergence-{name}"' in text and f'id="insights-{name}"' in text


def test_the_report_needs_nothing_from_the_network(report: Path) -> None:
    text = report.read_text()
    assert text.count("plotly.js v") == 1  # inlined once, not fetched
    assert not re.search(r'<(script|link|img)[^>]+(src|href)="(https?:)?//', text)


def test_cli_writes_the_report_and_refuses_bad_input(studies: str, tmp_path: Path) -> None:
    out = tmp_path / "beta.html"
    r = CliRunner().invoke(app, ["report", "--storage", studies, "--study", "beta", "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert "wrote" in r.output and out.stat().st_size > 1e6
    assert 'id="study-beta"' in out.read_text() and 'id="study-alpha"' not in out.read_text()
    r = CliRunner().invoke(app, ["report", "--storage", studies, "--study", "gamma", "-o", "x"])
    assert r.exit_code == 2 and "no study 'gamma'" in r.output and "alpha, beta" in r.output
    assert len(r.output.strip().splitlines()) == 1 and not Path("x").exists()
