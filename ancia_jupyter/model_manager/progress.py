"""How far a model's download has come, told to whoever shows it.

``files.fetch`` measures each download with a ``Tracker``, which reports it, in order, to the ``Progress`` it
was handed and to every watcher (``watch``): a bar on the terminal (``TqdmBar`` with tqdm's text bar), a
progress widget in a notebook (``TqdmBar`` with ``tqdm.auto``), the chat panels' model drawers. Each report is
a ``Download``: total bytes (None while unknown), bytes done, the speed, and at the end ``done`` or ``failed``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from typing import IO, Any, Literal, Protocol

log = logging.getLogger(__name__)

REPORT_INTERVAL = 0.1  # seconds between two reports of one download; the first and the last always go
SPEED_WINDOW = 3.0  # the speed is what came in over the last few seconds


@dataclass(frozen=True)
class Download:
    """One report of a download: ``total`` and ``done`` in bytes, ``speed`` in bytes a second."""

    model_id: str
    file: str  # what is fetched, as a person reads it
    total: int | None
    done: int
    speed: float
    state: Literal["downloading", "done", "failed"] = "downloading"
    error: str | None = None

    @property
    def fraction(self) -> float | None:
        """How much is done, from 0 to 1; None while the size is not known."""
        if self.state == "done":
            return 1.0
        return min(1.0, self.done / self.total) if self.total else None

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "fraction": self.fraction}


class Progress(Protocol):
    """Shows a download: called with each of its reports, in order, the last one ``done`` or ``failed``."""

    def __call__(self, download: Download) -> None: ...


_lock = threading.Lock()
_watchers: list[Progress] = []
_active: dict[int, Download] = {}  # the downloads under way, by their tracker


def watch(listener: Progress) -> Callable[[], None]:
    """Tell ``listener`` about every download from now on (on the downloading thread: keep it short).
    Returns the function that stops it."""
    with _lock:
        _watchers.append(listener)

    def unwatch() -> None:
        with _lock:
            if listener in _watchers:
                _watchers.remove(listener)

    return unwatch


@contextmanager
def watching(listener: Progress, model_id: str | None = None) -> Iterator[None]:
    """``watch`` for the length of a ``with`` block, the downloads of ``model_id`` only when it is given."""
    def one(download: Download) -> None:
        if model_id is None or download.model_id == model_id:
            listener(download)

    unwatch = watch(one)
    try:
        yield
    finally:
        unwatch()


def active() -> list[Download]:
    """The downloads under way now, each as last reported (what a view that opens in the middle shows)."""
    with _lock:
        return list(_active.values())


class Tracker:
    """One download's measurements, reported at most every ``REPORT_INTERVAL`` (the first and last always)."""

    def __init__(self, model_id: str, file: str, progress: Progress | None = None, total: int | None = None) -> None:
        self._progress = progress
        self._samples: deque[tuple[float, int]] = deque()
        self._last_report = 0.0
        self._lock = threading.Lock()  # a poller thread and the downloading thread may both update
        self.download = Download(model_id, file, total, 0, 0.0)
        self._report(self.download)  # the speed is measured from the first count on, not from the set-up

    def update(self, done: int, total: int | None = None) -> None:
        """``done`` bytes so far (and the total, once known)."""
        with self._lock:
            if self.download.state != "downloading":
                return
            total = total or self.download.total
            self.download = replace(self.download, done=done, total=total, speed=self._sample(done))
            now = time.monotonic()
            if now - self._last_report < REPORT_INTERVAL:
                return
            download = self.download
        self._report(download)

    def finish(self, size: int | None = None) -> None:
        """The download is complete: ``size`` bytes (default: the total, else what was counted)."""
        with self._lock:
            if self.download.state != "downloading":
                return
            size = size if size is not None else self.download.total or self.download.done
            self.download = download = replace(self.download, done=size, total=size, state="done")
        self._report(download, last=True)

    def fail(self, error: str) -> None:
        with self._lock:
            if self.download.state != "downloading":
                return
            self.download = download = replace(self.download, state="failed", error=error, speed=0.0)
        self._report(download, last=True)

    def _sample(self, done: int) -> float:
        now = time.monotonic()
        self._samples.append((now, done))
        while len(self._samples) > 2 and now - self._samples[0][0] > SPEED_WINDOW:
            self._samples.popleft()
        first_time, first_done = self._samples[0]
        return (done - first_done) / (now - first_time) if now > first_time else 0.0

    def _report(self, download: Download, last: bool = False) -> None:
        self._last_report = time.monotonic()
        with _lock:
            if last:
                _active.pop(id(self), None)
            else:
                _active[id(self)] = download
            listeners = ([self._progress] if self._progress is not None else []) + list(_watchers)
        for listener in listeners:
            try:
                listener(download)
            except Exception:  # a view that fails must not fail the download
                log.warning("ancia: could not show a download's progress", exc_info=True)


@contextmanager
def tracking(model_id: str, file: str, progress: Progress | None = None,
             total: int | None = None) -> Iterator[Tracker]:
    """A ``Tracker`` for the block: it ends ``done`` when the block ends (unless the block finished it with the
    real size) and ``failed`` with the error's first line when the block raises."""
    tracker = Tracker(model_id, file, progress, total)
    try:
        yield tracker
    except BaseException as exc:
        tracker.fail((str(exc).strip().splitlines() or [type(exc).__name__])[0])
        raise
    tracker.finish()


class TqdmBar:
    """A download shown as a tqdm bar: size done and total, speed, time left. ``tqdm.auto.tqdm`` (the default)
    is a progress widget in a notebook and text elsewhere; pass ``tqdm.tqdm`` for a terminal."""

    def __init__(self, tqdm_class: Any = None, file: IO[str] | None = None) -> None:
        if tqdm_class is None:
            import tqdm.auto  # type: ignore[import-untyped]  # tqdm ships no type information

            tqdm_class = tqdm.auto.tqdm
        self._tqdm, self._file = tqdm_class, file
        self._bars: dict[tuple[str, str], Any] = {}

    def __call__(self, download: Download) -> None:
        key = (download.model_id, download.file)
        bar = self._bars.get(key)
        if bar is None:
            if download.state != "done" and not (download.total or download.done):
                return  # the bar comes with the size (a widget's length is set when it is made); none for nothing
            bar = self._bars[key] = self._tqdm(total=download.total, unit="B", unit_scale=True, unit_divisor=1024,
                                               desc=f"{download.model_id}: {download.file}", file=self._file,
                                               leave=True, dynamic_ncols=True)
        if download.total and bar.total != download.total:
            bar.reset(total=download.total)  # counts from 0 again: the update below brings it back
        if download.done != bar.n:
            bar.update(download.done - bar.n)
        if download.state == "failed":
            bar.set_postfix_str("failed")
        if download.state != "downloading":
            bar.close()
            del self._bars[key]
