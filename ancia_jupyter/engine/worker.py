"""One thread for all model work.

MLX state (weights, KV caches, streams) stays on the thread that made it, and the kernel's main thread
stays free for comm messages and ``ancia.stop()``. Jobs run in order; each hands back its result or its
exception through a Future.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any


class Worker:
    def __init__(self, name: str = "ancia-model") -> None:
        self._jobs: queue.Queue[tuple[Callable[[], Any], Future] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            fn, future = job
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(fn())
            except BaseException as exc:  # handed to whoever waits on the future
                future.set_exception(exc)

    def submit(self, fn: Callable[[], Any]) -> Future:
        future: Future = Future()
        if threading.current_thread() is self._thread:  # a job that submits a job runs it inline
            try:
                future.set_result(fn())
            except BaseException as exc:
                future.set_exception(exc)
            return future
        self._jobs.put((fn, future))
        return future

    def call(self, fn: Callable[[], Any]) -> Any:
        return self.submit(fn).result()

    @property
    def on_worker(self) -> bool:
        return threading.current_thread() is self._thread

    def close(self) -> None:
        self._jobs.put(None)
