"""The one owner of what is loaded: the model worker, the resident local model, its chats' prompt caches
(``chat_caches.py``), the connections to server models, and the idle unload.

One local model is resident at a time; it runs on the model worker (``scheduler.py``), which steps every
generation token by token. A model on a server is a connection, not a resident: its answers are network I/O
and stream on the asker's thread, never on the worker, so any number of them can wait on their servers
while the local model answers. Answers hold the model they use (``hold``): the model they hold is never
unloaded or switched under them, and the idle unload counts from the moment the last one lets go.

Inline completion uses the resident model when it is the completion model; another completion model lives
beside it in ``completion`` (``completion_slot.py``), freed with it and by the same idle unload.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from ..runtimes import Chunk, Runtime
from .chat_caches import ChatCaches
from .completion_slot import CompletionSlot
from .disk_caches import DiskCaches
from .scheduler import Scheduler

StateListener = Callable[[str, "str | None"], None]  # (state, the local model's id)


class ResidentModel:
    def __init__(self, keep_alive: Callable[[], int], on_state: StateListener = lambda state, model: None,
                 disk: DiskCaches | None = None) -> None:
        self.scheduler = Scheduler()
        self.caches = ChatCaches(self.scheduler, disk)  # in memory, and on disk across kernel restarts
        self.completion = CompletionSlot(self.scheduler, self._completion_used)
        self.runtime: Runtime | None = None  # the local model
        self.model_id: str | None = None
        self.state = "not_loaded"  # not_loaded, loading, ready
        self.servers: dict[str, Runtime] = {}  # server models by id: connections, not residents
        self._keep_alive = keep_alive
        self._on_state = on_state
        self._holds: dict[str | None, int] = {}  # model id -> answers holding it (None: any server model)
        self._reserved = 0  # answers asked for that have not taken their model yet
        self._changing = False  # a local load or unload is under way
        self._lock = threading.Condition()
        self._idle_timer: threading.Timer | None = None
        self.last_used = time.monotonic()

    # -- holding a model for an answer ------------------------------------------------------------------

    def reserve(self) -> Reservation:
        """Count an answer that will hold a model, from the moment it is asked for: unloading waits for it
        even before its thread has taken the model."""
        with self._lock:
            self._cancel_idle_timer()
            self._reserved += 1
        return Reservation(self)

    def _unreserve(self) -> None:
        with self._lock:
            self._reserved -= 1
            self._lock.notify_all()
            idle = not self._holds and not self._reserved
        if idle:
            self.schedule_idle_unload()

    @contextmanager
    def hold(self, model_id: str, open_runtime: Callable[[], Runtime], remote: bool,
             reservation: Reservation | None = None) -> Iterator[Runtime]:
        """The runtime of ``model_id``, loaded if needed, kept for the duration of the ``with``. A local model
        other than the resident one waits until the answers holding the resident one are done."""
        key = None if remote else model_id
        with self._lock:
            self._cancel_idle_timer()
            if not remote:
                self._lock.wait_for(lambda: not self._changing and not self._held_by_others(model_id))
            self._holds[key] = self._holds.get(key, 0) + 1
        if reservation is not None:
            reservation.release()  # the hold counts from now on
        try:
            yield self.connect(model_id, open_runtime) if remote else self.load(model_id, open_runtime)
        finally:
            with self._lock:
                self._holds[key] -= 1
                if not self._holds[key]:
                    del self._holds[key]
                self._lock.notify_all()
                self.last_used = time.monotonic()
                idle = not self._holds and not self._reserved
            if idle:
                self.schedule_idle_unload()

    def _held_by_others(self, model_id: str) -> bool:
        return any(n for held, n in self._holds.items() if held is not None and held != model_id)

    def held(self) -> bool:
        with self._lock:
            return bool(self._holds or self._reserved)

    def held_for_another(self, model_id: str) -> bool:
        """Whether answers hold a local model other than ``model_id``: holding ``model_id`` would wait for
        them to end (a load under way is waited for: it is the model the next answers use)."""
        with self._lock:
            return self._held_by_others(model_id)

    def _completion_used(self) -> None:
        """A completion on the slot's model ended: it counts as use for the idle unload, as an answer does."""
        self.last_used = time.monotonic()
        if not self.held():
            self.schedule_idle_unload()

    # -- loading and unloading --------------------------------------------------------------------------

    def connect(self, model_id: str, open_runtime: Callable[[], Runtime]) -> Runtime:
        """A server model's connection, made on the caller's thread (a check of the server: network I/O)."""
        runtime = self.servers.get(model_id)
        if runtime is None:
            runtime = open_runtime()
            old = self.servers.setdefault(model_id, runtime)
            if old is not runtime:  # two callers connected at once: keep one
                runtime.unload()
                runtime = old
        return runtime

    def load(self, model_id: str, open_runtime: Callable[[], Runtime]) -> Runtime:
        """Make ``model_id`` the resident local model, on the model worker, once no answer holds another one;
        the model it replaces is freed first, with its prompt caches."""
        with self._lock:
            self._lock.wait_for(lambda: not self._changing and not self._held_by_others(model_id))
            if self.model_id == model_id and self.runtime is not None:
                return self.runtime
            self._changing = True
        try:
            return self.scheduler.call(lambda: self._load_local(model_id, open_runtime))
        finally:
            with self._lock:
                self._changing = False
                self._lock.notify_all()

    def _load_local(self, model_id: str, open_runtime: Callable[[], Runtime]) -> Runtime:
        self._set_state("loading", model_id)
        self._free()
        try:
            runtime = open_runtime()
        except BaseException:
            self._set_state("not_loaded", None)
            raise
        self.runtime, self.model_id = runtime, model_id
        self.last_used = time.monotonic()
        self._set_state("ready", model_id)
        return runtime

    def unload(self, model_id: str | None = None) -> bool:
        """Free the resident model (only if it is ``model_id``, when given) and any server connection of that
        id, once the answers holding it are done. Returns whether anything was freed."""
        with self._lock:
            self._lock.wait_for(lambda: not self._changing and not self._holds and not self._reserved)
            self._changing = True
        try:
            freed = False
            for server_id in [s for s in self.servers if model_id in (None, s)]:
                self.servers.pop(server_id).unload()
                freed = True
            if model_id in (None, self.model_id):
                freed = self.scheduler.call(self._unload_local) or freed
            return self.completion.unload(model_id) or freed
        finally:
            with self._lock:
                self._changing = False
                self._lock.notify_all()

    def _unload_local(self) -> bool:
        if self.runtime is None:
            return False
        self._free()
        self._set_state("not_loaded", None)
        return True

    def _free(self) -> None:
        self.scheduler.run_idle_now()  # caches still to be saved are saved while their model is here
        runtime, self.runtime, self.model_id = self.runtime, None, None
        self.caches.drop()  # they hold the KV state of the model that goes
        if runtime is not None:
            self.completion.drop_cache(runtime)
            runtime.unload()

    def _set_state(self, state: str, model_id: str | None) -> None:
        self.state = state
        try:
            self._on_state(state, model_id)
        except Exception:  # a broken view must never break loading
            pass

    # -- generating -------------------------------------------------------------------------------------

    def generate(self, model_id: str, runtime: Runtime, chat_id: int, prompt: list[int], params: dict[str, Any],
                 **options: Any) -> Iterator[Chunk]:
        """Stream an answer of ``runtime`` with the chat's prompt cache: a local model's steps run on the
        model worker, a server model's request on the caller's thread. The cache is kept for the chat's next
        turn only when the stream ended as the runtime meant it to."""
        cache = self.caches.take(model_id, runtime, chat_id)

        def start() -> Iterator[Chunk]:
            self.caches.read_disk(runtime, chat_id, cache)
            return runtime.stream(prompt, params, cache=cache, **options)

        chunks = self.scheduler.generate(start) if runtime.local else start()
        finish, text = None, []
        try:
            for chunk in chunks:
                finish = chunk.finish_reason or finish
                text.append(chunk.text)
                yield chunk
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()
            if finish:
                self.caches.answered(model_id, runtime, chat_id, cache, finish, "".join(text), params, options)

    def call(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` on the model worker, between two steps of the generations in progress."""
        return self.scheduler.call(fn)

    # -- the idle unload ------------------------------------------------------------------------------

    def schedule_idle_unload(self) -> None:
        """Unload after ``keep_alive`` seconds with no answer (0: at once; -1: never)."""
        keep_alive = self._keep_alive()
        with self._lock:
            self._cancel_idle_timer()
            if keep_alive < 0 or self.runtime is None and not self.servers and self.completion.runtime is None:
                return
            if keep_alive > 0:
                self._idle_timer = threading.Timer(keep_alive, self._unload_if_idle, args=(keep_alive,))
                self._idle_timer.daemon = True
                self._idle_timer.start()
                return
        self._unload_if_idle(0)

    def _cancel_idle_timer(self) -> None:
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None

    def _unload_if_idle(self, keep_alive: float) -> None:
        with self._lock:
            if self._holds or self._reserved or self._changing or time.monotonic() - self.last_used < keep_alive:
                return
        self.unload()

    def close(self) -> None:
        """At the kernel's end: stop the timer, free everything, stop the worker."""
        with self._lock:
            self._cancel_idle_timer()
        try:
            for server in list(self.servers.values()):
                server.unload()
            self.servers.clear()
            if self.runtime is not None:
                self.scheduler.call(self._unload_local)
            self.completion.unload()
        finally:
            self.scheduler.close()


class Reservation:
    """An answer's claim on the models from the moment it is asked for until it holds one (or ends);
    releasing it twice is harmless."""

    def __init__(self, resident: ResidentModel) -> None:
        self._resident = resident
        self._released = False
        self._lock = threading.Lock()

    def release(self) -> None:
        with self._lock:
            if self._released:
                return
            self._released = True
        self._resident._unreserve()
