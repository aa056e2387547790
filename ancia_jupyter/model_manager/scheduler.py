"""The model worker: one thread that runs the model, stepping every generation a token at a time.

Model state (MLX arrays, a llama.cpp context) stays on the thread that made it, so all model work happens
here. It is a small scheduler rather than a queue of whole jobs: each generation in progress is a runtime's
``stream`` iterator, advanced one step (a token, or a slice of a long prompt) per turn, in turn with the
others, so two chats answering at once share the model fairly. A short job (a load, a title, a completion)
runs before the next step, between two tokens of a long answer, instead of waiting for the answer's end.

The worker only steps: whoever asked for a generation reads its chunks from a queue on its own thread, where
it emits events and saves, so no view and no database write ever runs on the model's thread.
"""

from __future__ import annotations

import collections
import queue
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from typing import Any, TypeVar

from ..runtimes import Chunk

T = TypeVar("T")
MAX_GENERATIONS = 4  # generations stepped together; more wait their turn to start
HOUSEKEEPING_AFTER = 1.0  # seconds without work before housekeeping runs: never between a question and the next

_END = object()


class Generation:
    """The asker's end of one generation: iterate it for the runtime's chunks, on any thread. Leaving the
    loop early (``break``, an exception, ``close()``) tells the worker to close the runtime's stream there,
    on the model's thread, at its next turn."""

    def __init__(self, start: Callable[[], Iterator[Chunk]], urgent: bool = False) -> None:
        self._start = start
        self.urgent = urgent
        self._stream: Iterator[Chunk] | None = None
        self._chunks: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.cancelled = threading.Event()

    def __iter__(self) -> Iterator[Chunk]:
        try:
            while (item := self._chunks.get()) is not _END:
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            self.close()

    def close(self) -> None:
        self.cancelled.set()

    # -- on the worker --------------------------------------------------------------------------------

    def step(self) -> bool:
        """Advance one step; False once the generation is over (its end or error handed to the asker)."""
        try:
            if self.cancelled.is_set():
                raise GeneratorExit
            if self._stream is None:
                self._stream = iter(self._start())
            chunk = next(self._stream)
        except (StopIteration, GeneratorExit):
            self._finish(_END)
            return False
        except BaseException as exc:  # handed to the asker, who says what went wrong
            self._finish(exc)
            return False
        if chunk.text or chunk.finish_reason or chunk.tool_calls:  # an empty chunk: a step of prompt reading
            self._chunks.put(chunk)
        return True

    def _finish(self, item: Any) -> None:
        stream, self._stream = self._stream, None
        if stream is not None and hasattr(stream, "close"):
            try:
                stream.close()  # the runtime's own clean-up (a sampler, a sequence slot) runs here
            except BaseException as exc:
                item = item if item is not _END else exc
        self._chunks.put(item)
        if item is not _END:
            self._chunks.put(_END)


class Scheduler:
    """The model's thread: short jobs first, then one step of each generation in turn."""

    def __init__(self, name: str = "ancia-model", max_generations: int = MAX_GENERATIONS) -> None:
        self.max_generations = max_generations
        self._jobs: collections.deque[tuple[Callable[[], Any], Future]] = collections.deque()
        self._waiting: collections.deque[Generation] = collections.deque()  # not started: over the limit
        self._running: collections.deque[Generation] = collections.deque()
        self._idle: dict[object, tuple[Callable[[], Any], float]] = {}  # housekeeping, its quiet, by key
        self._last_work = time.monotonic()
        self._wake = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    @property
    def on_worker(self) -> bool:
        return threading.current_thread() is self._thread

    def submit(self, fn: Callable[[], T]) -> Future:
        """Run ``fn`` on the model's thread before the next generation step; its result or exception comes
        back through the Future. A job that submits a job runs it at once."""
        future: Future = Future()
        if self.on_worker:
            _settle(future, fn)
            return future
        with self._wake:
            if self._closed:
                raise RuntimeError("The model worker has stopped.")
            self._jobs.append((fn, future))
            self._wake.notify()
        return future

    def call(self, fn: Callable[[], T]) -> T:
        return self.submit(fn).result()

    def generate(self, start: Callable[[], Iterator[Chunk]], urgent: bool = False) -> Generation:
        """Step ``start()``'s stream on the model's thread; iterate what comes back for its chunks. An
        ``urgent`` one (short, with a person waiting on each token) steps before the others."""
        generation = Generation(start, urgent)
        with self._wake:
            if self._closed:
                raise RuntimeError("The model worker has stopped.")
            self._waiting.append(generation)
            self._wake.notify()
        return generation

    def when_idle(self, key: object, fn: Callable[[], Any], quiet: float = HOUSEKEEPING_AFTER) -> None:
        """Run ``fn`` on the model's thread once no job and no generation has waited for ``quiet`` seconds
        (housekeeping such as saving a prompt cache to disk, kept out of the way of a conversation going on;
        0: as soon as none waits, for work the next question likely needs); a later ``fn`` of the same
        ``key`` replaces one not run yet. Its errors are dropped: housekeeping must never break an answer."""
        with self._wake:
            if self._closed:
                return
            self._idle[key] = (fn, quiet)
            self._wake.notify()

    def claim_idle(self, key: object) -> Callable[[], Any] | None:
        """Take back the housekeeping of ``key`` not run yet, to run it now in a job of one's own."""
        with self._wake:
            entry = self._idle.pop(key, None)
        return entry[0] if entry else None

    def forget_idle(self, matches: Callable[[object], bool]) -> None:
        """Drop the housekeeping not run yet whose key ``matches``."""
        with self._wake:
            self._idle = {key: entry for key, entry in self._idle.items() if not matches(key)}

    def run_idle_now(self) -> None:
        """On the model's thread: run the housekeeping asked for so far, now (before an unload)."""
        with self._wake:
            pending, self._idle = [fn for fn, _ in self._idle.values()], {}
        for fn in pending:
            try:
                fn()
            except Exception:
                pass

    def settle(self, timeout: float | None = None) -> bool:
        """Wait until the housekeeping asked for so far has run; whether it did within ``timeout``."""
        done = threading.Event()
        self.when_idle(object(), done.set)
        return done.wait(timeout)

    def close(self) -> None:
        """Stop after the jobs and the housekeeping already asked for; generations in progress end as
        cancelled."""
        with self._wake:
            self._closed = True
            for generation in (*self._waiting, *self._running):
                generation.close()
            self._wake.notify()

    def _run(self) -> None:
        while True:
            job: tuple[Callable[[], Any], Future] | None = None
            generation: Generation | None = None
            housekeeping: Callable[[], Any] | None = None
            with self._wake:
                while not (self._jobs or self._waiting or self._running or self._closed):
                    wait = self._housekeeping_in()
                    if wait is not None and wait <= 0:
                        break
                    self._wake.wait(wait)
                if self._jobs:
                    job = self._jobs.popleft()
                else:
                    while self._waiting and len(self._running) < self.max_generations:
                        self._running.append(self._waiting.popleft())
                    generation = self._pick()
                    if generation is None and self._idle:
                        housekeeping = self._due_housekeeping()
                    elif generation is None and self._closed:
                        return
            if housekeeping is not None:
                try:
                    housekeeping()
                except Exception:  # housekeeping never breaks the worker
                    pass
                continue
            if job is not None:
                fn, future = job
                if future.set_running_or_notify_cancel():
                    _settle(future, fn)
            elif generation is not None and generation.step():
                with self._wake:
                    self._running.append(generation)  # to the back: the others step first
            self._last_work = time.monotonic()  # quiet is counted from the end of the last work

    def _pick(self) -> Generation | None:
        """The generation to step now: an urgent one (a completion someone is typing for) first, else the
        next in turn."""
        urgent = next((g for g in self._running if g.urgent), None)
        if urgent is not None:
            self._running.remove(urgent)
            return urgent
        return self._running.popleft() if self._running else None

    def _housekeeping_in(self) -> float | None:
        """Seconds until the next housekeeping is due (<= 0: now), None when there is none."""
        if not self._idle:
            return None
        return min(quiet for _, quiet in self._idle.values()) - self._quiet_for()

    def _due_housekeeping(self) -> Callable[[], Any]:
        """The housekeeping to run now: the first whose quiet has passed (all of them when closing)."""
        quiet_for = self._quiet_for()
        key = next((k for k, (_, quiet) in self._idle.items() if quiet <= quiet_for or self._closed),
                   next(iter(self._idle)))
        return self._idle.pop(key)[0]

    def _quiet_for(self) -> float:
        return time.monotonic() - self._last_work


def _settle(future: Future, fn: Callable[[], Any]) -> None:
    try:
        future.set_result(fn())
    except BaseException as exc:  # handed to whoever waits on the future
        future.set_exception(exc)
