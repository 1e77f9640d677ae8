"""Corrupt and hostile files, fed to the real ``blocknas`` commands that read them.

Each must end with one ``error: …`` line on stderr naming the file, exit status 2, no
traceback, and every file left as it was. Each command that reads such a file is run once,
concurrently (one module fixture: each start costs seconds of imports); every reader meets every
kind of damage in process, in ``tests/test_hostile_readers.py``.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import optuna
import pytest
import yaml

from blocknas.costmodel.predictor import LatencyPredictor, Target
from blocknas.costmodel.profiling import write
from blocknas.search.study import RECORD_ATTR, storage_for
from blocknas.search.synthetic import BUDGET
from tests.cli import blocknas_cli
from tests.hostile import (
    BOMB,
    ROOT,
    SPEC,
    checkpoint,
    garbled,
    garbled_head,
    plain_study,
    snapshot,
    truncated,
)

CONFIG = ROOT / "examples" / "digits.yaml"
DAMAGED = "truncated or corrupt"


@dataclass(frozen=True)
class Valid:
    """Valid files the cases damage copies of."""

    checkpoint: bytes
    predictor: bytes
    study: bytes  # a SQLite file of a synthetic study "s"


@dataclass(frozen=True)
class Case:
    bad: str  # the file the error must name, in the case's folder
    says: str  # and what it must say
    make: Callable[[Path, Valid], list[str]]  # writes the inputs, returns the arguments
    chatty: bool = False  # progress lines may come before the error


def _put(folder: Path, name: str, data: bytes | str) -> Path:
    path = folder / name
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def _export_study(folder: Path, checkpoint: Path) -> str:
    """A study whose last trial records ``checkpoint`` (as a search would), with a config."""
    study = plain_study(folder / "exp.db", "exp", 4, seed=1)
    study.set_user_attr("config", {"data": {"name": "digits"}, "train": {}})
    done = next(t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE)
    record = done.user_attrs[RECORD_ATTR] | {"checkpoint": str(checkpoint)}
    trial = optuna.trial.create_trial(
        params=done.params,
        distributions=done.distributions,
        values=done.values,
        constraints={"macs": record["macs"] - BUDGET},
        user_attrs={RECORD_ATTR: record},
    )
    study.add_trial(trial)
    return f"sqlite:///{folder / 'exp.db'}"


def _db(folder: Path, valid: Valid, damage: Callable[[bytes], bytes]) -> str:
    """``study.db`` damaged, beside an intact ``good.db`` holding the same study."""
    _put(folder, "good.db", valid.study)
    return f"sqlite:///{_put(folder, 'study.db', damage(valid.study))}"


def _resume(folder: Path, valid: Valid) -> list[str]:
    """``search --resume`` of a config whose study is in a damaged ``study.db``."""
    cfg = yaml.safe_load(CONFIG.read_text())
    cfg |= {"name": "s", "storage": _db(folder, valid, garbled_head), "results": str(folder)}
    return ["search", str(_put(folder, "search.yaml", yaml.safe_dump(cfg))), "--resume"]


CASES: dict[str, Case] = {
    "spec-bomb-check": Case(
        "bomb.yaml", "aliases are expanded; spec files are limited to 100,000",
        lambda d, v: ["check", str(_put(d, "bomb.yaml", BOMB))],
    ),
    "config-bomb-search": Case(
        "bomb.yaml", "aliases are expanded; search configs are limited to 100,000",
        lambda d, v: ["search", str(_put(d, "bomb.yaml", BOMB))],
    ),
    "predictor-truncated-cost": Case(
        "lat.json", DAMAGED,
        lambda d, v: [
            "cost", str(SPEC), "--table", str(_put(d, "lat.json", truncated(v.predictor)))
        ],
    ),
    "predictor-garbled-profile": Case(
        "lat.json", DAMAGED,
        lambda d, v: [
            "profile", str(CONFIG), "--samples", "1", "--holdout", "0",
            "-o", str(_put(d, "lat.json", garbled(v.predictor))),
        ],
    ),
    "checkpoint-truncated-train": Case(
        "small.pt", DAMAGED,
        lambda d, v: [
            "train", str(SPEC), "--data", "digits", "--epochs", "1", "--resume",
            "--checkpoint", str(_put(d, "small.pt", truncated(v.checkpoint))),
        ],
    ),
    "checkpoint-garbled-export": Case(
        "trial.pt", "CRC check fails",
        lambda d, v: [
            "export", "--storage", _export_study(d, _put(d, "trial.pt", garbled(v.checkpoint))),
            "--study", "exp", "--trial", "4", "--out", str(d / "package"),
        ],
        chatty=True,
    ),
    "db-truncated-report": Case(
        "study.db", DAMAGED,
        lambda d, v: ["report", "--storage", _db(d, v, truncated), "-o", str(d / "r.html")],
    ),
    "db-truncated-dashboard": Case(
        "study.db", DAMAGED, lambda d, v: ["dashboard", "--storage", _db(d, v, truncated)]
    ),
    "db-garbled-search-resume": Case("study.db", DAMAGED, lambda d, v: _resume(d, v)),
}  # fmt: skip


@dataclass
class Run:
    folder: Path
    before: dict[str, tuple[int, int, str]]
    proc: subprocess.CompletedProcess[str]


@pytest.fixture(scope="module")
def valid(tmp_path_factory: pytest.TempPathFactory) -> Valid:
    folder = tmp_path_factory.mktemp("valid")
    ckpt = checkpoint(folder / "ok.pt")
    write(LatencyPredictor(Target.here("cpu", 1, 1)), folder / "lat.json")
    plain_study(folder / "study.db", "s", 6, seed=2)
    return Valid(
        ckpt.read_bytes(), (folder / "lat.json").read_bytes(), (folder / "study.db").read_bytes()
    )


@pytest.fixture(scope="module")
def runs(valid: Valid, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Run]:
    """Every case's command, run concurrently, each in its own folder (its working directory)."""
    prepared = {}
    for name, case in CASES.items():
        folder = tmp_path_factory.mktemp(name)
        args = case.make(folder, valid)
        prepared[name] = (folder, args, snapshot(folder))

    def run(name: str) -> Run:
        folder, args, before = prepared[name]
        return Run(folder, before, blocknas_cli(*args, cwd=folder, timeout=120))

    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        return dict(zip(prepared, pool.map(run, prepared), strict=True))


@pytest.mark.parametrize("name", list(CASES))
def test_refused_in_one_line_and_nothing_changes(runs: dict[str, Run], name: str) -> None:
    run, case = runs[name], CASES[name]
    stderr = run.proc.stderr
    assert run.proc.returncode == 2, stderr
    assert "Traceback" not in stderr
    lines = stderr.strip().splitlines()
    errors = [line for line in lines if line.startswith("error: ")]
    assert errors == lines[-1:] and (case.chatty or len(lines) == 1), stderr
    assert case.bad in errors[0] and case.says in errors[0], stderr
    assert snapshot(run.folder) == run.before  # nothing written, nothing replaced
    if (run.folder / "good.db").exists():  # the study beside the damaged file still opens
        storage = storage_for(f"sqlite:///{run.folder / 'good.db'}", create=False)
        assert len(optuna.load_study(study_name="s", storage=storage).trials) >= 6
