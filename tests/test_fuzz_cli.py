"""Fuzzed command lines: every mutation of a valid ``blocknas`` command line ends with exit status
0, or 2 and one ``error:`` line on stderr; never a traceback. In process (CliRunner) for speed.

Only commands that succeed or fail fast are fuzzed: the long-running ones (search, train,
profile, export, report) are given files they must refuse before any work (a config with a bad
field, a spec over the memory limit, a study storage that does not exist), and their arguments
are only ever replaced by other such files. ``BLOCKNAS_MAX_MEMORY_GB`` is small, so that
``check`` never builds more than a small network.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import typer
import yaml
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from blocknas.cli import app
from tests.cli import blocknas_cli
from tests.fuzz import FUZZ

ROOT = Path(__file__).resolve().parents[1]
SMALL = ROOT / "examples" / "specs" / "digits_small.yaml"
ENV = {"BLOCKNAS_MAX_MEMORY_GB": "0.25"}
runner = CliRunner()
COMMAND = typer.main.get_command(app)  # built once: CliRunner.invoke rebuilds it (14 ms a call)


def invoke(argv: list[str], env: dict[str, str] = ENV) -> tuple[int, str, str]:
    """``blocknas ARGV`` in process: (exit status, stdout, stderr); any exception but the exit
    goes up as it is."""
    with runner.isolation(env=env) as (out, err, _):
        try:
            COMMAND.main(args=argv, prog_name="blocknas")
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else int(e.code is not None)
        else:
            code = 0
        return code, out.getvalue().decode(), err.getvalue().decode()


#: tokens any argument may become
TOKENS = ["0", "-1", "1", "2", "10", "1000000000", "1e9", "nan", "inf", "-inf", "1.5", "true"]
TOKENS += ["", " ", "x", "-", "--", "-h", "--bogus", "--json", "3,32,32", "3,0,32", "1,2", "a,b,c"]
#: commands that are quick whatever their arguments (never search, train, profile, dashboard…)
QUICK = ["check", "cost", "blocks", "space", "sample", "nosuch", "--help"]


def _write(folder: Path) -> dict[str, str]:
    """The files the command lines name: valid, invalid, too large, missing."""
    digits = yaml.safe_load((ROOT / "examples" / "digits.yaml").read_text())
    spec = yaml.safe_load(SMALL.read_text())
    wide_stage = {"depth": 1, "out": [16, 10**9], "stride": 2}
    contents: dict[str, Any] = {
        "wide.yaml": spec | {"layers": [*spec["layers"], {"block": "basic", "out": 10**9}]},
        "bad.yaml": spec | {"num_classes": True},
        "list.yaml": [1, 2],
        "empty.yaml": None,
        "space.yaml": digits["space"],
        "bad_config.yaml": digits | {"search": {"trials": True}},
        "no_data.yaml": digits | {"data": {"name": "imagenet"}},
        "wide_space.yaml": digits | {"space": digits["space"] | {"stages": [wide_stage]}},
    }
    files = {name: str(folder / name) for name in contents}
    for name, data in contents.items():
        Path(files[name]).write_text("" if data is None else yaml.safe_dump(data))
    files |= {"small.yaml": str(SMALL), "missing.yaml": str(folder / "missing.yaml")}
    (folder / "dir").mkdir()
    files["dir"] = str(folder / "dir")
    return files


def _lines(f: dict[str, str], out: str) -> dict[str, tuple[list[str], int, list[str]]]:
    """Command lines by name: (argv, how many leading words stay, what the others may become)."""
    # refused as a spec or a space (so profile never starts), and as a search config
    refused = [f[k] for k in ("wide.yaml", "bad.yaml", "list.yaml", "empty.yaml", "missing.yaml")]
    refused += [f["dir"], f["wide_space.yaml"]]
    configs = [*refused, f["bad_config.yaml"], f["no_data.yaml"]]  # whose space is fine
    specs = [f["small.yaml"], *refused]
    storages = [f"sqlite:///{f['dir']}/none.db", f"sqlite:///{f['missing.yaml']}"]
    storages += [f"sqlite:///{f['small.yaml']}", "sqlite://", ""]
    train = ["--data", "cifar10", "--data-dir", f["dir"], "--epochs", "1", "--batch-size", "8"]
    train += ["--lr", "0.1", "--device", "cpu", "--threads", "1", "--seed", "0", "-o", out]
    return {
        "check": (["check", f["small.yaml"], "--json"], 1, specs),
        "cost": (["cost", f["small.yaml"], "--json", "--input", "1,16,16"], 1, specs),
        "cost flags": (
            ["cost", f["small.yaml"], "--num-classes", "10", "--threads", "1", "--batch", "1"],
            1,
            [*specs, "--preset", "resnet20_cifar", "--table", "--device", "gpu", "tpu"],
        ),
        "preset": (["cost", "--preset", "resnet20_cifar", "--input", "3,32,32"], 1, specs),
        "sample": (["space", "sample", f["space.yaml"], "--seed", "3"], 2, specs),
        "search": (["search", f["bad_config.yaml"], "--trials", "2"], 1, configs),
        "train": (["train", f["wide.yaml"], *train], 1, [*configs, "mnist", "imagenet"]),
        "profile": (["profile", f["wide_space.yaml"], "--samples", "8", "-o", out], 1, refused),
        "export": (
            ["export", "--storage", storages[1], "--study", "x", "--out", out, "--trial", "1"],
            1,
            [*storages, "--pick", "knee", "best", "--epochs", "--max-macs", "--force"],
        ),
        "report": (["report", "--storage", storages[1], "-o", out], 1, storages),
        "blocks": (["blocks"], 0, QUICK),
    }


@st.composite
def command_lines(draw: st.DrawFn, files: dict[str, str], out: str) -> list[str]:
    """A command line of :func:`_lines` after 0 to 3 edits of its arguments."""
    lines = _lines(files, out)
    argv, fixed, pool = lines[draw(st.sampled_from(sorted(lines)))]
    argv = list(argv)
    rnd = draw(st.randoms(use_true_random=False))
    tokens = st.one_of(st.sampled_from(TOKENS), st.sampled_from(pool), st.text(max_size=8))
    for _ in range(draw(st.integers(0, 3))):
        edit = rnd.choice(["replace", "delete", "insert"] if len(argv) > fixed else ["insert"])
        at = rnd.randrange(fixed, len(argv) + (edit == "insert"))
        if edit == "delete":
            del argv[at]
        elif edit == "replace":
            argv[at] = draw(tokens)
        else:
            argv.insert(at, draw(tokens))
    return argv


def check_outcome(argv: list[str], exit_code: int, stdout: str, stderr: str) -> None:
    """Exit 0, or exit 2 with exactly one ``error:`` line on stderr; no traceback anywhere."""
    shown = f"{argv} → {exit_code}\nstdout: {stdout[-800:]}\nstderr: {stderr[-800:]}"
    assert "Traceback" not in stdout + stderr, shown
    assert exit_code in (0, 2), shown
    if exit_code == 2:
        lines = stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), shown


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return _write(tmp_path_factory.mktemp("fuzz_cli"))


def test_mutated_command_lines_end_in_one_line(
    files: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> None:
    out = str(tmp_path_factory.mktemp("out") / "out")

    @FUZZ
    @given(command_lines(files, out))
    def run(argv: list[str]) -> None:
        check_outcome(argv, *invoke(argv))

    run()


@pytest.mark.parametrize("command", ["check", "cost"])
def test_a_spec_too_large_to_build_is_refused_before_building(
    command: str, files: dict[str, str]
) -> None:
    proc = blocknas_cli(command, files["wide.yaml"], timeout=60)
    check_outcome([command], proc.returncode, proc.stdout, proc.stderr)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: layers[3]: out=1000000000 needs ")
    assert "over the memory limit of 16 GiB (set BLOCKNAS_MAX_MEMORY_GB" in proc.stderr


def test_the_memory_limit_is_set_from_the_environment(files: dict[str, str]) -> None:
    tiny = {"BLOCKNAS_MAX_MEMORY_GB": "1e-4"}
    code, _, err = invoke(["check", files["small.yaml"]], env=tiny)
    assert code == 2 and "over the memory limit of 105 KiB" in err
    code, _, err = invoke(["cost", files["small.yaml"]], env={"BLOCKNAS_MAX_MEMORY_GB": "x"})
    assert (code, err) == (
        2,
        "error: BLOCKNAS_MAX_MEMORY_GB='x' must be a number of GiB > 0, e.g. 16\n",
    )


@pytest.mark.parametrize("command", ["export", "report"])
def test_a_storage_that_is_no_url_is_one_line(command: str, tmp_path: Path) -> None:
    argv = [command, "--storage", "runs/study.db", "--study", "x", "--out", str(tmp_path / "o")]
    code, out, err = invoke(argv if command == "export" else argv[:3] + argv[5:])
    check_outcome(argv, code, out, err)
    assert code == 2 and "is not a database URL" in err, err


def test_usage_errors_are_one_line() -> None:
    for argv in (["check", "--bogus"], ["cost", "--num-classes", "abc"], ["nosuch"], ["check"]):
        code, out, err = invoke(argv)
        check_outcome(argv, code, out, err)
        assert code == 2 and err.endswith(" --help)\n") and "(see blocknas" in err, err
