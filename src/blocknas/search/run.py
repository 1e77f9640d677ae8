"""``run_search``: the main job, wiring the study, the searcher, the scheduler and Ray Tune.

Ownership follows Ray Tune's split: :class:`~blocknas.search.searcher.StudySearcher` decides what
to try (and records everything in the Optuna study), the early-stopping scheduler decides when a
trial stops, and Tune runs the trials on the CPUs and GPUs of the local machine or a cluster,
reusing actors between trials. The study is the source of truth, so ``resume=True`` after a
killed driver continues it: finished trials stay, interrupted ones are queued again.

Everything a user can get wrong is checked before Ray starts: the config (when it is read) and
the data (:func:`check_data`), so a bad search ends in seconds with one line.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import optuna
import pandas as pd

from blocknas.metrics import METRICS
from blocknas.runners.ray_session import ray_environment, ray_session
from blocknas.search.config import SearchConfig
from blocknas.search.results import load_results, pareto_front, summary
from blocknas.search.study import finished_launched, open_study, recover_interrupted
from blocknas.search.text import describe, progress_line, trial_line
from blocknas.spaces.errors import SpecError

if TYPE_CHECKING:
    from blocknas.search.early_stop import ParetoStoppingScheduler
    from blocknas.search.searcher import StudySearcher

Echo = Callable[[str], None]
SUMMARY_EVERY_S = 5.0
#: where a data problem points in the search config, by the field the data check names
DATA_FIELDS = {"num_classes": "space.num_classes", "input": "space.input"}


@dataclass
class SearchOutcome:
    """What a finished search leaves: where its records are, and its results."""

    study_name: str
    storage: str
    results_dir: Path
    results: pd.DataFrame
    front: pd.DataFrame
    rejected: int = 0  # candidates this run rejected over budget
    notes: list[str] = field(default_factory=list)

    def describe(self) -> str:
        """The closing text: where the results are, the accounting, the front as a table."""
        return describe(
            self.results,
            study=self.study_name,
            storage=self.storage,
            results_dir=self.results_dir,
            notes=self.notes,
        )


def check_data(config: SearchConfig) -> None:
    """Fail fast: the configured data exists and fits the space (classes, channels), checked
    from its files' metadata without loading it. A :class:`SpecError` names the config field."""
    from blocknas.runners.data import DataError

    try:
        config.data.check(config.space.input, config.space.num_classes)
    except DataError as e:
        where = DATA_FIELDS.get(e.field or "", f"data.{e.field or 'name'}")
        raise SpecError(where, str(e)) from None


@contextmanager
def quiet_optuna() -> Iterator[None]:
    """Optuna's per-trial INFO lines off while a search prints its own; restored afterwards."""
    level = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(level)


def run_search(
    config: SearchConfig,
    *,
    address: str | None = None,
    resume: bool = False,
    trials: int | None = None,
    echo: Echo = print,
    trainable: Callable[[dict[str, Any]], None] | None = None,
) -> SearchOutcome:
    """Run (or resume) a search until ``trials`` (default: the config's) have been trained.

    ``trainable`` replaces the real training function (benchmarks of the orchestration).

    Example (about a minute on 2 cores)::

        cfg = SearchConfig.from_file("examples/digits.yaml")
        outcome = run_search(cfg, trials=8)
        print(outcome.describe())
    """
    check_data(config)
    ray_environment(address)  # before Ray is imported: it reads RAY_AUTH_MODE once, at import
    wanted = trials or config.search.trials
    run_dir = config.run_dir.resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    with quiet_optuna():
        study = _open(config, resume=resume, wanted=wanted, echo=echo)
        scheduler = make_scheduler(config)
        searcher = _searcher(config, study, wanted, run_dir, scheduler, echo)
        with ray_session(address) as where:
            echo(
                f"search {config.name!r}: {wanted} trials, {config.search.sampler}, "
                f"{config.search.concurrency} at a time on {where}; "
                f"study in {config.storage_url()}"
            )
            _tuner(config, searcher, scheduler, run_dir, trainable).fit()
        df = load_results(study)
    outcome = SearchOutcome(
        study_name=config.name,
        storage=config.storage_url(),
        results_dir=run_dir,
        results=df,
        front=pareto_front(df),
        rejected=searcher.rejected,
    )
    if searcher.error:
        outcome.notes.append(searcher.error)
    return outcome


def _open(config: SearchConfig, *, resume: bool, wanted: int, echo: Echo) -> optuna.Study:
    """The study, with trials a killed driver left running queued again."""
    study = open_study(config, resume=resume)
    interrupted = recover_interrupted(study)
    if interrupted:
        echo(f"resuming: {interrupted} interrupted trial(s) queued again")
    if resume and (already := finished_launched(study)):
        echo(f"resuming: {already} of {wanted} trials already done")
    return study


def cost_objectives(config: SearchConfig) -> tuple[str, ...]:
    """The objectives early stopping compares as costs (every minimised one; MACs if none)."""
    costs = [o.metric for o in config.objectives if o.direction == "minimize"]
    return tuple(costs) or ("macs",)


def make_scheduler(config: SearchConfig) -> ParetoStoppingScheduler | None:
    """The early-stopping scheduler of the config (None when it is off)."""
    from blocknas.search.early_stop import DominanceRule, ParetoStoppingScheduler

    es = config.search.early_stopping
    if not es.enabled:
        return None
    return ParetoStoppingScheduler(
        accuracy="accuracy",
        costs=cost_objectives(config),
        epoch="epoch",
        rule=DominanceRule(
            min_epoch=es.min_epoch,
            min_dominators=es.min_dominators,
            cost_tolerance=es.cost_tolerance,
            margin=es.margin,
        ),
        planned_epochs=config.train.epochs,
    )


def _trial_config(config: SearchConfig) -> dict[str, Any]:
    """What every trial gets besides its spec: training, data, and how to time latency."""
    cpus, gpus = config.resources.cpus, config.resources.gpus
    train = config.train.model_dump(mode="json") | {
        "latency_device": config.latency.device,
        "latency_batch": config.latency.batch,
        "threads": max(1, int(cpus)) if gpus == 0 else config.train.threads,
    }
    # a cost objective known only after training, and not predicted, is measured by the trial
    # before it trains (one short timing), so that early stopping can compare it from epoch 1
    after = [m for m in cost_objectives(config) if METRICS[m].known == "after"]
    return {
        "train": train,
        "data": config.data.model_dump(mode="json"),
        "split_seed": config.search.seed,
        "time_latency_first": "latency_ms" in after and not config.predicts_latency(),
    }


def _searcher(
    config: SearchConfig,
    study: optuna.Study,
    wanted: int,
    run_dir: Path,
    scheduler: ParetoStoppingScheduler | None,
    echo: Echo,
) -> StudySearcher:
    """The searcher, printing a line per finished trial and a progress line every few seconds."""
    from blocknas.search.searcher import StudySearcher

    objectives = [o.metric for o in config.objectives]
    last_summary = [0.0]

    def finished(t: optuna.trial.FrozenTrial, running: int) -> None:
        echo(trial_line(t, objectives))
        now = time.monotonic()
        if now - last_summary[0] < SUMMARY_EVERY_S and running:
            return  # short trials: a summary at most every few seconds (it reads the study)
        last_summary[0] = now
        echo(progress_line(summary(load_results(study)), wanted, running))

    return StudySearcher(
        study,
        config,
        trials=wanted,
        trial_config=_trial_config(config),
        checkpoint_dir=run_dir / "checkpoints",
        stopped_at=scheduler.stopped.get if scheduler else (lambda _t: None),
        on_finish=finished,
    )


def _trial_dirname(trial: Any) -> str:
    """``trial_00012_…``: the Optuna trial number, as in the checkpoint's name."""
    return f"trial_{trial.config.get('number', 0):05d}_{trial.trial_id}"


def _tuner(
    config: SearchConfig,
    searcher: StudySearcher,
    scheduler: ParetoStoppingScheduler | None,
    run_dir: Path,
    trainable: Callable[[dict[str, Any]], None] | None,
) -> Any:
    """The Tune run: trials on the configured resources, as many at a time as configured."""
    from ray import tune

    from blocknas.runners.trainable import run_trial

    resources = {"cpu": config.resources.cpus, "gpu": config.resources.gpus}
    return tune.Tuner(
        tune.with_resources(trainable or run_trial, resources),
        tune_config=tune.TuneConfig(
            search_alg=searcher,
            scheduler=scheduler,
            num_samples=-1,
            max_concurrent_trials=config.search.concurrency,
            reuse_actors=True,
            trial_dirname_creator=_trial_dirname,
        ),
        run_config=tune.RunConfig(
            name="ray",
            storage_path=str(run_dir),
            verbose=0,
            failure_config=tune.FailureConfig(max_failures=config.search.max_failures),
        ),
    )
