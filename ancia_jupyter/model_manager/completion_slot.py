"""The model that completes code in cells: the completion's prompt cache, and a second local runtime beside the
resident chat model when the setting ``completion_model`` names another model.

A slot of its own rather than a second resident: it has no chats, no caches on disk and no answers holding
it for minutes. A completion is a few tokens long and the next keystroke cancels it, so unloading the slot
only tells the one in flight to stop at its next token and waits for it.

Completions share one prompt cache per model: a cell's prompt is the notebook above it and the cell's text,
so the next keystroke, the next cell and a cell further up all start with what the cache holds, and only
the new tokens are read. One completion runs at a time (the completion service cancels the older one), so
the cache is never used by two generations at once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from ..runtimes import Chunk, PromptCache, Runtime
from .catalog import Fim
from .scheduler import Scheduler

FIRST_TEXT_BUDGET = 0.08  # seconds a completion's first steps may run ahead of the answers' tokens


@dataclass(frozen=True)
class HeldCompletion:
    """A model held for one completion: what the completion service needs to write its prompt and stream."""

    model_id: str
    runtime: Runtime
    fim: Fim | None  # the catalog's fill-in-the-middle tokens; None: look for the usual ones in the vocabulary
    context_window: int
    slot: CompletionSlot

    def generate(self, prompt: list[int], params: dict[str, Any],
                 should_stop: Callable[[], bool] = lambda: False) -> Iterator[Chunk]:
        """Stream a completion on the model worker with the completion's prompt cache (see the slot)."""
        return self.slot.generate(self.model_id, self.runtime, prompt, params, should_stop)


class CompletionSlot:
    def __init__(self, scheduler: Scheduler, on_used: Callable[[], None] = lambda: None) -> None:
        self.scheduler = scheduler
        self.runtime: Runtime | None = None  # the completion model, when it is not the chat model
        self.model_id: str | None = None
        self._on_used = on_used  # a completion ended: the idle unload counts from now
        self._users = 0
        self._changing = False
        self._stopping = False  # an unload or a swap waits: completions in flight stop at their next token
        self._lock = threading.Condition()
        self._cache_key: tuple = ()
        self._cache = PromptCache()

    # -- the second runtime -----------------------------------------------------------------------------

    @contextmanager
    def hold(self, model_id: str, open_runtime: Callable[[], Runtime]) -> Iterator[Runtime]:
        """``model_id``'s runtime in the slot, loaded on the model worker if needed (the model it replaces is
        freed first), kept while the ``with`` lasts."""
        with self._lock:
            while True:
                self._lock.wait_for(lambda: not self._changing)
                if self.model_id == model_id and self.runtime is not None:
                    self._users += 1
                    load = False
                    break
                if not self._users:
                    self._changing, load = True, True
                    break
                self._stopping = True  # another completion model is in use: it stops, then goes
                self._lock.wait_for(lambda: not self._users)
                self._stopping = False
        if load:
            try:
                self.scheduler.call(lambda: self._swap(model_id, open_runtime))
            finally:
                with self._lock:
                    self._changing = False
                    self._users += self.model_id == model_id
                    self._lock.notify_all()
            if self.model_id != model_id or self.runtime is None:
                raise RuntimeError(f"The completion model {model_id} did not load.")
        runtime = self.runtime
        assert runtime is not None
        try:
            yield runtime
        finally:
            with self._lock:
                self._users -= 1
                self._lock.notify_all()
            self._on_used()

    def _swap(self, model_id: str, open_runtime: Callable[[], Runtime]) -> None:
        self._free()
        self.runtime, self.model_id = open_runtime(), model_id

    def unload(self, model_id: str | None = None) -> bool:
        """Free the slot's model (only if it is ``model_id``, when given) once the completion in flight, told
        to stop, has ended. Returns whether anything was freed."""
        with self._lock:
            if self.runtime is None or model_id not in (None, self.model_id):
                return False
            self._stopping = True
            self._lock.wait_for(lambda: not self._users and not self._changing)
            self._stopping = False
            if self.runtime is None:
                return False
            self._changing = True
        try:
            self.scheduler.call(self._free)
            return True
        finally:
            with self._lock:
                self._changing = False
                self._lock.notify_all()

    def _free(self) -> None:
        """On the model worker."""
        runtime, self.runtime, self.model_id = self.runtime, None, None
        if runtime is not None:
            self.drop_cache(runtime)
            runtime.unload()

    # -- generating -------------------------------------------------------------------------------------

    def generate(self, model_id: str, runtime: Runtime, prompt: list[int], params: dict[str, Any],
                 should_stop: Callable[[], bool]) -> Iterator[Chunk]:
        """Stream a completion of ``runtime`` on the model worker, between the tokens of the answers in
        progress. Its first steps, up to its first text, run as one short job, ahead of the answers' next
        tokens but for at most ``FIRST_TEXT_BUDGET`` seconds, since the user waits for that text; the rest
        is stepped in turn with the answers. A completion that ends early ends by ``should_stop`` (at most a
        token later), so the cache keeps what it read; one left any other way (an error) drops the cache,
        which may not match it."""
        cache = self._take_cache((model_id, id(runtime)))
        finished = False
        stream: Iterator[Chunk] | None = None

        def stop() -> bool:
            return self._stopping or should_stop()

        def first_steps() -> list[Chunk]:  # on the model worker
            nonlocal stream
            stream = runtime.stream(prompt, params, cache=cache, should_stop=stop)
            deadline, chunks = time.monotonic() + FIRST_TEXT_BUDGET, []
            for chunk in stream:
                chunks.append(chunk)
                if chunk.text.strip() or chunk.finish_reason or time.monotonic() > deadline or stop():
                    break
            return chunks

        try:
            for chunk in self.scheduler.call(first_steps):
                finished = bool(chunk.finish_reason)
                yield chunk
            if not finished and stream is not None:
                going: Iterator[Chunk] = stream
                stream = None
                for chunk in self.scheduler.generate(lambda: going, urgent=True):  # stepped before the chat from here
                    finished = bool(chunk.finish_reason)
                    yield chunk
        finally:
            if stream is not None:  # left before the rest was handed to the worker's turns
                self.scheduler.call(getattr(stream, "close", lambda: None))
            if not finished:
                self.drop_cache()

    def _take_cache(self, key: tuple) -> PromptCache:
        with self._lock:
            if key != self._cache_key:
                self._cache_key, self._cache = key, PromptCache()
            return self._cache

    def drop_cache(self, runtime: Runtime | None = None) -> None:
        """Its model goes (``runtime``; None: whichever), or the cache may not match what it holds: the next
        completion reads its prompt afresh."""
        with self._lock:
            if runtime is None or self._cache_key[1:] == (id(runtime),):
                self._cache_key, self._cache = (), PromptCache()
