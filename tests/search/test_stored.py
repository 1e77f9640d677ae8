"""The direct reader of a study's tables gives what Optuna's own API gives, on studies the
searcher writes and on plain Optuna studies, and reads only new and unfinished trials again."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import optuna
import pandas as pd
import pytest

from blocknas.search.reading import StudyReader, load_results
from blocknas.search.stored import StoredTrial, TrialReader
from blocknas.search.study import storage_for
from blocknas.search.synthetic import synthetic_study

optuna.logging.set_verbosity(optuna.logging.WARNING)


def fields(t: StoredTrial | optuna.trial.FrozenTrial) -> tuple[Any, ...]:
    values = None if t.values is None else [("nan" if math.isnan(v) else v) for v in t.values]
    return (
        t.number,
        t.state,
        values,
        t.params,
        t.user_attrs,
        t.datetime_start,
        t.datetime_complete,
    )


def through_optuna(url: str, name: str) -> list[tuple[Any, ...]]:
    study = optuna.load_study(study_name=name, storage=url)
    return [fields(t) for t in sorted(study.get_trials(), key=lambda t: t.number)]


def plain_study(url: str) -> optuna.Study:
    """An Optuna study blocknas did not write: every distribution, infinite values, and trials
    in every state."""
    study = optuna.create_study(study_name="plain", storage=url, directions=["minimize"] * 2)
    for i in range(30):
        trial = study.ask()
        x = trial.suggest_float("x", 1e-3, 1.0, log=True)
        trial.suggest_int("n", 1, 64, step=3)
        trial.suggest_categorical("c", ["a", None, 3, 2.5, True])
        trial.set_user_attr("note", {"i": i, "list": [1, "two"]})
        if i % 7 == 3:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        elif i % 7 == 4:
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
        elif i % 7 != 5:  # left running
            study.tell(trial, [x if i % 5 else math.inf, -math.inf if i % 3 == 0 else i])
    study.enqueue_trial({"x": 0.5})  # waiting
    return study


def test_direct_read_equals_optuna(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'study.db'}"
    synthetic_study(url, "searched", 80, seed=3)
    plain_study(url)
    storage = storage_for(url, create=False)
    for name in ("searched", "plain"):
        reader = TrialReader(storage, name)
        assert reader.direct
        assert [fields(t) for t in reader.read()] == through_optuna(url, name)


def test_later_reads_fetch_only_new_and_unfinished(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'study.db'}"
    study = plain_study(url)
    reader = TrialReader(storage_for(url, create=False), "plain")
    first = reader.read()
    unfinished = [t.number for t in first if not t.state.is_finished()]
    assert reader.fetched == len(first) and unfinished
    reader.read()
    assert reader.fetched == len(unfinished)  # nothing new: only the unfinished again
    running = [t for t in study.get_trials() if t.state == optuna.trial.TrialState.RUNNING]
    study.tell(running[0].number, [0.1, 0.2])
    for _ in range(3):  # the first takes the waiting trial
        study.tell(study.ask(), [0.3, 0.4])
    again = reader.read()
    assert len(again) == len(first) + 2
    assert reader.fetched == len(unfinished) + 2
    assert [fields(t) for t in again] == through_optuna(url, "plain")


def test_other_storages_are_read_through_optuna(tmp_path: Path) -> None:
    journal = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(tmp_path / "journal.log"))
    )
    synthetic_study(journal, "searched", 30, seed=1)
    reader = TrialReader(journal, "searched")
    assert not reader.direct
    study = optuna.load_study(study_name="searched", storage=journal)
    assert [fields(t) for t in reader.read()] == [fields(t) for t in study.get_trials()]


def test_results_equal_by_both_readers(tmp_path: Path) -> None:
    """load_results from the storage (direct) and from a loaded study (Optuna's API)."""
    url = f"sqlite:///{tmp_path / 'study.db'}"
    synthetic_study(url, "searched", 80, seed=5)
    direct = load_results(url)
    via_api = load_results(optuna.load_study(study_name="searched", storage=url))
    pd.testing.assert_frame_equal(direct, via_api)
    assert direct.attrs == via_api.attrs


def test_study_reader_rebuilds_only_what_changed(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'study.db'}"
    study = plain_study(url)
    reader = StudyReader(url, "plain")
    df = reader.frame()
    assert reader.version == 1 and reader.changed == set(df.number)
    assert reader.frame() is df and reader.version == 1  # nothing changed: the same frame
    running = [t for t in study.get_trials() if t.state == optuna.trial.TrialState.RUNNING]
    study.tell(running[0].number, [0.1, 0.2])
    new = study.ask()
    study.tell(new, [0.3, 0.4])
    df2 = reader.frame()
    assert reader.version == 2 and reader.changed == {running[0].number, new.number}
    pd.testing.assert_frame_equal(df2, load_results(url, "plain"))


@pytest.mark.parametrize("bad", ["missing.db"])
def test_a_missing_file_is_one_line(tmp_path: Path, bad: str) -> None:
    with pytest.raises(ValueError, match="no study storage at"):
        StudyReader(f"sqlite:///{tmp_path / bad}")
