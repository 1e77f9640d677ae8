"""The searcher when a search stops, and when a candidate cannot be built: the real searcher on a
real SQLite study, with Tune's side played by the test (see test_sampler_learning.Driver)."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest
from ray.tune.search import Searcher

from blocknas.search.results import Tally, failure_reasons, load_results, summary
from blocknas.search.study import finished_launched, record, recover_interrupted
from blocknas.search.text import accounting
from tests.search.test_results import PLANNED, make_study
from tests.search.test_results import record as write_trial
from tests.search.test_sampler_learning import Driver, _config, _costs


def test_a_stop_records_running_trials_as_interrupted_and_queues_them(tmp_path: Path) -> None:
    d = Driver(_config(tmp_path, "stops"), tmp_path)
    why: list[str] = []
    d.searcher.stopping = lambda: why[0] if why else None
    done, spec_done = d.next()
    d.complete(done, 0.9, spec_done)
    first, spec = d.next()
    d.next()  # a second one training
    why.append("SIGINT received")
    assert d.searcher.suggest("t99") == Searcher.FINISHED  # nothing new once stopping
    # Tune stops the first and reports its last epoch; the second never reports back
    d.searcher.on_trial_complete(first, {"epoch": 3, "accuracy": 0.5} | _costs(spec))
    assert d.searcher.interrupt_running() == 1
    df = load_results(f"sqlite:///{tmp_path / 'runs' / 'stops' / 'study.db'}", "stops")
    stopped = df[df.state == "interrupted"]
    assert len(stopped) == 2 and "failed" not in set(df.state)
    assert stopped.reason.str.startswith("interrupted: SIGINT received; retried as trial").all()
    assert stopped.epochs.tolist()[0] == 3  # what it trained is kept
    assert df.loc[df.state == "complete", "accuracy"].tolist() == [0.9]
    retries = d.study.get_trials(states=(optuna.trial.TrialState.WAITING,))
    assert sorted(r.user_attrs["retry_of"] for r in retries) == sorted(stopped.number)
    why.clear()  # as a resumed search: the retries come first, each from its checkpoint
    for n in sorted(stopped.number):
        launched = d.searcher.suggest(f"r{n}")
        assert isinstance(launched, dict)
        interrupted = record(d.study.trials[n])
        assert launched["checkpoint"] == interrupted["checkpoint"]
        assert json.loads(interrupted["spec"]) == launched["spec"]


def test_a_candidate_too_large_to_build_is_rejected_not_launched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    d = Driver(_config(tmp_path, "big", max_rejections=4), tmp_path)
    monkeypatch.setenv("BLOCKNAS_MAX_MEMORY_GB", "1e-6")  # about 1 kB: every candidate is over
    assert d.searcher.suggest("t1") == Searcher.FINISHED
    df = load_results(f"sqlite:///{tmp_path / 'runs' / 'big' / 'study.db'}", "big")
    assert len(df) == 4 and not df.launched.any() and (df.state == "infeasible").all()
    assert df.reason.str.startswith("too large to build: ").all()
    assert df.reason.str.contains("memory limit").all()
    assert d.searcher.rejected == 4 and "no candidate" in str(d.searcher.error)


def test_interrupted_trials_name_their_retry(tmp_path: Path) -> None:
    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'i.db'}")
    study = make_study(storage, "i")
    write_trial(study, "complete", 0.9, 1e6)  # 0
    write_trial(study, "running", 0.5, 1e6)  # 1: launched, left running by a killed driver
    t = study.ask()  # 2: asked, never launched
    t.suggest_int("s0.depth", 1, 2)
    assert recover_interrupted(study) == 2 and recover_interrupted(study) == 0
    write_trial(study, "complete", 0.8, 1e6)  # 3: the queued retry of 1
    assert study.get_trials()[3].user_attrs["retry_of"] == 1
    df = load_results(storage, "i")
    # interrupted, not failed: shown as such, and not counted as done, failed or planned
    assert list(df["state"]) == ["complete", "interrupted", "interrupted", "complete"]
    assert df.loc[1, "reason"] == "interrupted: the search driver stopped; retried as trial 3"
    assert df.loc[2, "reason"] == "interrupted: the search driver stopped"
    assert finished_launched(study) == 2  # the interrupted trial is counted once, in its retry
    s = summary(df)
    assert (s["done"], s["failed"], s["interrupted"]) == (2, 0, 2)
    assert s["epochs_planned"] == 2 * PLANNED
    assert failure_reasons(df) == []
    assert "2 interrupted and queued again" in accounting(s)
    assert Tally(study).update()["failed"] == 0 and Tally(study).update()["done"] == 2


def test_a_driver_taken_over_leaves_its_trials_to_the_new_one(tmp_path: Path) -> None:
    """A driver that lost its lease (suspended past the stale time, say) records nothing more:
    the driver that took over queued its running trials again, once."""
    d = Driver(_config(tmp_path, "over"), tmp_path)
    lost: list[bool] = []
    d.searcher.superseded = lambda: bool(lost)
    d.searcher.stopping = lambda: "another driver took study 'over' over" if lost else None
    first, spec = d.next()
    second, spec2 = d.next()
    assert recover_interrupted(d.study) == 2  # what the new driver does when it takes over
    queued = len(d.study.get_trials(states=(optuna.trial.TrialState.WAITING,)))
    lost.append(True)
    d.searcher.on_trial_complete(first, {"epoch": 2, "accuracy": 0.5} | _costs(spec))
    # a result that arrives before this driver's heartbeat noticed: the trial is finished
    lost.clear()
    d.searcher.on_trial_complete(second, {"final": True, "accuracy": 0.9} | _costs(spec2))
    trials = d.study.get_trials(deepcopy=False)
    assert len(d.study.get_trials(states=(optuna.trial.TrialState.WAITING,))) == queued == 2
    assert not d.searcher.running and not d.searcher.records
    df = load_results(f"sqlite:///{tmp_path / 'runs' / 'over' / 'study.db'}", "over")
    assert list(df.state[:2]) == ["interrupted", "interrupted"] and len(trials) == 4
