"""Writes the database refused, kept in memory and written again as soon as it accepts them.

A full disk, or another process holding the write lock past the busy timeout, must not lose an answer: the
answer ends (with one line saying why), and what it said waits here, in order, to be written every few
seconds in the background, before the next question is stored, and when the kernel exits. A write whose
chat was deleted meanwhile is dropped: there is nothing left to write it into.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

from ..errors import NotFoundError, StoreError

T = TypeVar("T")
RETRY_EVERY = 2.0  # seconds between attempts while some writes wait


class PendingWrites:
    def __init__(self, retry_every: float = RETRY_EVERY) -> None:
        self.retry_every = retry_every
        self._writes: list[Callable[[], object]] = []
        self._lock = threading.RLock()
        self._timer: threading.Timer | None = None
        self._closed = False

    def __len__(self) -> int:
        return len(self._writes)

    def write(self, write: Callable[[], T]) -> T:
        """Write now, after the writes still waiting (so the chat keeps its order). When the database
        refuses, ``write`` waits with them and the StoreError is raised for the caller to report."""
        with self._lock:
            if self._writes and not self.flush():
                self._keep(write)
                raise StoreError("Earlier writes are still waiting for the database; this one waits after them.")
            try:
                return write()
            except StoreError:
                self._keep(write)
                raise

    def flush(self) -> bool:
        """Write what waits, in order, until the database refuses; whether nothing waits any more."""
        with self._lock:
            while self._writes:
                try:
                    self._writes[0]()
                except NotFoundError:  # its chat or message was deleted meanwhile
                    pass
                except StoreError:
                    self._schedule()
                    return False
                self._writes.pop(0)
            return True

    def _keep(self, write: Callable[[], object]) -> None:
        self._writes.append(write)
        self._schedule()

    def _schedule(self) -> None:
        if self._closed or (self._timer is not None and self._timer.is_alive()):
            return
        self._timer = threading.Timer(self.retry_every, self._retry)
        self._timer.daemon = True
        self._timer.start()

    def _retry(self) -> None:
        self._timer = None
        self.flush()

    def close(self) -> bool:
        """A last attempt, at the kernel's end; whether everything was written."""
        with self._lock:
            self._closed = True
            if self._timer is not None:
                self._timer.cancel()
            return self.flush()
