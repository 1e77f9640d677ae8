"""The Optuna study of a search: creation, samplers with budget constraints, resume.

The study is the search's record and its source of truth: every candidate, launched or rejected
over budget, is a trial in it. Constraint values (``value − limit`` per budget, ≤ 0 is feasible)
are set on each trial with ``Trial.set_constraint``, which the samplers read so that they learn
from infeasible candidates too, and repeated in its ``constraints`` user attribute.
"""

from __future__ import annotations

import os
import re
import time
import warnings
from collections.abc import Sequence
from contextlib import closing
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

import optuna
import sqlalchemy

from blocknas.metrics import RENAMED
from blocknas.search.config import SearchConfig

#: study user attribute: numbers of the trials a stopped driver left running (each ended FAIL,
#: read as ``interrupted``, and queued again if it had been launched)
INTERRUPTED = "interrupted"
#: trial user attribute: the searcher's record of the trial (spec, costs, state of its
#: training), one attribute so that each update is one storage transaction
RECORD_ATTR = "record"


class HasUserAttrs(Protocol):
    """A trial as Optuna gives it, frozen or running, or as results read it."""

    @property
    def user_attrs(self) -> dict[str, Any]: ...


class HasNumber(HasUserAttrs, Protocol):
    """A trial, frozen or running, as :func:`mark_interrupted` reads it."""

    @property
    def number(self) -> int: ...

    @property
    def params(self) -> dict[str, Any]: ...


def record(trial: HasUserAttrs) -> dict[str, Any]:
    """A trial's record: its user attributes with the searcher's packed ``record`` spread out
    (attributes set apart, like ``warm_start`` or ``retry_of`` given when a trial is queued,
    and every attribute of a study written before the record was packed, read as they are)."""
    attrs = trial.user_attrs
    packed = attrs.get(RECORD_ATTR)
    if not isinstance(packed, dict):
        return attrs
    return {k: v for k, v in attrs.items() if k != RECORD_ATTR} | packed


def make_sampler(config: SearchConfig) -> optuna.samplers.BaseSampler:
    """The configured sampler, seeded.

    Budgets reach the samplers that handle constraints (NSGA-II, TPE, GP) through each trial's
    ``set_constraint`` values, which the searcher writes; random sampling ignores them.
    """
    s = config.search
    if s.sampler == "nsga2":
        kwargs: dict[str, Any] = {"population_size": s.population} if s.population else {}
        return optuna.samplers.NSGAIISampler(seed=s.seed, **kwargs)
    if s.sampler == "tpe":
        return tpe_sampler(s.seed)
    if s.sampler == "gp":
        return optuna.samplers.GPSampler(seed=s.seed)
    return optuna.samplers.RandomSampler(seed=s.seed)


def tpe_sampler(seed: int) -> optuna.samplers.TPESampler:
    """Multi-objective TPE, the default: it learns from every finished trial. Complete ones rank
    by non-dominated sorting; pruned ones (dominated at a rung) and rejected ones (over budget:
    their constraint values) join the "bad" side, so the sampler moves away from what was
    stopped or refused. Multivariate with groups, because the space is define-by-run (a
    layer's ``groups`` exists only for some blocks); a constant liar for trials still running,
    so concurrent suggestions differ."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.TPESampler(
            seed=seed, multivariate=True, group=True, constant_liar=True
        )


def _rdb(url: str, create: bool, tries: int = 5) -> optuna.storages.RDBStorage:
    """Optuna's RDB storage. Two searches creating the tables of a new database at the same
    moment collide (PostgreSQL: a duplicate type); the later one retries once the first is done."""
    for attempt in range(tries - 1 if create else 0):
        try:
            return optuna.storages.RDBStorage(url, skip_table_creation=not create)
        except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.ProgrammingError):
            time.sleep(0.5 * (attempt + 1))
    return optuna.storages.RDBStorage(url, skip_table_creation=not create)  # errors go up


_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_PASSWORD = re.compile(r"(://[^:/@]+:)(.+)@")  # user:password@ of a URL


def expand_url(url: str) -> str:
    """``${VAR}`` in a storage URL replaced from the environment (a password kept out of
    configs); a variable that is not set is a one-line error naming it.

    >>> import os; os.environ["BLOCKNAS_DOC_PW"] = "s3"
    >>> expand_url("postgresql+psycopg://me:${BLOCKNAS_DOC_PW}@db:5432/nas")
    'postgresql+psycopg://me:s3@db:5432/nas'
    """

    def value(m: re.Match[str]) -> str:
        if m.group(1) not in os.environ:
            raise ValueError(f"storage: ${{{m.group(1)}}} is not set in the environment")
        return quote(os.environ[m.group(1)], safe="")

    return _VAR.sub(value, url)


def shown_url(url: str) -> str:
    """A storage URL as it may be printed or stored: a literal password masked, ``${VAR}`` kept.

    >>> shown_url("postgresql+psycopg://me:s3@db:5432/nas")
    'postgresql+psycopg://me:***@db:5432/nas'
    >>> shown_url("postgresql+psycopg://me:${PGPASS}@db/nas")
    'postgresql+psycopg://me:${PGPASS}@db/nas'
    """

    def mask(m: re.Match[str]) -> str:
        secret = m.group(2) if _VAR.fullmatch(m.group(2)) else "***"
        return f"{m.group(1)}{secret}@"

    return _PASSWORD.sub(mask, url, count=1)


def storage_for(url: str, *, create: bool = True) -> optuna.storages.BaseStorage:
    """An RDB storage; a search's SQLite file in WAL mode.

    ``create=True`` (a search) makes a SQLite file's directory and the tables as needed, and
    puts the file in WAL mode (readers then never block it); ``create=False`` (reading results,
    the dashboard, reports) requires an existing Optuna storage and changes nothing in it.
    """
    shown = shown_url(url)
    url = expand_url(url)
    path = sqlite_path(url)
    sqlite = path is not None
    if path is not None:
        if create:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        elif path not in ("", ":memory:") and not Path(path).is_file():
            raise ValueError(f"no study storage at {path} (the search has not run, or wrong path)")
        check_sqlite(url)
    try:
        if not create and not _stamped(url):
            # a search is creating it: opening it now would stamp its schema version too, and
            # the search's own stamp would then fail (SQLite: a UNIQUE constraint; PostgreSQL:
            # a duplicate type), or the reader's would: wait instead
            where = shown if path is None else path
            raise ValueError(f"{where} is not an Optuna study storage (or is being created)")
        storage = _rdb(url, create)
    except (ImportError, ModuleNotFoundError) as e:
        raise ValueError(
            f"storage {shown} needs a driver: {e} (pip install 'blocknas[postgres]')"
        ) from None
    except sqlalchemy.exc.OperationalError as e:
        reason = str(e.orig or e).strip().splitlines()[0] if str(e.orig or e).strip() else ""
        raise ValueError(f"cannot open the study storage {shown}: {reason}") from None
    except optuna.exceptions.StorageInternalError:
        raise ValueError(f"{shown} is not an Optuna study storage") from None
    except sqlalchemy.exc.ArgumentError:  # "runs/study.db", " ": not a database URL at all
        raise ValueError(
            f"storage {shown!r} is not a database URL; give e.g. sqlite:///runs/NAME/study.db "
            "or postgresql+psycopg://user:${PGPASSWORD}@host:5432/db"
        ) from None
    if sqlite and create:  # a reader never changes the file, not even its journal mode
        _fast_sqlite(storage)
    return storage


def sqlite_path(url: str) -> str | None:
    """The file of a SQLite storage URL (``""`` or ``:memory:`` for none); None for others."""
    return url.removeprefix("sqlite:///").split("?")[0] if url.startswith("sqlite:///") else None


def check_sqlite(url: str) -> None:
    """Refuse a SQLite study file that exists but is damaged (truncated, garbled), reading it
    only: Optuna would fail on it later, mid-read, or write into it. One line naming the file;
    nothing for other storages, or a file not there yet."""
    import sqlite3

    path = sqlite_path(url)
    if not path or path == ":memory:" or not Path(path).is_file() or not Path(path).stat().st_size:
        return
    try:
        with closing(sqlite3.connect(f"file:{quote(path)}?mode=ro", uri=True)) as conn:
            problems = [str(row[0]) for row in conn.execute("PRAGMA quick_check(1)")]
    except sqlite3.OperationalError:
        return  # locked or not readable: opening it says which
    except sqlite3.DatabaseError as e:  # not a database, malformed
        problems = [str(e)]
    if problems != ["ok"]:
        lines = [line for line in problems[0].splitlines() if not line.startswith("***")]
        raise ValueError(
            f"{path}: not a readable study database (truncated or corrupt: "
            f"{(lines or ['?'])[0]}); it was left as it is"
        )


def _stamped(url: str) -> bool:
    """Whether a storage holds a finished Optuna schema (its version row), read only: a SQLite
    file through sqlite3 (opening it with SQLAlchemy could create it), a server through one
    connection (a table a search is still creating is not visible to it until committed)."""
    path = sqlite_path(url)
    if path is not None:
        import sqlite3

        if path in ("", ":memory:"):
            return True  # a new, empty database each time: nothing else creates it
        try:
            with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
                return bool(conn.execute("SELECT count(*) FROM alembic_version").fetchone()[0])
        except sqlite3.Error:
            return False
    engine = sqlalchemy.create_engine(url)
    try:
        with engine.connect() as conn:
            if not sqlalchemy.inspect(conn).has_table("alembic_version"):
                return False
            rows = conn.execute(sqlalchemy.text("SELECT count(*) FROM alembic_version"))
            return bool(rows.scalar())
    finally:
        engine.dispose()


def _fast_sqlite(storage: optuna.storages.RDBStorage) -> None:
    """WAL journal, fsync at checkpoints only: a candidate's ~30 sampled parameters, its
    record and its tell are each a transaction, and this halves their cost. The file stays
    consistent after a crash; a power loss may drop the last transactions, which ``--resume``
    redoes."""
    from sqlalchemy import event

    def pragmas(conn: Any, _record: Any) -> None:
        cursor = conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    event.listen(storage.engine, "connect", pragmas)
    storage.engine.dispose()  # connections opened before the listener: reopen with it


def open_study(
    config: SearchConfig,
    *,
    resume: bool,
    storage: optuna.storages.BaseStorage | None = None,
) -> optuna.Study:
    """Create the search's study, or load it with ``resume=True``.

    A study that already exists without ``resume`` is an error (no data is overwritten);
    ``resume`` of a study that does not exist yet simply starts it. ``storage``: the config's,
    when already open.
    """
    url = config.storage_url()
    storage = storage or storage_for(url)
    names = {s.study_name for s in optuna.get_all_study_summaries(storage)}
    if config.name in names and not resume:
        raise ValueError(
            f"study {config.name!r} already exists in {url}; pass --resume to continue it, or "
            "change `name:` in the config"
        )
    directions = [o.direction or "maximize" for o in config.objectives]
    study = optuna.create_study(
        study_name=config.name,
        storage=storage,
        directions=directions,
        sampler=make_sampler(config),
        load_if_exists=True,
    )
    wanted = [o.model_dump() for o in config.objectives]
    recorded = study.user_attrs.get("objectives")
    same_directions = list(study.directions) == [
        optuna.study.StudyDirection[d.upper()] for d in directions
    ]
    if not same_directions or (recorded is not None and _renamed(recorded) != wanted):
        raise ValueError(
            f"study {config.name!r} in {url} was created with other objectives; "
            "change `name:` to start a new study"
        )
    study.set_user_attr("objectives", wanted)
    study.set_user_attr("budgets", config.budgets.limits())
    study.set_user_attr("planned_trials", config.search.trials)  # what "done 12/40" counts to
    recorded_config = config.model_dump(mode="json")  # shown by reports, read by exports
    recorded_config["storage"] = shown_url(url)
    study.set_user_attr("config", recorded_config)
    return study


def _renamed(objectives: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Objectives a v1 study recorded, under their v2 names (``val_accuracy`` → ``accuracy``)."""
    return [o | {"metric": RENAMED.get(o.get("metric", ""), o.get("metric"))} for o in objectives]


def recover_interrupted(study: optuna.Study) -> int:
    """Trials left RUNNING by a driver that died (its lease was taken over): recorded as
    interrupted and queued again (:func:`mark_interrupted`). Returns how many."""
    orphans = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
    mark_interrupted(study, orphans)
    return len(orphans)


def mark_interrupted(
    study: optuna.Study, trials: Sequence[HasNumber]
) -> list[optuna.trial.FrozenTrial]:
    """Record ``trials`` as interrupted and queue each launched one's architecture again, so
    nothing completed is repeated and nothing interrupted is lost; the retry resumes from the
    interrupted trial's checkpoint.

    Optuna has no interrupted state: the trial ends FAIL and the study lists it (user attr
    ``interrupted``), which results read as the state ``interrupted``. A queued retry carries
    ``retry_of`` (the trial it retries) and ``resume_from`` (its checkpoint) in its attributes.
    """
    if not trials:
        return []
    known = list(study.user_attrs.get(INTERRUPTED, []))
    study.set_user_attr(INTERRUPTED, known + [t.number for t in trials])
    told = []
    for t in trials:
        told.append(study.tell(t.number, state=optuna.trial.TrialState.FAIL))
        attrs = record(t)
        if attrs.get("launched"):
            retry = {"retry_of": t.number, "resume_from": attrs.get("checkpoint")}
            study.enqueue_trial(t.params, user_attrs=retry, skip_if_exists=False)
    return told


def interrupted(study: optuna.Study) -> set[int]:
    """Numbers of the trials a stopped driver interrupted."""
    return {int(n) for n in study.user_attrs.get(INTERRUPTED, [])}


def finished_launched(study: optuna.Study) -> int:
    """Trials that were trained and ended (complete, pruned or failed), not counting trials that
    a dead driver interrupted: what ``search.trials`` counts."""
    done = (
        optuna.trial.TrialState.COMPLETE,
        optuna.trial.TrialState.PRUNED,
        optuna.trial.TrialState.FAIL,
    )
    skip = interrupted(study)
    return sum(
        1
        for t in study.get_trials(deepcopy=False, states=done)
        if record(t).get("launched") and t.number not in skip
    )
