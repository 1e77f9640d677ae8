"""The Tune searcher: Optuna decides what to try, and nothing over budget is ever launched.

Each suggestion asks the study for a trial, samples a spec from the space (define-by-run), and
costs it analytically (deploy MACs and params; latency predicted from the latency table, filled
as new parts appear). A candidate over a budget is told to the study at once as a complete but
infeasible trial, with its constraint values, and the next one is asked: it never reaches Ray.
When a launched trial ends, its record is completed from the trial's final report, and the
budgets are checked again on what training produced (the learned adaptor sizes, the measured
latency). The searcher never stops trials: early stopping is the scheduler's job.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
from ray.tune.search import Searcher

from blocknas.costmodel import cost
from blocknas.costmodel.predictor import LatencyPredictor, Target
from blocknas.metrics import METRICS
from blocknas.search.config import SearchConfig
from blocknas.search.study import RECORD_ATTR, finished_launched
from blocknas.spaces import ArchSpec

TrialState = optuna.trial.TrialState


def arch_summary(spec: ArchSpec) -> str:
    """A short human summary: ``stem16 basic/conv16 basic/acb32↓ +A inverted/dwsep48↓``."""
    parts = [f"stem{spec.stem.out}"]
    for layer in spec.layers:
        mark = "↓" if layer.stride == 2 else ""
        parts.append(
            ("+A " if layer.adaptor else "") + f"{layer.block}/{layer.op}{layer.out}{mark}"
        )
    return " ".join(parts)


class Coster:
    """Analytic costs of a candidate before training, with its latency predicted when the search
    needs it (:func:`latency_predictor`)."""

    def __init__(self, config: SearchConfig, echo: Callable[[str], None] | None = None) -> None:
        self.config = config
        self.predictor = latency_predictor(config, echo) if config.predicts_latency() else None

    def __call__(self, spec: ArchSpec) -> dict[str, Any]:
        """Every metric known before training, by its name in the metrics table (None: unknown)."""
        out = cost(spec).to_dict()
        if self.predictor is not None:
            out["latency_ms"] = self.predictor.predict(spec)
        return METRICS.complete(out)


def latency_predictor(
    config: SearchConfig, echo: Callable[[str], None] | None = None
) -> LatencyPredictor:
    """The search's latency predictor: ``latency.table`` or ``<run dir>/latency_<device>.json``,
    profiled from the space first when it is missing or unfinished (progress through ``echo``).
    A file measured on another device, thread count, batch size or torch is refused."""
    from blocknas.costmodel.profiling import profile, read, report_table

    lat = config.latency
    path = lat.table or config.run_dir / f"latency_{lat.device}.json"
    target = Target.here(lat.device, lat.threads, lat.batch)
    predictor = read(path) if path.exists() else None
    if predictor is not None:
        predictor.check(target, path)
    if predictor is None or predictor.model is None:
        say = echo or (lambda _line: None)
        say(
            f"latency: profiling {lat.samples} specs of the space (and {lat.holdout} held out) "
            f"on {target.describe()} into {path}"
        )
        every = max(1, (lat.samples + 2 * lat.holdout) // 10)

        def progress(done: int, total: int) -> None:
            if done % every == 0 or done == total:
                say(f"  profiled {done}/{total}")

        predictor = profile(
            config.space, path, target, samples=lat.samples, holdout=lat.holdout,
            seed=config.search.seed, progress=progress,
        )  # fmt: skip
        if predictor.report is not None:
            say(report_table(predictor.report))
    return predictor


def constraint_values(config: SearchConfig, metrics: dict[str, Any]) -> list[float]:
    """``value − limit`` per budget that is set (≤ 0: within budget; unknown: +inf)."""
    out = []
    for name, limit in config.budgets.limits().items():
        value = metrics.get(name)
        out.append(float("inf") if value is None else float(value) - limit)
    return out


def over_budget(config: SearchConfig, metrics: dict[str, Any]) -> str | None:
    """Why ``metrics`` break a budget (one line), or None."""
    broken = [
        f"{name} {float(metrics[name]):.6g} > {limit:.6g}"
        if metrics.get(name) is not None
        else f"{name} unknown"
        for (name, limit), c in zip(
            config.budgets.limits().items(), constraint_values(config, metrics), strict=True
        )
        if c > 0
    ]
    return "over budget: " + ", ".join(broken) if broken else None


def known(metrics: dict[str, Any]) -> dict[str, Any]:
    """The metrics that have a value: what a trial's record holds (missing ones stay missing)."""
    return {k: v for k, v in metrics.items() if k in METRICS and v is not None}


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
    ) -> None:
        super().__init__()  # no metric: error reports lack accuracy, and Tune checks it
        self.study, self.config, self.trials = study, config, trials
        self.trial_config = trial_config
        self.checkpoint_dir = checkpoint_dir
        self.coster = coster or Coster(config)
        self.stopped_at = stopped_at
        self.on_finish = on_finish
        self.launched = finished_launched(study)  # includes trials of earlier (resumed) runs
        self.running: dict[str, optuna.Trial] = {}
        self.curves: dict[str, dict[int, float]] = {}  # trial id -> epoch -> val accuracy
        self.records: dict[int, dict[str, Any]] = {}  # trial number -> its record, as written
        self.rejected = 0
        self.error: str | None = None
        self.stand_in = StandIns(config, study)

    # --- what to try -------------------------------------------------------------------------
    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:  # type: ignore[override]
        if self.launched >= self.trials or self.error:
            return Searcher.FINISHED
        for _ in range(self.config.search.max_rejections):
            trial = self.study.ask()
            spec = self.config.space.sample(trial)
            costs = self.coster(spec)
            constraints = constraint_values(self.config, costs)
            attrs = {
                "spec": spec.to_json(),
                "arch": arch_summary(spec),
                **known(costs),
                "constraints": constraints,
            }
            reason = over_budget(self.config, costs)
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

    def _launch(
        self,
        trial_id: str,
        trial: optuna.Trial,
        spec: ArchSpec,
        costs: dict[str, Any],
        attrs: dict[str, Any],
    ) -> dict[str, Any]:
        """Record a candidate as launched and give Tune its trial config."""
        # a trial queued again after a killed driver resumes from its first run's checkpoint
        first = trial.user_attrs.get("retry_of", trial.number)
        checkpoint = self.checkpoint_dir / f"trial_{first:05d}.pt"
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
        if trial is None:
            return
        result = result or {}
        curve = self.curves.pop(trial_id, {})
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
