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
        assert data["params"] <= data["train_params"]
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
    names = [c.name or (c.callback.__name__ if c.callback else "") for c in app.registered_commands]
    assert {"export", "report", "dashboard", "search"} <= set(names)
    for command in names:
        result = runner.invoke(app, [command, "--help"])
        assert result.exit_code == 0 and "Example: blocknas " in result.output


def test_cost_of_resnet50_preset_matches_the_reference() -> None:
    result = runner.invoke(
        app,
        ["cost", "--preset", "resnet50", "--input", "3,224,224", "--num-classes", "1000", "--json"],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["train_params"] == 25557032  # torchvision's count: the training form
    assert abs(data["macs"] / 4.089e9 - 1) <= 0.005  # BN folding adds no MACs
    assert set(data) == {"macs", "params", "train_macs", "train_params", "flops", "latency_ms"}
    assert data["train_params"] == data["params"] + 26560  # folding: BN γ, β → one conv bias
    assert data["latency_ms"] is None


def test_profile_then_cost_predicts_a_spec_never_profiled(tmp_path: Path) -> None:
    from blocknas import ArchSpec
    from blocknas.costmodel.features import entry, spec_parts
    from blocknas.costmodel.profiling import read

    spec = ROOT / "examples" / "specs" / "resnet20_acb.yaml"
    table = tmp_path / "t.json"
    space = tmp_path / "space.yaml"
    space.write_text(  # no ACB here: none of the ACB ResNet-20's blocks is profiled
        "input: [3, 32, 32]\nnum_classes: 10\nstem: {out: [8, 16]}\n"
        "stages:\n  - {depth: [1, 2], out: [8, 16]}\n  - {depth: [1, 2], out: 32, stride: 2}\n"
        "layer: {op: [conv, dwsep], block: [basic, plain]}\n"
    )
    prof = runner.invoke(
        app, ["profile", str(space), "--samples", "8", "--holdout", "2", "-o", str(table)]
    )
    assert prof.exit_code == 0, prof.output
    assert "8 profiled specs, on cpu: " in prof.output and "within ±10%" in prof.output
    timed = {key for s in read(table).samples for key, _ in s.parts}
    parts = spec_parts(ArchSpec.from_file(spec))
    assert len(parts) > 3 and not {entry(p, s) for p, s in parts[1:-1]} & timed
    result = runner.invoke(
        app,
        ["cost", str(spec), "--device", "cpu", "--threads", "1", "--table", str(table), "--json"],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["macs"] < data["train_macs"] and data["latency_ms"] > 0
    assert 0.1 < data["predicted_latency_ms"] / data["latency_ms"] < 10
    # another thread count or device: refused in one line, before anything is measured
    for flags, why in (
        (["--threads", "2"], "threads 1, not 2"),
        (["--batch", "4"], "batch 1, not 4"),
    ):
        other = runner.invoke(app, ["cost", str(spec), "--table", str(table), *flags])
        assert other.exit_code == 2 and why in other.output, other.output
        assert other.output.count("\n") == 1 and "blocknas profile" in other.output
    gpu = runner.invoke(app, ["cost", str(spec), "--table", str(table), "--device", "cuda"])
    assert gpu.exit_code == 2 and gpu.output.count("\n") == 1, gpu.output
    assert "'cuda'" in gpu.output


def test_profile_interrupted_by_ctrl_c_says_how_to_resume_and_resumes(tmp_path: Path) -> None:
    import signal
    import time

    from blocknas.costmodel.profiling import read

    space = tmp_path / "space.yaml"
    space.write_text(
        "input: [1, 8, 8]\nnum_classes: 10\nstem: {out: [8, 16]}\n"
        "stages:\n  - {depth: [1, 2], out: [8, 16, 24]}\n"
        "layer: {op: [conv, dwsep, acb], block: [basic, plain]}\n"
    )
    out = tmp_path / "lat.json"
    args = [sys.executable, "-m", "blocknas.cli", "profile", str(space)]
    args += ["--samples", "10", "--holdout", "2", "-o", str(out)]
    # as from a terminal: SIGINT handled by default (a process started from one that ignores
    # it, such as a test runner after some library set SIG_IGN, would inherit the ignoring)
    proc = subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (out.exists() and len(read(out).samples) >= 2):
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and err.strip().splitlines()[-1].startswith("error: interrupted")
    assert "run the same command to resume" in err
    kept = len(read(out).samples)
    assert 2 <= kept < 12 and read(out).model is None
    again = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert "10 profiled specs" in again.stdout and len(read(out).samples) == 12


def test_cost_input_errors_are_one_line() -> None:
    result = runner.invoke(app, ["cost", "--preset", "resnet50", "--input", "3x224"])
    assert result.exit_code == 2 and "--input='3x224' must be C,H,W" in result.output
    result = runner.invoke(app, ["cost", "--preset", "nope"])
    assert result.exit_code == 2 and "unknown preset 'nope'" in result.output
    result = runner.invoke(app, ["cost"])
    assert result.exit_code == 2 and "exactly one of SPEC_FILE or --preset" in result.output


def test_space_sample_prints_a_valid_spec() -> None:
    from blocknas import ArchSpec

    result = runner.invoke(
        app, ["space", "sample", str(ROOT / "examples" / "digits.yaml"), "--seed", "4"]
    )
    assert result.exit_code == 0, result.output
    spec = ArchSpec.from_json(result.output)
    assert spec.input == (1, 16, 16)
    again = runner.invoke(
        app, ["space", "sample", str(ROOT / "examples" / "digits.yaml"), "--seed", "4"]
    )
    assert again.output == result.output
