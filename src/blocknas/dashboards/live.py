"""The studies the dashboard follows: each read incrementally while its search runs.

A :class:`LiveStudy` keeps a study's :class:`~blocknas.search.reading.StudyReader` (each poll
fetches only trials newer than those seen and those still unfinished, and builds rows only for
those) and its front, updated from the rows that changed: the old front and the new trials are
compared, not the whole study. :class:`Studies` opens each storage once, read-only, and reads
every study in the background when the server starts, so the first page finds them read.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any, TypeVar, cast

import pandas as pd

from blocknas.search.reading import StudyReader
from blocknas.search.results import pareto_front

log = logging.getLogger(__name__)
T = TypeVar("T")


class LiveStudy:
    """One study as the dashboard follows it: its frame and its front, kept up to date."""

    def __init__(self, storage: Any, name: str) -> None:
        self.reader = StudyReader(storage, name)
        self._lock = threading.Lock()  # requests come on several threads; a reader is not safe
        self._version = 0  # the reader's version the front was computed for
        self._front: pd.DataFrame | None = None
        self.compared = 0  #: rows the last front update compared
        self._derived: dict[str, tuple[int, Any]] = {}  # name → (version, value)

    def frame(self) -> pd.DataFrame:
        """The study's results now (:func:`~blocknas.load_results`'s frame)."""
        with self._lock:
            df = self.reader.frame()
            if self.reader.version != self._version:
                self._update_front(df)
                self._version = self.reader.version
            return df

    def front(self) -> pd.DataFrame:
        """:func:`~blocknas.pareto_front` of the frame as of the last :meth:`frame` (no second
        poll of the database: a refresh calls :meth:`frame` just before)."""
        if self._front is None:
            self.frame()
        assert self._front is not None  # set by frame()
        return self._front

    def derived(self, name: str, compute: Callable[[pd.DataFrame], T]) -> T:
        """``compute(frame)``, computed again only when the frame has changed (for what takes
        seconds on a large study, like the parameter importance)."""
        df = self.frame()
        with self._lock:
            version, value = self._derived.get(name, (-1, None))
        if version != self.reader.version:
            value = compute(df)
            with self._lock:
                self._derived[name] = (self.reader.version, value)
        return cast(T, value)

    @property
    def version(self) -> int:
        """Counts the frames that differed from the one before."""
        return self.reader.version

    def _update_front(self, df: pd.DataFrame) -> None:
        """A trial joins the front only if it is new or changed, and leaves it only if a newer
        one dominates it; so the front of (old front + changed rows) is the new front, unless a
        front trial itself changed (then the whole study is compared again)."""
        changed = self.reader.changed
        if self._front is None or changed & set(self._front.number):
            rows = df
        else:
            rows = df[df.number.isin(changed | set(self._front.number))]
        self.compared = len(rows)
        self._front = pareto_front(rows) if df.attrs.get("objectives") else rows.iloc[:0]


class Studies:
    """The studies of the storages, by key (``storage index:study name``).

    Each storage is opened once, read-only; each study is followed by one :class:`LiveStudy`.
    """

    def __init__(self, storages: Sequence[str]) -> None:
        self.storages = list(storages)
        self._opened: dict[int, Any] = {}
        self._live: dict[str, LiveStudy] = {}
        self._lock = threading.Lock()  # the server answers requests on several threads

    def _open_storage(self, index: int) -> Any:
        from blocknas.search.study import storage_for

        with self._lock:
            if index not in self._opened:
                self._opened[index] = storage_for(self.storages[index], create=False)
            return self._opened[index]

    def keys(self) -> list[str]:
        import optuna

        out = []
        for i in range(len(self.storages)):
            names = optuna.get_all_study_names(self._open_storage(i))
            out += [f"{i}:{name}" for name in sorted(names)]
        return out

    def _locate(self, key: str) -> tuple[int, str]:
        """(storage index, study name) of ``key``; a one-line error for a study not there."""
        import optuna

        index, _, name = key.partition(":")
        known = index.isdigit() and int(index) < len(self.storages) and name
        if known and name in optuna.get_all_study_names(self._open_storage(int(index))):
            return int(index), name
        raise ValueError(f"no study {key!r}; studies: {', '.join(self.keys())}")

    def where(self, key: str) -> tuple[str, str]:
        """(storage URL, study name) of ``key``."""
        index, name = self._locate(key)
        return self.storages[index], name

    def live(self, key: str) -> LiveStudy:
        """The study ``key``, opened on first use and kept."""
        with self._lock:
            study = self._live.get(key)
        if study is None:
            index, name = self._locate(key)
            opened = LiveStudy(self._open_storage(index), name)
            with self._lock:
                study = self._live.setdefault(key, opened)
        return study

    def frame(self, key: str) -> pd.DataFrame:
        """The study's results now (its trials as :func:`~blocknas.load_results` gives them)."""
        return self.live(key).frame()

    def warm(self) -> threading.Thread:
        """Read every study in a background thread (the first page then finds them read)."""

        def read_all() -> None:
            try:
                for key in self.keys():
                    self.frame(key)
            except Exception as e:  # a page shows the error when it is opened
                log.warning("blocknas dashboard: could not read the studies yet: %s", e)

        thread = threading.Thread(target=read_all, name="blocknas-dashboard-warm", daemon=True)
        thread.start()
        return thread
