"""The Tune searcher: Optuna decides what to try, and nothing over budget is ever launched.

Each suggestion asks the study for a trial, samples a spec from the space (define-by-run), and
costs it analytically (:mod:`blocknas.search.costs`: deploy MACs and params, latency from the
latency predictor). A candidate over a budget, or too large to build at all (the memory limit,
:mod:`blocknas.costmodel.memory`), is told to the study at once as a complete but infeasible
trial, with its constraint values, and the next one is asked: it never reaches Ray. When a
launched trial ends, its record is completed from the trial's final report, and the budgets are
checked again on what training produced (the learned adaptor sizes, the measured latency). The
searcher never stops trials: early stopping is the scheduler's job, and a stop signal
:class:`SearchStopper`'s.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import optuna
from ray.tune.search import Searcher
from ray.tune.stopper import Stopper

from blocknas.costmodel.memory import check_memory
from blocknas.metrics import METRICS
from blocknas.search.config import SearchConfig
from blocknas.search.costs import (
    Coster,
    arch_summary,
    constraint_values,
    known,
    over_budget,
)
from blocknas.search.study import RECORD_ATTR, finished_launched, mark_interrupted
from blocknas.spaces import ArchSpec, SpecError

TrialState = optuna.trial.TrialState


class StudySearcher(Searcher):
    """Tune searcher backed by the search's Optuna study (see the module docstring)."""

    def __init__(
        self,
        study: optuna.Study,
        config: SearchConfig,
        *,
        trials: int,
        trial_config: dict[str, Any],
        checkpoint_dir: Path,
        coster: Callable[[ArchSpec], dict[str, Any]] | None = None,
        stopped_at: Callable[[str], int | None] = lambda _trial_id: None,
        on_finish: Callable[[optuna.trial.FrozenTrial, int], None] | None = None,
        stopping: Callable[[], str | None] = lambda: None,
        superseded: Callable[[], bool] = lambda: False,
    ) -> None:
        super().__init__()  # no metric: error reports lack accuracy, and Tune checks it
        self.study, self.config, self.trials = study, config, trials
        self.trial_config = trial_config
        self.checkpoint_dir = checkpoint_dir
        self.coster = coster or Coster(config)
        self.stopped_at = stopped_at
        self.on_finish = on_finish
        self.stopping = stopping  # why the whole search is stopping (a signal), or None
        self.superseded = superseded  # whether another driver has taken the study over
        self.launched = finished_launched(study)  # includes trials of earlier (resumed) runs
        self.running: dict[str, optuna.Trial] = {}
        self.curves: dict[str, dict[int, float]] = {}  # trial id -> epoch -> val accuracy
        self.records: dict[int, dict[str, Any]] = {}  # trial number -> its record, as written
        self.rejected = 0
        self.error: str | None = None
        self.stand_in = StandIns(config, study)

    # --- what to try -------------------------------------------------------------------------
    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:  # type: ignore[override]
        if self.launched >= self.trials or self.error or self.stopping():
            return Searcher.FINISHED
        for _ in range(self.config.search.max_rejections):
            trial = self.study.ask()
            spec = self.config.space.sample(trial)
            costs, reason = self._cost(spec)
            constraints = constraint_values(self.config, costs)
            attrs = {
                "spec": spec.to_json(),
                "arch": arch_summary(spec),
                **known(costs),
                "constraints": constraints,
            }
            if reason is not None:
                self._set(trial, attrs | {"feasible": False, "launched": False, "reason": reason})
                self._tell(trial, constraints, costs)
                self.records.pop(trial.number, None)
                self.rejected += 1
                continue
            return self._launch(trial_id, trial, spec, costs, attrs)
        self.error = (
            f"no candidate within the budgets in {self.config.search.max_rejections} draws in a "
            "row; loosen `budgets:` or narrow the space"
        )
        return Searcher.FINISHED

    def _cost(self, spec: ArchSpec) -> tuple[dict[str, Any], str | None]:
        """The candidate's costs and why it must not be trained (None: it may): over a budget,
        or too large to build at all (the memory limit; its costs are then unknown)."""
        try:
            check_memory(spec)
        except SpecError as e:
            return {}, f"too large to build: {e}"
        costs = self.coster(spec)
        return costs, over_budget(self.config, costs)

    def _launch(
        self,
        trial_id: str,
        trial: optuna.Trial,
        spec: ArchSpec,
        costs: dict[str, Any],
        attrs: dict[str, Any],
    ) -> dict[str, Any]:
        """Record a candidate as launched and give Tune its trial config."""
        # a trial queued again after an interrupt resumes from the interrupted one's checkpoint
        first = trial.user_attrs.get("retry_of", trial.number)  # studies before resume_from
        checkpoint = Path(
            trial.user_attrs.get("resume_from") or self.checkpoint_dir / f"trial_{first:05d}.pt"
        )
        planned = self.config.train.epochs
        launch = {"launched": True, "checkpoint": str(checkpoint), "epochs_planned": planned}
        self._set(trial, attrs | launch)
        self.running[trial_id] = trial
        self.launched += 1
        return {
            **self.trial_config,
            "spec": spec.to_dict(),
            "number": trial.number,
            "costs": known(costs),
            "checkpoint": str(checkpoint),
        }

    # --- what happened -------------------------------------------------------------------------
    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        """Keep each epoch's validation accuracy: the learning curve is stored with the trial
        (what early stopping saw; stopping rules can be replayed on it offline)."""
        epoch, accuracy = result.get("epoch"), result.get("accuracy")
        if trial_id in self.running and epoch and accuracy is not None and not result.get("final"):
            self.curves.setdefault(trial_id, {})[int(epoch)] = float(accuracy)

    def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        trial = self.running.pop(trial_id, None)
        curve = self.curves.pop(trial_id, {})
        if trial is None:
            return
        # a driver that took the study over queued the trial again: it is that driver's now
        try:
            if not self.superseded():
                self._finish(trial, trial_id, result or {}, error, curve)
        except optuna.exceptions.UpdateFinishedTrialError:
            pass  # taken over before this driver's next heartbeat noticed
        self.records.pop(trial.number, None)

    def _finish(
        self,
        trial: optuna.Trial,
        trial_id: str,
        result: dict[str, Any],
        error: bool,
        curve: dict[int, float],
    ) -> None:
        """Record a trial Tune reported finished: interrupted, failed, pruned or trained."""
        attrs: dict[str, Any] = {
            "epochs": int(result.get("epoch", 0) or 0),
            "curve": [curve[e] for e in sorted(curve)],
            "node": result.get("node"),
            "wall_seconds": result.get("wall_seconds", result.get("time_total_s")),
            # costs the trial measured before it trained (a latency timed for early stopping):
            # they hold for a stopped or failed trial too; its partial accuracy does not
            **known(
                {m: result.get(m) for m in METRICS.names() if METRICS[m].direction == "minimize"}
            ),
        }
        stopped = self.stopped_at(trial_id)
        if self.stopping() and not result.get("final"):  # stopped by the user, not by a rule
            self._interrupt([(trial, attrs)])
            return
        if error or "error" in result:
            reason = result.get("error") or "the trial's worker failed (see the Ray logs)"
            self._set(trial, attrs | {"feasible": False, "reason": reason})
            frozen = self.study.tell(trial, state=TrialState.FAIL)
        elif stopped is not None or not result.get("final"):
            epoch = stopped or attrs["epochs"]
            why = f"stopped early at epoch {epoch}: ranked low on accuracy and cost at that epoch"
            self._set(trial, attrs | {"feasible": False, "reason": why})
            frozen = self.study.tell(trial, state=TrialState.PRUNED)
        else:
            frozen = self._complete(trial, result, attrs)
        self.records.pop(trial.number, None)
        if self.on_finish is not None:
            self.on_finish(frozen, len(self.running))

    def _complete(
        self, trial: optuna.Trial, result: dict[str, Any], attrs: dict[str, Any]
    ) -> optuna.trial.FrozenTrial:
        """Record a trained trial, checking the budgets again on what training produced."""
        metrics = METRICS.complete({m: result.get(m) for m in METRICS.names()})
        reason = over_budget(self.config, metrics)
        attrs |= {
            **known(metrics),
            "spec": result.get("spec") or self.records.get(trial.number, {}).get("spec"),
            "constraints": constraint_values(self.config, metrics),
            "feasible": reason is None,
        }
        if reason is not None:
            attrs["reason"] = reason + " after training"
        self._set(trial, attrs)
        return self._tell(trial, attrs["constraints"], metrics)

    def interrupt_running(self) -> int:
        """Record every trial still running as interrupted: the search is stopping."""
        trials = list(self.running.values())
        self.running.clear()
        self._interrupt([(t, {}) for t in trials])
        return len(trials)

    def _interrupt(self, trials: list[tuple[optuna.Trial, dict[str, Any]]]) -> None:
        """Record ``trials`` (with what is known of their training) as interrupted, queued again
        for ``--resume`` to continue from their checkpoints."""
        why = self.stopping() or "the search stopped"
        for trial, attrs in trials:
            self._set(trial, attrs | {"interrupted": True, "reason": f"interrupted: {why}"})
        for frozen in mark_interrupted(self.study, [t for t, _ in trials]):
            self.records.pop(frozen.number, None)
            if self.on_finish is not None:
                self.on_finish(frozen, len(self.running))

    # --- helpers ---------------------------------------------------------------------------------
    def _set(self, trial: optuna.Trial, attrs: dict[str, Any]) -> None:
        """Add ``attrs`` to the trial's record and write it as one attribute: each write is a
        storage transaction, and writing one per update (at rejection, or at launch and at the
        end) instead of one per field saves about 15 ms of the driver's time per trial."""
        held = self.records.get(trial.number)
        now = (held or {}) | attrs
        if now != held:
            trial.set_user_attr(RECORD_ATTR, now)
        self.records[trial.number] = now

    def _tell(
        self, trial: optuna.Trial, constraints: list[float], metrics: dict[str, Any]
    ) -> optuna.trial.FrozenTrial:
        """Finish a trial with its objective values and the constraint values the samplers read
        (a constraint can be set once, so only here: at rejection, or after training)."""
        names = self.config.budgets.limits()
        for name, value in zip(names, constraints, strict=True):
            trial.set_constraint(name, value)
        return self.study.tell(trial, self.stand_in.values(metrics))

    # --- Tune's checkpointing of the searcher: the study is the state -------------------------
    def save(self, checkpoint_path: str) -> None:
        """Nothing to save: every trial is already in the study's storage."""

    def restore(self, checkpoint_path: str) -> None:
        """Nothing to restore: ``--resume`` reopens the study instead."""

    def __getstate__(self) -> dict[str, Any]:
        """Tune pickles its config, this searcher included, into the experiment folder (for
        ``Tuner.restore``, which blocknas does not use): the live stop check stays out."""
        return self.__dict__ | {"stopping": _not_stopping, "superseded": _never}


def _not_stopping() -> str | None:
    return None


def _never() -> bool:
    return False


class StandIns:
    """Objective values to tell the study, with a stand-in for each one not measured.

    Samplers need a number for every objective of a finished trial, but a candidate rejected
    before training has no accuracy (nor a measured latency). The record keeps it missing; the
    sampler is told the worst value seen so far for that objective (0 before any), so a rejected
    candidate never looks better than the trials it is compared with.
    """

    def __init__(self, config: SearchConfig, study: optuna.Study) -> None:
        self.objectives = [(o.metric, o.direction) for o in config.objectives]
        self.worst: dict[str, float] = {}
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
            if t.values is not None and len(t.values) == len(self.objectives):
                self._update(dict(zip([m for m, _ in self.objectives], t.values, strict=True)))

    def _update(self, values: dict[str, Any]) -> None:
        for metric, direction in self.objectives:
            v = values.get(metric)
            if v is None or not math.isfinite(float(v)):
                continue
            pick = min if direction == "maximize" else max
            self.worst[metric] = pick(self.worst.get(metric, float(v)), float(v))

    def values(self, metrics: dict[str, Any]) -> list[float]:
        """The objective values of ``metrics``, stand-ins where a value is missing."""
        self._update(metrics)
        return [
            float(v) if (v := metrics.get(m)) is not None else self.worst.get(m, 0.0)
            for m, _ in self.objectives
        ]


class SearchStopper(Stopper):
    """Tune's stopper of a search: a trial ends at its ``final`` report; every trial stops when
    ``stop_all`` says so (a stop signal, or the study's lease lost to another driver)."""

    def __init__(self, stop_all: Callable[[], bool]) -> None:
        self._stop_all = stop_all

    def __call__(self, trial_id: str, result: Mapping[str, Any]) -> bool:
        # the trainable returns right after its final report: this spares Tune one more call
        # to the actor to learn that it returned
        return bool(result.get("final"))

    def stop_all(self) -> bool:
        return self._stop_all()

    def __getstate__(self) -> dict[str, Any]:
        """Tune pickles its run config into the experiment folder, for ``Tuner.restore``, which
        blocknas does not use (``--resume`` reopens the study): the live callable stays out."""
        return {}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._stop_all = lambda: False
