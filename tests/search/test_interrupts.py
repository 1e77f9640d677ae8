"""Nothing lost: a second driver is refused, SIGINT and SIGTERM stop a search cleanly, and
``--resume`` continues it, with the real CLI, Ray and SQLite."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import optuna
import pandas as pd
import pytest
import sqlalchemy
import yaml

from blocknas.search.lease import Lease
from blocknas.search.results import load_results
from blocknas.search.signals import StopRequest, stop_signals
from blocknas.search.study import record, storage_for
from tests.search.test_search import config

RUNNING = optuna.trial.TrialState.RUNNING
COMPLETE = optuna.trial.TrialState.COMPLETE
#: the lines a search prints on stderr; anything else (Ray's hints, warnings) is a failure
OURS = ("trial ", "  done ", "search '", "warm start", "resuming", "stopped by ", "blocknas search")


def _write(tmp_path: Path, **search: Any) -> tuple[Path, str]:
    """A search whose trials train long enough (10 epochs, never stopped early) to be caught
    training."""
    search = {"concurrency": 2, "early_stopping": {"enabled": False}, **search}
    cfg = config(tmp_path, search=search, train={"epochs": 10})
    path = tmp_path / "search.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path, f"sqlite:///{tmp_path / 'runs' / 'tiny' / 'study.db'}"


@contextlib.contextmanager
def _driver(path: Path, *flags: str) -> Iterator[subprocess.Popen[str]]:
    """``blocknas search PATH FLAGS`` in its own session, as a terminal runs it; whatever is
    left of it is killed by its process group at the end."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "blocknas.cli", "search", str(path), *flags],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    try:
        yield proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _wait(proc: subprocess.Popen[str], what: str, ready: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"search ended before {what}: {proc.stderr.read()[-3000:]}")  # type: ignore[union-attr]
        with contextlib.suppress(ValueError, KeyError, sqlalchemy.exc.SQLAlchemyError):
            if ready():
                return
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def _trials(url: str) -> list[optuna.trial.FrozenTrial]:
    """The study's trials, read only (never racing the driver creating its tables)."""
    study = optuna.load_study(study_name="tiny", storage=storage_for(url, create=False))
    return study.get_trials(deepcopy=False)


def _training(url: str, complete: int) -> bool:
    """At least ``complete`` trials trained and one launched trial training now."""
    trials = _trials(url)
    done = sum(1 for t in trials if t.state == COMPLETE and record(t).get("launched"))
    return done >= complete and any(
        t.state == RUNNING and record(t).get("launched") for t in trials
    )


def _completed(url: str) -> dict[int, tuple[float, ...]]:
    return {
        t.number: tuple(t.values)
        for t in _trials(url)
        if t.state == COMPLETE and record(t).get("launched")
    }


def _trained_once(df: pd.DataFrame, before: dict[int, tuple[float, ...]], wanted: int) -> None:
    """Every trial completed before the stop kept as it was, exactly once; ``wanted`` trials
    trained in all; none failed."""
    for number, values in before.items():
        row = df[df.number == number]
        assert len(row) == 1 and row.state.iloc[0] == "complete"
        assert (float(row.accuracy.iloc[0]), float(row.macs.iloc[0])) == values[:2]
    assert df.number.is_unique and "failed" not in set(df.state)
    ended = df[df.launched & df.state.isin(["complete", "infeasible", "pruned"])]
    assert len(ended) == wanted, df[["number", "state", "reason"]]


def test_a_second_driver_is_refused_and_ctrl_c_stops_the_first_cleanly(tmp_path: Path) -> None:
    path, url = _write(tmp_path, trials=40)  # more than run before the stop
    with _driver(path, "--resume") as first:
        _wait(first, "a trained trial and one training", lambda: _training(url, 1))
        # a second terminal running the same command: refused, nothing touched
        second = subprocess.run(
            [sys.executable, "-m", "blocknas.cli", "search", str(path), "--resume"],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        holder = Lease(storage_for(url, create=False).engine, "tiny").holder()  # type: ignore[attr-defined]
        assert second.returncode == 2 and len(second.stderr.strip().splitlines()) == 1
        assert second.stderr.startswith("error: study 'tiny' is being searched by driver")
        assert holder is not None and f"pid {first.pid} " in second.stderr
        assert "Traceback" not in second.stderr and not second.stdout
        before = _completed(url)
        os.killpg(first.pid, signal.SIGINT)  # Ctrl-C: the whole foreground process group
        out, err = first.communicate(timeout=120)
    assert first.returncode == 130, err[-3000:]
    lines = err.strip().splitlines()
    assert lines[-1] == f"blocknas search {path} --resume"
    strangers = [line for line in lines if not line.startswith(OURS)]
    assert not strangers, strangers  # no Ray hint (Tuner.restore), warning or traceback
    assert (tmp_path / "runs" / "tiny" / "ray.log").is_file()
    assert "interrupted" in out  # the accounting line counts them
    stopped = load_results(url, "tiny")
    assert "failed" not in set(stopped.state) and "running" not in set(stopped.state)
    interrupted = stopped[stopped.state == "interrupted"]
    assert len(interrupted) >= 1 and interrupted.reason.str.contains("SIGINT").all()
    assert (stopped.state == "waiting").sum() == len(interrupted)  # each queued again
    ended = stopped.launched & stopped.state.isin(["complete", "infeasible", "pruned"])
    wanted = int(ended.sum()) + len(interrupted)  # the retries of the interrupted ones, no more

    resumed = subprocess.run(
        [sys.executable, "-m", "blocknas.cli", "search", str(path), "--resume", "--trials",
         str(wanted)],
        capture_output=True, text=True, timeout=300, start_new_session=True,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "UpdateFinishedTrialError" not in resumed.stderr + err
    df = load_results(url, "tiny")
    _trained_once(df, before, wanted)
    retried = df[df.number.isin(interrupted.number)].reason.str.extract(r"retried as trial (\d+)")
    assert retried[0].notna().all()  # each interrupted trial names its retry, which trained


def test_sigterm_is_a_clean_stop_with_exit_status_143() -> None:
    """A real SIGTERM to this process inside :func:`stop_signals`: recorded, not fatal; a
    second one stops at once; the previous handlers are back afterwards. (A whole search
    stopped by SIGTERM is ``blocknas jobs stop`` in test_cluster.)"""
    before = signal.getsignal(signal.SIGTERM)
    request = StopRequest()
    with stop_signals(request):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.05)  # delivered between two bytecodes
        assert request and request.name == "SIGTERM" and request.exit_code == 143
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)
    assert signal.getsignal(signal.SIGTERM) is before
