"""``run_search``: the main job, wiring the study, the searcher, the scheduler and Ray Tune.

Ownership follows Ray Tune's split: :class:`~blocknas.search.searcher.StudySearcher` decides what
to try (and records everything in the Optuna study), the early-stopping scheduler decides when a
trial stops, and Tune runs the trials on the CPUs and GPUs of the local machine or a cluster,
reusing actors between trials. The study is the source of truth, so ``resume=True`` after a
killed driver continues it: finished trials stay, interrupted ones are queued again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
import pandas as pd

from blocknas.runners.ray_session import ray_environment, ray_session
from blocknas.search.config import SearchConfig
from blocknas.search.results import front_table, human, load_results, pareto_front, summary
from blocknas.search.study import finished_launched, open_study, recover_interrupted

Echo = Callable[[str], None]
SUMMARY_EVERY_S = 5.0


@dataclass
class SearchOutcome:
    """What a finished search leaves: where its records are, and its results."""

    study_name: str
    storage: str
    results_dir: Path
    results: pd.DataFrame
    front: pd.DataFrame
    rejected: int = 0
    epochs_saved: int = 0
    notes: list[str] = field(default_factory=list)


def _trial_line(t: optuna.trial.FrozenTrial) -> str:
    a = t.user_attrs
    state = {"fail": "failed"}.get(t.state.name.lower(), t.state.name.lower())
    if state == "complete" and not a.get("feasible", True):
        state = "infeasible"
    acc = a.get("val_accuracy")
    lat = a.get("latency_ms")
    parts = [
        f"trial {t.number:>4}",
        f"{state:<10}",
        f"acc {acc:.4f}" if isinstance(acc, float) else "acc    -  ",
        f"MACs {human(a.get('macs'))}",
        f"lat {lat:.2f} ms" if isinstance(lat, float) else "",
        f"ep {a.get('epochs', 0)}",
        str(a.get("arch", ""))[:70],
    ]
    line = "  ".join(p for p in parts if p)
    if a.get("reason") and state != "complete":
        line += f"  ({a['reason']})"
    return line


def _trial_dirname(trial: Any) -> str:
    """``trial_00012``: the Optuna trial number, as in the checkpoint's name."""
    return f"trial_{trial.config.get('number', 0):05d}_{trial.trial_id}"


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
    """
    ray_environment(address)  # before Ray is imported: it reads RAY_AUTH_MODE once, at import
    from ray import tune

    from blocknas.runners.trainable import run_trial
    from blocknas.search.early_stop import DominanceRule, ParetoStoppingScheduler
    from blocknas.search.searcher import StudySearcher

    wanted = trials or config.search.trials
    run_dir = config.run_dir.resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    study = open_study(config, resume=resume)
    interrupted = recover_interrupted(study)
    if interrupted:
        echo(f"resuming: {interrupted} interrupted trial(s) queued again")
    if resume and (already := finished_launched(study)):
        echo(f"resuming: {already} of {wanted} trials already done")

    # what early stopping compares: every cost objective; a latency the table does not predict
    # is measured by the trial before it trains (one short timing) so that it can be compared
    metrics = [o.metric for o in config.objectives]
    cost_keys = tuple(m for m in metrics if m != "val_accuracy") or ("deploy_macs",)
    time_first = "latency_ms" in cost_keys and not config.predicts_latency()
    es = config.search.early_stopping
    scheduler = (
        ParetoStoppingScheduler(
            accuracy="val_accuracy",
            costs=cost_keys,
            epoch="epoch",
            rule=DominanceRule(
                min_epoch=es.min_epoch,
                min_dominators=es.min_dominators,
                cost_tolerance=es.cost_tolerance,
                margin=es.margin,
            ),
            planned_epochs=config.train.epochs,
        )
        if es.enabled
        else None
    )

    last_summary = [0.0]

    def finished(t: optuna.trial.FrozenTrial, running: int) -> None:
        echo(_trial_line(t))
        now = time.monotonic()
        if now - last_summary[0] < SUMMARY_EVERY_S and running:
            return  # short trials: a summary at most every few seconds (it reads the study)
        last_summary[0] = now
        s = summary(load_results(study))
        echo(
            f"  done {s['done']}/{wanted}, running {running}, infeasible {s['infeasible']}, "
            f"pruned {s['pruned']}, failed {s['failed']}, front {s['front']}, "
            f"hypervolume {s['hypervolume']:.4g}"
        )

    cpus, gpus = config.resources.cpus, config.resources.gpus
    train_cfg = config.train.model_dump(mode="json") | {
        "latency_device": config.latency.device,
        "latency_batch": config.latency.batch,
        "threads": max(1, int(cpus)) if gpus == 0 else config.train.threads,
    }
    searcher = StudySearcher(
        study,
        config,
        trials=wanted,
        trial_config={
            "train": train_cfg,
            "data": config.data.model_dump(mode="json"),
            "split_seed": config.search.seed,
            "time_latency_first": time_first,
        },
        checkpoint_dir=run_dir / "checkpoints",
        stopped_at=(lambda tid: scheduler.stopped.get(tid)) if scheduler else (lambda _t: None),
        on_finish=finished,
    )
    with ray_session(address) as where:
        echo(
            f"search {config.name!r}: {wanted} trials, {config.search.sampler}, "
            f"{config.search.concurrency} at a time on {where}; study in {config.storage_url()}"
        )
        tuner = tune.Tuner(
            tune.with_resources(trainable or run_trial, {"cpu": cpus, "gpu": gpus}),
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
        tuner.fit()
    df = load_results(study)
    outcome = SearchOutcome(
        study_name=config.name,
        storage=config.storage_url(),
        results_dir=run_dir,
        results=df,
        front=pareto_front(df),
        rejected=searcher.rejected,
        epochs_saved=scheduler.saved_epochs() if scheduler else 0,
    )
    if searcher.error:
        outcome.notes.append(searcher.error)
    return outcome


def describe(outcome: SearchOutcome) -> str:
    """The closing text: where the results are, the front as a table, the summary."""
    s = summary(outcome.results)
    lines = [
        f"study {outcome.study_name!r} in {outcome.storage}; checkpoints and Ray results in "
        f"{outcome.results_dir}",
        f"{s['done']} trials ({s['complete']} complete, {s['pruned']} pruned, {s['failed']} "
        f"failed), {outcome.rejected} candidate{'' if outcome.rejected == 1 else 's'} rejected "
        "over budget before training, "
        f"{outcome.epochs_saved} epochs saved by early stopping",
        f"Pareto front ({len(outcome.front)} architectures, hypervolume {s['hypervolume']:.4g}):",
        front_table(outcome.results),
        *outcome.notes,
    ]
    return "\n".join(lines)
