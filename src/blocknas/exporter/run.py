"""``export()``: from a study to a verified deploy package (contracts §4).

The steps: choose the trial (:mod:`~blocknas.exporter.pick`), take its weights or retrain it
(:mod:`~blocknas.exporter.source`), convert to deploy form, write every format
(:mod:`~blocknas.exporter.formats`), load the package back and verify it
(:mod:`~blocknas.exporter.verify`), measure its latency, then write metrics, card and manifest
and move the package into place (:mod:`~blocknas.exporter.package`).
"""

from __future__ import annotations

import platform
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import optuna
import torch

from blocknas.costmodel import cost
from blocknas.costmodel.latency import check_device, device_name, measure_module
from blocknas.exporter import verify
from blocknas.exporter.card import model_card
from blocknas.exporter.formats import FORMATS, Format, as_runner, check_requirements
from blocknas.exporter.package import Staging, load_deploy, stage, write_json, write_manifest
from blocknas.exporter.pick import Choice, choose
from blocknas.exporter.source import StudySettings, Trained, from_checkpoint, retrain
from blocknas.runners.train import EpochReport, StepCallback
from blocknas.search.reading import load_results
from blocknas.search.study import shown_url, storage_for
from blocknas.spaces import to_deploy

Echo = Callable[[str], None]


@dataclass
class Progress:
    """Where an export reports: a line per step, and the retrain's batches and epochs."""

    echo: Echo | None = None
    on_step: StepCallback | None = None
    on_epoch: Callable[[EpochReport], None] | None = None

    def say(self, line: str) -> None:
        if self.echo is not None:
            self.echo(line)


def export(
    storage: str | Path,
    study: str | None = None,
    *,
    out: str | Path,
    trial: int | None = None,
    pick: str | None = None,
    epochs: int | None = None,
    force: bool = False,
    budgets: dict[str, float] | None = None,
    device: str | None = None,
    progress: Progress | None = None,
) -> Path:
    """Write the verified deploy package of one trial of a study to ``out``; returns ``out``.

    ``trial`` exports that trial; otherwise ``pick`` (``best``, the default, ``smallest`` or
    ``knee``) chooses from the feasible front under the study's budgets and any tighter
    ``budgets`` (``{"macs": 2e6, "latency_ms": 5}``). ``epochs`` retrains the architecture from
    scratch first. ``device`` is where latency is measured (default: the study's latency
    device). A failed check raises :class:`~blocknas.exporter.verify.CheckFailed` and leaves
    nothing at ``out``.

    After ``make demo``::

        blocknas.export("sqlite:///runs/digits/study.db", "digits", pick="knee",
                        out="export/digits-knee")
    """
    progress = progress or Progress()
    check_requirements()
    storage = storage_url(storage)
    if epochs is not None and (
        isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1
    ):
        raise ValueError(f"--epochs={epochs!r} must be an integer ≥ 1")
    df = load_results(storage, study)
    choice = choose(df, trial=trial, pick=pick, budgets=budgets, retrain=epochs is not None)
    settings = StudySettings.from_config(
        _study_config(storage, df.attrs["study"]), df.attrs["study"]
    )
    latency = {"device": "cpu", "threads": 1, "batch": 1, **settings.latency}
    latency["device"] = device or latency["device"]
    check_device(latency["device"])  # before any work
    staging = stage(out, force=force)
    progress.say(
        f"exporting trial {choice.number} of {df.attrs['study']!r} ({choice.how}) to {out}"
    )
    try:
        trained = _weights(choice, storage, settings, epochs, staging, progress)
        job = _Job(staging, trained, choice, settings, progress)
        job.write_files()
        checks = job.verify()
        job.finish(checks, latency, df.attrs, storage)
    except KeyboardInterrupt:
        progress.say(f"interrupted: run the same export again to resume ({staging.path} kept)")
        raise
    except BaseException:
        staging.discard()
        raise
    staging.publish()
    progress.say(f"wrote {out}: every check passed")
    return Path(out)


def _study_config(storage: str, name: str) -> dict[str, Any] | None:
    study = optuna.load_study(study_name=name, storage=storage_for(storage, create=False))
    config = study.user_attrs.get("config")
    return config if isinstance(config, dict) else None


def _weights(
    choice: Choice,
    storage: str,
    settings: StudySettings,
    epochs: int | None,
    staging: Staging,
    progress: Progress,
) -> Trained:
    if epochs is None:
        progress.say(f"loading trial {choice.number}'s checkpoint")
        return from_checkpoint(choice.row, storage, settings)
    resumed = staging.retrain_checkpoint.is_file()
    progress.say(
        f"retraining from scratch for {epochs} epochs" + (" (resuming)" if resumed else "")
    )
    return retrain(
        choice.row,
        settings,
        epochs,
        staging.retrain_checkpoint,
        on_step=progress.on_step,
        on_epoch=progress.on_epoch,
    )


@dataclass
class _Job:
    """One export after its weights are known: write, verify, measure, describe."""

    staging: Staging
    trained: Trained
    choice: Choice
    settings: StudySettings
    progress: Progress

    deployed: torch.nn.Module | None = None  # the package's model, loaded back
    mean_std: dict[str, list[float]] | None = None  # the inputs' normalisation

    @property
    def folder(self) -> Path:
        return self.staging.files

    def write_files(self) -> None:
        """spec.json, model.pt (the deploy state dict) and each serialised format."""
        spec = self.trained.spec
        (self.folder / "spec.json").write_text(spec.to_json(indent=2) + "\n")
        deploy = to_deploy(self.trained.model.cpu().float())
        torch.save(deploy.state_dict(), self.folder / "model.pt")
        example = torch.zeros(2, *spec.input)
        for fmt in FORMATS:
            self.progress.say(f"writing {fmt.filename} ({fmt.name})")
            _attempt(fmt, "written", fmt.write, deploy, example, self.folder / fmt.filename)

    def verify(self) -> dict[str, dict[str, Any]]:
        """Every check of :mod:`~blocknas.exporter.verify`, on the package as written."""
        deployed = load_deploy(self.folder)  # the exported model, rebuilt from its files
        data = self.settings.load_data(self.trained.spec)
        self.mean_std = {"mean": list(data.mean), "std": list(data.std)}
        split = verify.test_batches(data)
        run = as_runner(deployed)
        self.progress.say(f"verifying on {sum(len(y) for _, y in split)} test images")
        checks = {
            "deploy_form": self._check(
                "deploy_form", verify.check_deploy, self.trained.model, run, split
            )
        }
        inputs = verify.sample_inputs(split)
        for fmt in FORMATS:
            loaded = _attempt(fmt, "loaded", fmt.load, self.folder / fmt.filename)
            checks[fmt.name] = self._check(
                fmt.name, verify.check_format, fmt.name, loaded, run, split, inputs
            )
        checks["test_accuracy"] = self._check(
            "test_accuracy",
            verify.check_test_accuracy,
            run,
            split,
            self.trained.test_accuracy,
            self.trained.precision,
        )
        self.deployed = deployed
        return checks

    def _check(self, name: str, check: Callable[..., dict[str, Any]], *args: Any) -> dict[str, Any]:
        result = verify.timed(lambda: check(*args))
        error = result.get("max_abs_error")
        shown = f"max |Δ| {error:.2e}" if error is not None else f"{result['recomputed']:.4f}"
        self.progress.say(f"  passed {name}: {shown} ({result['seconds']:.1f} s)")
        return result

    def finish(
        self,
        checks: dict[str, dict[str, Any]],
        latency: dict[str, Any],
        attrs: dict[str, Any],
        storage: str,
    ) -> None:
        """Latency, metrics.json, card.md and manifest.json."""
        spec, trained = self.trained.spec, self.trained
        assert self.deployed is not None, "verify() runs first"
        dev = check_device(latency["device"])
        threads = int(latency["threads"])
        x = torch.randn(int(latency["batch"]), *spec.input, device=dev)
        self.progress.say(f"measuring latency on {device_name(str(dev))}")
        ms = measure_module(self.deployed.to(dev), x, threads=threads)
        metrics = {
            "accuracy": trained.accuracy,
            "test_accuracy": checks["test_accuracy"]["recomputed"],
            **cost(spec).to_dict(),
            "latency_ms": ms,
            "latency_device": f"{device_name(str(dev))}; {threads} thread(s), batch "
            f"{latency['batch']}",
            "test_examples": checks["test_accuracy"]["test_examples"],
            "verification": checks,
        }
        write_json(self.folder / "metrics.json", metrics)
        facts = self._facts(metrics, attrs, storage)
        (self.folder / "card.md").write_text(model_card(facts, spec))
        info = {k: facts[k] for k in ("versions", "created", "study", "trial", "storage")}
        info |= {"search": facts["search"], "source": facts["source"]}
        config = dict(self.settings.config)
        if config.get("storage"):  # the manifest travels with the model: no passwords
            config["storage"] = shown_url(config["storage"])
        info |= {"preprocessing": facts["preprocessing"], "config": config}
        write_manifest(self.folder, info)

    def _facts(
        self, metrics: dict[str, Any], attrs: dict[str, Any], storage: str
    ) -> dict[str, Any]:
        s = self.settings
        assert self.mean_std is not None, "verify() runs first"
        return {
            "study": attrs["study"],
            "trial": self.choice.number,
            "storage": shown_url(storage),
            "created": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "versions": versions(),
            "epochs": self.trained.epochs,
            "source": self.trained.source,
            "search": {
                "how": self.choice.how,
                "objectives": [list(o) for o in attrs.get("objectives", [])],
                "budgets": self.choice.budgets,
            },
            "data": {
                "name": s.data.name,
                "val_fraction": s.data.val_fraction,
                "split_seed": s.split_seed,
            },
            "train": s.train.model_dump(mode="json") | ({"epochs": self.trained.epochs}),
            "preprocessing": {"input": list(self.trained.spec.input), **self.mean_std},
            "metrics": metrics,
            "verification": metrics["verification"],
        }


def _attempt(fmt: Format, what: str, step: Callable[..., Any], *args: Any) -> Any:
    """A format that cannot be written or loaded fails the export like a check does."""
    try:
        return step(*args)
    except Exception as e:  # torch's exporters raise many kinds; the first line says why
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise verify.CheckFailed(fmt.name, f"{fmt.filename} could not be {what}: {first}") from e


def storage_url(storage: str | Path) -> str:
    """A storage URL; a path to a SQLite file is taken as that file."""
    if isinstance(storage, Path) or ("://" not in storage and Path(storage).is_file()):
        return f"sqlite:///{storage}"
    return storage


def versions() -> dict[str, str]:
    """The versions an export was made with (the manifest and the card list them)."""
    out = {"python": platform.python_version(), "platform": platform.platform()}
    for name in ("blocknas", "torch", "torchvision", "onnx", "onnxruntime", "onnxscript"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out
