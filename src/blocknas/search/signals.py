"""Clean stops: SIGINT (Ctrl-C) and SIGTERM (``kill``, ``docker stop``, a Kubernetes pod
ending, ``blocknas jobs stop``) end a search without losing anything.

The first signal is only recorded: Tune's stopper sees it
(:class:`~blocknas.search.searcher.SearchStopper`) and stops
every trial gracefully, the searcher records the running trials as interrupted and queues
them again, and the driver then ends with the signal's exit status (130, 143). A second
signal stops at once (KeyboardInterrupt); the trials it leaves running are recovered by
``--resume`` like a killed driver's. Tune's own SIGINT handler is off
(``TUNE_DISABLE_SIGINT_HANDLER``): it prints Ray's resume hint, not blocknas's.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopRequest:
    """Whether (and by which signal) the user asked the search to stop."""

    def __init__(self) -> None:
        self.signum: int | None = None

    def __bool__(self) -> bool:
        return self.signum is not None

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum else ""

    @property
    def exit_code(self) -> int:
        """The shell's convention: 128 + the signal number (SIGINT 130, SIGTERM 143)."""
        return 128 + (self.signum or 0)

    def handle(self, signum: int, _frame: FrameType | None) -> None:
        if self.signum is not None:  # the second signal: stop now
            raise KeyboardInterrupt
        self.signum = signum


@contextmanager
def stop_signals(request: StopRequest) -> Iterator[StopRequest]:
    """SIGINT and SIGTERM recorded in ``request`` for the ``with`` block (only in the main
    thread, where Python delivers signals; elsewhere nothing changes)."""
    if threading.current_thread() is not threading.main_thread():
        yield request
        return
    before = {s: signal.signal(s, request.handle) for s in STOP_SIGNALS}
    try:
        yield request
    finally:
        for s, handler in before.items():
            signal.signal(s, handler)
