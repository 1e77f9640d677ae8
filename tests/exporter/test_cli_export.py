"""``blocknas export`` refuses bad input with one line and exit 2, before any work."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from blocknas.cli import app
from tests.exporter.conftest import Study

runner = CliRunner()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--trial", "0", "--pick", "best"], "give --trial or --pick, not both"),
        (["--pick", "fastest"], "--pick='fastest' is not a pick; valid: best, smallest, knee"),
        (["--epochs", "0"], "--epochs=0 must be an integer ≥ 1"),
        (["--trial", "999"], "--trial 999: no such trial in the study"),
        (["--max-macs", "-5"], "budget macs=-5.0 must be a number > 0"),
        (["--max-macs", "1"], "has no complete feasible trial within macs ≤ 1"),
        (["--device", "tpu"], "device='tpu' is not supported; use one of cpu, cuda"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    study: Study, tmp_path: Path, extra: list[str], message: str
) -> None:
    out = tmp_path / "out"
    args = ["export", "--storage", study.url, "--study", study.name, "--out", str(out), *extra]
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines
    assert not out.exists()  # refused before anything was written


def test_unknown_study_and_storage(study: Study, tmp_path: Path) -> None:
    out = str(tmp_path / "out")
    result = runner.invoke(app, ["export", "--storage", study.url, "--study", "nope", "--out", out])
    assert result.exit_code == 2 and "no study 'nope' in" in result.output
    missing = f"sqlite:///{tmp_path}/none.db"
    result = runner.invoke(app, ["export", "--storage", missing, "--study", "x", "--out", out])
    assert result.exit_code == 2 and "no study storage at" in result.output


def test_out_that_is_a_file_is_refused(study: Study, tmp_path: Path) -> None:
    out = tmp_path / "file"
    out.write_text("keep me")
    result = runner.invoke(
        app, ["export", "--storage", study.url, "--study", study.name, "--out", str(out)]
    )
    assert result.exit_code == 2 and f"--out {out} is a file, not a folder" in result.output
    assert out.read_text() == "keep me"


def test_help_shows_an_example_and_the_picks() -> None:
    result = runner.invoke(app, ["export", "--help"])
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    assert "Example: blocknas export --storage" in text
    for word in ("best", "smallest", "knee", "--max-macs", "--max-latency-ms", "--force"):
        assert word in text
