"""``run_search``: the main job, wiring the study, the searcher, the scheduler and Ray Tune.

Ownership follows Ray Tune's split: :class:`~blocknas.search.searcher.StudySearcher` decides what
to try (and records everything in the Optuna study), the early-stopping scheduler decides when a
trial stops, and Tune runs the trials on the CPUs and GPUs of the local machine or a cluster,
reusing actors between trials. The study is the source of truth, so ``resume=True`` after a
killed driver continues it: finished trials stay, interrupted ones are queued again.

Everything a user can get wrong is checked before Ray starts: the config (when it is read), the
data (:func:`check_data`) and an existing latency predictor file, so a bad search ends in seconds
with one line and changes nothing. One driver per study: a search holds the study's lease
(:mod:`blocknas.search.lease`) from before it changes the study until it ends, and a stop
signal ends it cleanly (:mod:`blocknas.search.signals`).
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
from blocknas.search.lease import Holder, Lease
from blocknas.search.results import Tally, load_results, pareto_front
from blocknas.search.signals import StopRequest, stop_signals
from blocknas.search.study import (
    finished_launched,
    open_study,
    recover_interrupted,
    shown_url,
    storage_for,
)
from blocknas.search.text import describe, progress_line, trial_line
from blocknas.spaces.errors import SpecError

if TYPE_CHECKING:
    from blocknas.search.early_stop import ParetoStoppingScheduler
    from blocknas.search.searcher import SearchStopper, StudySearcher

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
    stopped_by: str | None = None  # the signal that stopped the search (SIGINT, SIGTERM)
    exit_code: int = 0  # 130 after SIGINT, 143 after SIGTERM (128 + the signal)

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
    if config.predicts_latency():
        from blocknas.search.costs import existing_predictor

        existing_predictor(config)  # a damaged or foreign file: refused before anything changes
    ray_environment(address)  # before Ray is imported: it reads RAY_AUTH_MODE once, at import
    wanted = trials or config.search.trials
    run_dir = config.run_dir.resolve()
    stop = StopRequest()
    with quiet_optuna():
        study, lease = _open(config, resume=resume, wanted=wanted, echo=echo)  # bad storage: now
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
            lease.start_heartbeat()
            searcher = _train(config, study, wanted, run_dir, echo, address, trainable, stop, lease)
        finally:
            lease.release()
        df = load_results(study)
    outcome = SearchOutcome(
        study_name=config.name,
        storage=config.storage_url(),
        results_dir=run_dir,
        results=df,
        front=pareto_front(df),
        rejected=searcher.rejected,
        stopped_by=stop.name or None,
        exit_code=stop.exit_code if stop else 0,
    )
    if searcher.error:
        outcome.notes.append(searcher.error)
    return outcome


def _train(
    config: SearchConfig,
    study: optuna.Study,
    wanted: int,
    run_dir: Path,
    echo: Echo,
    address: str | None,
    trainable: Callable[[dict[str, Any]], None] | None,
    stop: StopRequest,
    lease: Lease,
) -> StudySearcher:
    """Tune's run of the trials until ``wanted`` are trained or a stop signal; Ray's own
    messages go to ``<run dir>/ray.log``. Returns the searcher (its counts and notes)."""
    scheduler = make_scheduler(config)

    def stopping() -> str | None:
        if lease.lost.is_set():
            return f"another driver took study {config.name!r} over"
        return f"{stop.name} received" if stop else None

    searcher = _searcher(
        config, study, wanted, run_dir, scheduler, echo, stopping, lease.lost.is_set
    )
    log = run_dir / "ray.log"
    # the stop handlers go in after ray.init, which sets its own for SIGTERM (and whose native
    # logging aborts the process on one)
    with ray_session(address, log=log) as where, stop_signals(stop):
        echo(
            f"search {config.name!r}: {wanted} trials, {config.search.sampler}, "
            f"{config.search.concurrency} at a time on {where}; "
            f"study in {shown_url(config.storage_url())}; Ray's messages in {log}"
        )
        from blocknas.search.searcher import SearchStopper

        stopper = SearchStopper(lambda: stopping() is not None)
        _tuner(config, searcher, scheduler, stopper, run_dir, trainable).fit()
    if stopping() is not None and not lease.lost.is_set():
        searcher.interrupt_running()  # any Tune did not report back
    return searcher


def _open(
    config: SearchConfig, *, resume: bool, wanted: int, echo: Echo
) -> tuple[optuna.Study, Lease]:
    """The study and this driver's lease on it (one driver per study), with the trials of a
    stopped driver it took over queued again."""
    storage = storage_for(config.storage_url())
    lease = Lease(storage.engine, config.name)  # type: ignore[attr-defined]
    stale = lease.acquire()  # a live driver: refused here, before anything changes
    try:
        study = open_study(config, resume=resume, storage=storage)
        _prepare(study, config, resume=resume, wanted=wanted, echo=echo, stale=stale)
    except BaseException:
        lease.release()
        raise
    return study, lease


def _prepare(
    study: optuna.Study,
    config: SearchConfig,
    *,
    resume: bool,
    wanted: int,
    echo: Echo,
    stale: Holder | None,
) -> None:
    """Seed a new study; in a resumed one, queue again what a stopped driver left running."""
    if stale is not None:
        was = stale.describe(time.time())
        echo(f"resuming: took study {config.name!r} over from stopped {was}")
    seeded = warm_start(study, config)
    if seeded:
        echo(f"warm start: {seeded} seed spec(s) run first ({config.search.sampler} after)")
    interrupted = recover_interrupted(study)
    if interrupted:
        echo(f"resuming: {interrupted} interrupted trial(s) queued again")
    if resume and (already := finished_launched(study)):
        echo(f"resuming: {already} of {wanted} trials already done")


def warm_start(study: optuna.Study, config: SearchConfig) -> int:
    """Queue the first trials of a new study: the space's cheapest architecture (unless
    ``search.warm_start: none``), then ``search.seed_specs`` in order. The sampler learns from
    them as from any trial. A resumed study already has them."""
    if study.get_trials(deepcopy=False):
        return 0
    seeds = config.seeds()
    if config.search.warm_start == "cheapest":
        seeds.insert(0, ("cheapest", cheapest_params(config)))
    for label, params in seeds:
        study.enqueue_trial(params, user_attrs={"warm_start": label}, skip_if_exists=False)
    return len(seeds)


def cheapest_params(config: SearchConfig) -> dict[str, Any]:
    """Parameters of the space's cheapest architecture, by the first cost objective known
    before training (``macs`` when none is)."""
    from blocknas.costmodel import cost
    from blocknas.spaces.seeds import cheapest, params_for

    known = [m for m in cost_objectives(config) if METRICS[m].known == "before"]
    metric = known[0] if known else "macs"
    spec = cheapest(config.space, lambda s: float(METRICS.complete(cost(s).to_dict())[metric]))
    return params_for(config.space, spec)


def cost_objectives(config: SearchConfig) -> tuple[str, ...]:
    """The objectives early stopping compares as costs (every minimised one; MACs if none)."""
    costs = [o.metric for o in config.objectives if o.direction == "minimize"]
    return tuple(costs) or ("macs",)


def make_scheduler(config: SearchConfig) -> ParetoStoppingScheduler | None:
    """The early-stopping scheduler of the config (None when it is off)."""
    from blocknas.search.early_stop import DominanceRule, HalvingRule, ParetoStoppingScheduler

    es = config.search.early_stopping
    if not es.enabled:
        return None
    rule_class = HalvingRule if es.rule == "halving" else DominanceRule
    return ParetoStoppingScheduler(
        accuracy="accuracy",
        costs=cost_objectives(config),
        epoch="epoch",
        rule=rule_class(**es.settings()),
        planned_epochs=config.train.epochs,
    )


def _trial_config(config: SearchConfig) -> dict[str, Any]:
    """What every trial gets besides its spec: training, data, and how to time latency."""
    cpus, gpus = config.resources.cpus, config.resources.gpus
    train = config.train.model_dump(mode="json") | {
        "latency_device": config.latency.device,
        "latency_batch": config.latency.batch,
        "latency_threads": config.latency.threads,  # as the predictor was profiled
        "threads": max(1, int(cpus)) if gpus == 0 else config.train.threads,
    }
    # latency, known only after training, is predicted at launch (the searcher's costs), so
    # early stopping compares it from the first epoch
    return {
        "train": train,
        "data": config.data.model_dump(mode="json"),
        "split_seed": config.search.seed,
    }


def _searcher(
    config: SearchConfig,
    study: optuna.Study,
    wanted: int,
    run_dir: Path,
    scheduler: ParetoStoppingScheduler | None,
    echo: Echo,
    stopping: Callable[[], str | None],
    superseded: Callable[[], bool],
) -> StudySearcher:
    """The searcher, printing a line per finished trial and a progress line every few seconds;
    ``superseded``: whether another driver took the study over (its trials are then that
    driver's to record)."""
    from blocknas.search.costs import Coster
    from blocknas.search.searcher import StudySearcher

    objectives = [o.metric for o in config.objectives]
    last_summary = [0.0]
    tally = Tally(study)  # incremental: a progress line reads only the newly finished trials

    def finished(t: optuna.trial.FrozenTrial, running: int) -> None:
        echo(trial_line(t, objectives))
        now = time.monotonic()
        if now - last_summary[0] < SUMMARY_EVERY_S and running:
            return  # short trials: a summary at most every few seconds (it reads the study)
        last_summary[0] = now
        echo(progress_line(tally.update(), wanted, running))

    return StudySearcher(
        study,
        config,
        trials=wanted,
        trial_config=_trial_config(config),
        checkpoint_dir=run_dir / "checkpoints",
        coster=Coster(config, echo),
        stopped_at=scheduler.stopped.get if scheduler else (lambda _t: None),
        on_finish=finished,
        stopping=stopping,
        superseded=superseded,
    )


def _trial_dirname(trial: Any) -> str:
    """``trial_00012_…``: the Optuna trial number, as in the checkpoint's name."""
    return f"trial_{trial.config.get('number', 0):05d}_{trial.trial_id}"


def _tuner(
    config: SearchConfig,
    searcher: StudySearcher,
    scheduler: ParetoStoppingScheduler | None,
    stopper: SearchStopper,
    run_dir: Path,
    trainable: Callable[[dict[str, Any]], None] | None,
) -> Any:
    """The Tune run: trials on the configured resources, as many at a time as configured.

    Each trial's directory keeps Tune's ``result.json``, ``progress.csv`` and ``params.json``;
    Tune's TensorBoard logger is left out (``TUNE_DISABLE_AUTO_CALLBACK_LOGGERS``, set by
    :func:`~blocknas.runners.ray_session.ray_environment`): it starts two threads per trial and
    was the largest part of Tune's own work per trial.
    """
    from ray import tune
    from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback

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
            stop=stopper,
            callbacks=[CSVLoggerCallback(), JsonLoggerCallback()],
        ),
    )
