"""Reading a search's study into one row per trial (:func:`load_results`), once or again and
again (:class:`StudyReader`, for the dashboard and reports of running searches).

The study is the one the Tune searcher writes (see :mod:`blocknas.search.searcher`): one trial
per candidate, launched or rejected over budget, with its metrics in its record, named as in
:data:`blocknas.metrics.METRICS`. A row has a column per metric; a metric that was not measured
is NaN, never 0. States: ``complete`` (trained, within budget), ``infeasible`` (complete but
over a budget, before or after training), ``pruned`` (stopped early), ``failed``, ``running``,
``waiting``. Trials come from :class:`~blocknas.search.stored.TrialReader`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import optuna
import pandas as pd

from blocknas.metrics import METRICS, RENAMED, number
from blocknas.search.stored import StoredTrial, TrialReader
from blocknas.search.study import interrupted, record, storage_for

TrialState = optuna.trial.TrialState
Trial = StoredTrial | optuna.trial.FrozenTrial
Source = str | Path | optuna.storages.BaseStorage | optuna.Study

#: the columns after the metric columns
RECORD = (
    *("epochs", "epochs_planned", "wall_seconds", "node", "reason", "arch", "spec"),
    *("checkpoint", "launched", "warm_start", "curve", "datetime_start", "datetime_complete"),
)
STATES = {TrialState.PRUNED: "pruned", TrialState.FAIL: "failed"}
STATES |= {TrialState.RUNNING: "running", TrialState.WAITING: "waiting"}
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
#: a v1 study's user attributes under their v2 names
LEGACY_ATTRS = {new: old for old, new in RENAMED.items()}


def _open(storage: Source, study: str | None) -> tuple[optuna.Study, TrialReader | None]:
    """The study, and a reader of its trials (None: a loaded study, read through Optuna)."""
    if isinstance(storage, optuna.Study):
        return storage, None
    where = str(storage)
    if isinstance(storage, Path):
        storage = f"sqlite:///{storage}"
    store = storage_for(storage, create=False) if isinstance(storage, str) else storage
    names = sorted(optuna.get_all_study_names(store))
    if study is None:
        if len(names) != 1:
            found = ", ".join(names) if names else "none"
            raise ValueError(f"{where} holds {len(names)} studies, pass one by name: {found}")
        study = names[0]
    elif study not in names:
        raise ValueError(
            f"no study {study!r} in {where}; studies: {', '.join(names) if names else 'none'}"
        )
    sampler = optuna.samplers.RandomSampler()  # never samples: avoids building NSGA-II
    return optuna.load_study(study_name=study, storage=store, sampler=sampler), TrialReader(
        store, study
    )


def objectives_of(study: optuna.Study) -> list[tuple[str, str]]:
    """(metric, direction) per study direction; names from the ``objectives`` user attr (a v1
    study's names read as their v2 ones)."""
    directions = [d.name.lower() for d in study.directions]
    recorded = study.user_attrs.get("objectives")
    names = [f"objective_{i}" for i in range(len(directions))]
    if isinstance(recorded, list) and len(recorded) == len(directions):
        for i, o in enumerate(recorded):
            metric = o.get("metric") if isinstance(o, dict) else o
            if isinstance(metric, str) and metric:
                names[i] = RENAMED.get(metric, metric)
    return list(zip(names, directions, strict=True))


def _state(trial: Trial, attrs: dict[str, Any]) -> tuple[str, bool]:
    """The row state and whether the trial is a feasible complete one (``attrs``: its record)."""
    if trial.state != TrialState.COMPLETE:
        return STATES.get(trial.state, trial.state.name.lower()), False
    if "feasible" in attrs:
        feasible = bool(attrs["feasible"])
    else:  # a study not written by the searcher: trust the constraints if any
        feasible = all(number(c) <= 0 for c in attrs.get("constraints", []))
    return ("complete" if feasible else "infeasible"), feasible


def _metrics(trial: Trial, objectives: list[str], attrs: dict[str, Any]) -> dict[str, Any]:
    """The trial's metrics from its record ``attrs``. Objective values come from
    ``trial.values`` only in studies blocknas did not write: the searcher tells samplers
    stand-ins for unmeasured values, and those must not show as measurements."""
    out = {m: attrs.get(m, attrs.get(LEGACY_ATTRS.get(m, m))) for m in METRICS.names()}
    written = "launched" in attrs or "feasible" in attrs
    if not written and trial.state == TrialState.COMPLETE and trial.values is not None:
        out |= dict(zip(objectives, trial.values, strict=True))
    return METRICS.complete(out)


def row(trial: Trial, objectives: list[str], retried: dict[int, int]) -> dict[str, Any]:
    """The trial's row (``retried``: see :func:`_retries`)."""
    attrs = record(trial)  # read once: the row's every field comes from it
    state, feasible = _state(trial, attrs)
    reason = attrs.get("reason")
    if trial.number in retried:  # stopped by a signal or a dead driver: not a failure
        state = "interrupted"
        reason = str(reason or "")
        if not reason.startswith("interrupted"):
            reason = "interrupted: the search driver stopped"
        if retried[trial.number] >= 0:
            reason += f"; retried as trial {retried[trial.number]}"
    out: dict[str, Any] = {"number": trial.number, "state": state, "feasible": feasible}
    out |= {k: number(v) for k, v in _metrics(trial, objectives, attrs).items()}
    out |= {
        "epochs": attrs.get("epochs"),
        "epochs_planned": attrs.get("epochs_planned"),
        "wall_seconds": number(attrs.get("wall_seconds")),
        "node": attrs.get("node"),
        "reason": reason,
        "arch": attrs.get("arch"),
        "spec": attrs.get("spec"),
        "checkpoint": attrs.get("checkpoint"),
        # absent only in studies the searcher did not write: guess from the state
        "launched": bool(
            attrs.get("launched", state in ("complete", "pruned", "failed", "running"))
        ),
        "warm_start": attrs.get("warm_start"),  # the seed spec's label (search.seed_specs)
        "curve": attrs.get("curve"),  # validation accuracy after each epoch trained
        "datetime_start": trial.datetime_start,
        "datetime_complete": trial.datetime_complete,
    }
    return out | {f"param.{k}": v for k, v in trial.params.items()}


def _retries(study: optuna.Study, trials: Sequence[Trial]) -> dict[int, int]:
    """Interrupted trial number → the number of its retry (-1: none, it was never launched)."""
    stopped = interrupted(study)
    if not stopped:
        return {}
    retries = {t.number: record(t).get("retry_of") for t in trials}
    retry_of = {int(first): n for n, first in retries.items() if first is not None}
    return {n: retry_of.get(n, -1) for n in stopped}


class StudyReader:
    """A study's :func:`load_results` frame, read again and again: a finished trial's row is
    built once, and each read fetches only new and unfinished trials (see
    :class:`~blocknas.search.stored.TrialReader`).

    ``version`` counts the frames that differed from the one before; ``changed`` holds the
    numbers of the trials whose rows the last new frame built or rebuilt.

    Example::

        reader = StudyReader("sqlite:///runs/digits/study.db")
        df = reader.frame()  # every trial
        df = reader.frame()  # later: the same frame object unless a trial changed
    """

    def __init__(self, storage: Source, study: str | None = None) -> None:
        self.study, self._trials = _open(storage, study)
        self._rows: dict[int, dict[str, Any]] = {}  # rows of finished trials, by number
        self._frame: pd.DataFrame | None = None
        self._last: dict[int, dict[str, Any]] = {}  # the rows of unfinished ones last time
        self.version = 0
        self.changed: set[int] = set()

    def _read(self) -> Sequence[Trial]:
        if self._trials is not None:
            return self._trials.read()
        return sorted(self.study.get_trials(deepcopy=False), key=lambda t: t.number)

    def frame(self) -> pd.DataFrame:
        """Every trial now, one row each (see :func:`load_results`)."""
        objectives = objectives_of(self.study)
        names = [m for m, _ in objectives]
        trials = self._read()
        retried = _retries(self.study, trials)
        rows, changed, unfinished = [], set(), {}
        for trial in trials:
            n = trial.number
            cached = self._rows.get(n)
            if cached is None or n in retried:
                cached = row(trial, names, retried)
                if trial.state in FINISHED:
                    self._rows[n] = cached
                else:
                    unfinished[n] = cached
                if self._last.get(n) != cached:
                    changed.add(n)
            rows.append(cached)
        if self._frame is None or changed or len(rows) != len(self._frame):
            self._frame = _frame(rows, names)
            self.version, self.changed = self.version + 1, changed
        self._last = unfinished
        self._frame.attrs |= _attrs(self.study, objectives)
        return self._frame


def _frame(rows: list[dict[str, Any]], names: list[str]) -> pd.DataFrame:
    """The rows as a frame with the columns and dtypes :func:`load_results` promises."""
    metrics = METRICS.names() + [m for m in names if m not in METRICS]
    params = list(dict.fromkeys(k for r in rows for k in r if k.startswith("param.")))
    columns = ["number", "state", "feasible", *metrics, *RECORD, *params]
    df = pd.DataFrame(rows, columns=columns)
    df["number"] = df["number"].astype("int64")
    df["state"] = df["state"].astype(object)
    for col in ("feasible", "launched"):
        df[col] = df[col].astype(bool)
    for col in (*metrics, "wall_seconds"):
        df[col] = pd.to_numeric(df[col], errors="coerce").astype("float64")
    for col in ("epochs", "epochs_planned"):
        df[col] = pd.to_numeric(df[col], errors="coerce").astype("Int64")
    for col in ("datetime_start", "datetime_complete"):
        df[col] = pd.to_datetime(df[col])
    return df


def _attrs(study: optuna.Study, objectives: list[tuple[str, str]]) -> dict[str, Any]:
    budgets = study.user_attrs.get("budgets") or {}
    planned = study.user_attrs.get("planned_trials")
    return {
        "objectives": objectives,
        "budgets": {k: float(v) for k, v in budgets.items() if isinstance(v, int | float)},
        "study": study.study_name,
        "planned_trials": int(planned) if isinstance(planned, int | float) else None,
    }


def load_results(storage: Source, study: str | None = None) -> pd.DataFrame:
    """One row per trial of a search's study, sorted by trial number (see the module docstring).

    ``storage`` is an Optuna storage URL, a storage, a SQLite file path, or a loaded study (then
    ``study`` is ignored); ``study`` may be left out when the storage holds exactly one.
    ``df.attrs`` holds ``objectives`` ([(metric, direction), ...]), ``budgets``, ``study`` and
    ``planned_trials`` (``search.trials`` of its last run; None for studies that lack it).

    After ``make demo``::

        df = load_results("sqlite:///runs/digits/study.db")
        df[df.state == "complete"][["accuracy", "macs", "latency_ms"]].describe()
    """
    return StudyReader(storage, study).frame()
