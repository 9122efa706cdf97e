"""Let a dispatch finish the message in hand when asked to stop (SIGTERM, SIGINT / Ctrl-C).

Inside ``deferred_interrupts()`` the two signals are noted instead of acted on; the dispatch checks
``requested`` between messages, records the outcome of the message in hand, releases the rest and
leaves. On the way out the previous handlers come back and the noted signal is raised again, so
the caller (the CLI, Dagster) stops exactly as it would have, only with the ledger consistent.
Signal handlers can only be set from the main thread; elsewhere nothing is deferred.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@dataclass
class Interrupts:
    signum: int | None = None

    @property
    def requested(self) -> bool:
        return self.signum is not None

    def note(self, signum: int, frame: FrameType | None) -> None:
        if self.signum is None:
            self.signum = signum


@contextmanager
def deferred_interrupts() -> Iterator[Interrupts]:
    interrupts = Interrupts()
    if threading.current_thread() is not threading.main_thread():
        yield interrupts
        return
    previous = {signum: signal.getsignal(signum) for signum in _SIGNALS}
    for signum in _SIGNALS:
        signal.signal(signum, interrupts.note)
    try:
        yield interrupts
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
        if interrupts.signum is not None:
            signal.raise_signal(interrupts.signum)
