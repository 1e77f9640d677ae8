"""The CLI: one-line errors with exit status 2, JSON output, the block self-test."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from blocknas.cli import app

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


def test_check_prints_json_for_every_example_spec() -> None:
    specs = sorted((ROOT / "examples" / "specs").glob("*.yaml"))
    assert specs
    for spec in specs:
        result = runner.invoke(app, ["check", str(spec), "--json"])
        assert result.exit_code == 0, result.output
        data = json.loads(result.output)
        assert data["output"] == [10]
        assert data["deploy_params"] <= data["params"]
        assert data["deploy_max_abs_diff"] < 1e-4


def test_bad_spec_is_one_line_on_stderr_with_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "version: 1\ninput: [1, 8, 8]\nnum_classes: 10\nstem: {out: 16}\n"
        "layers: [{block: bottleneck, out: 64, groups: 3}]\n"
    )
    # The real console script: no traceback reaches the user.
    proc = subprocess.run(
        [sys.executable, "-m", "blocknas.cli", "check", str(bad)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.strip().splitlines() == [
        "error: layers[0].groups: groups=3 must divide the op's input channels 16"
    ]


def test_missing_file_and_debug_flag(tmp_path: Path) -> None:
    result = runner.invoke(app, ["check", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 2
    assert "cannot read spec file" in result.output and "Traceback" not in result.output
    result = runner.invoke(app, ["--debug", "check", str(tmp_path / "nope.yaml")])
    assert result.exit_code != 0 and result.exception is not None


def test_blocks_verify_reports_every_combination() -> None:
    from blocknas.spaces import BLOCKS, OPS

    result = runner.invoke(app, ["blocks", "--verify"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("block "))
    rows = [line.split() for line in lines[header + 1 :]]
    assert len(rows) == len(BLOCKS) * len(OPS)
    statuses = {(r[0], r[1]): r[2] for r in rows}
    assert statuses[("inverted", "spconv")] == "forbidden"
    assert statuses[("bottleneck", "acb")] == "ok"
    assert set(statuses.values()) == {"ok", "forbidden"}


def test_every_command_has_an_example_in_help() -> None:
    for command in ("blocks", "check"):
        result = runner.invoke(app, [command, "--help"])
        assert result.exit_code == 0 and "Example: blocknas " in result.output
