"""Each chat's prompt cache, in memory between answers and on disk across kernel restarts: what lets a chat's
next question read only its new tokens.

The caches are values the model worker hands to the runtime; everything done with them runs on the worker,
in its gaps. After an answer the chat's cells read the opening of its next question (the answer's end of
turn and the next user turn's header, which every follow-up starts with): as soon as the worker is free in a
chat already followed up, after a second's pause after a chat's first answer. As a question starts, its
chat's cache is placed where the model reads it (read from disk first after a restart), the opening read if
it was not yet, and the question read after it, while the asker builds the prompt. A chat idle for a second
is saved to disk. Another chat's question waits behind one read-ahead at most: a handful of tokens in one
batch.
"""

from __future__ import annotations

import contextlib
from typing import Any

from ..runtimes import PromptCache, Runtime
from .disk_caches import DiskCaches
from .prompt_caches import PromptCaches
from .scheduler import HOUSEKEEPING_AFTER, Scheduler


class ChatCaches:
    def __init__(self, scheduler: Scheduler, disk: DiskCaches | None) -> None:
        self.memory = PromptCaches()
        self.disk = disk
        self.scheduler = scheduler

    def warm(self, model_id: str, runtime: Runtime, chat_id: int, question: str | None = None,
             window: int = 0) -> None:
        """Start placing the chat's cache on the model worker while the asker builds the prompt, and reading
        ``question`` after it when the cache ends where a question starts: the two overlap instead of adding
        up."""
        if not runtime.local:
            return
        cache = self.memory.get(chat_id, _key(model_id, runtime))
        placed = cache.disk_read and cache.state is None  # nothing to read or place: its cells are where they were
        ahead = self.scheduler.claim_idle(("ahead", chat_id))  # read before the question, in the same job
        if placed and not question and ahead is None:
            return

        def place() -> None:
            if not placed:
                self.read_disk(runtime, chat_id, cache)
                runtime.warm(cache)
            if ahead is not None:
                with contextlib.suppress(Exception):  # housekeeping: the question reads it itself otherwise
                    ahead()
            if question:
                runtime.read_question(cache, question, window)

        with contextlib.suppress(RuntimeError):  # the worker has stopped: the kernel is closing
            self.scheduler.submit(place)

    def take(self, model_id: str, runtime: Runtime, chat_id: int) -> PromptCache:
        """The chat's cache for an answer starting now; the read-ahead of its turn before, not run yet, is
        dropped (the answer reads those tokens itself)."""
        self.scheduler.forget_idle(lambda key: key == ("ahead", chat_id))
        return self.memory.take(chat_id, _key(model_id, runtime))

    def read_disk(self, runtime: Runtime, chat_id: int, cache: PromptCache) -> None:
        """On the worker: fill a new cache from the chat's copy on disk (after a restart), once; afterwards
        the cache, or the sequence holding its tokens, is newer than the disk."""
        if cache.disk_read or not runtime.local:
            return
        cache.disk_read = True
        if self.disk is not None and not cache.tokens and cache.state is None:
            found = self.disk.load(runtime, chat_id)
            if found is not None:
                cache.tokens, cache.state, cache.nbytes, cache.on_disk = (found.tokens, found.state, found.nbytes,
                                                                          found.on_disk)

    def answered(self, model_id: str, runtime: Runtime, chat_id: int, cache: PromptCache, finish: str,
                 answer: str, params: dict[str, Any], options: dict[str, Any]) -> None:
        """An answer ended as the runtime meant it to: keep its cache for the chat's next turn and ask for
        the housekeeping (the read-ahead when the next turn is known, then the save)."""
        self.memory.put(chat_id, _key(model_id, runtime), cache)
        if not runtime.local:
            return
        messages = options.get("messages")
        if finish in ("stop", "length") and messages:  # not after tool calls or a stop: another turn follows
            conversation = [*messages, {"role": "assistant", "content": answer}]
            # A chat already followed up is likely to be again: its next turn's opening is read at once, while
            # the asker saves the answer (one that continues an answer cut at its limit drops those cells). A
            # first answer, most often a one-off question (a loop of ancia.chat calls), waits for a pause, so
            # that the next chat's question never waits behind it.
            followed_up = sum(m.get("role") == "user" for m in messages) > 1
            self.scheduler.when_idle(("ahead", chat_id), lambda: runtime.read_ahead(
                cache, conversation, options.get("tools"), int(params.get("context_window") or 0)),
                quiet=0.0 if followed_up else HOUSEKEEPING_AFTER)
        if self.disk is not None:
            disk = self.disk
            self.scheduler.when_idle(("save", chat_id), lambda: disk.save(runtime, chat_id, cache))

    def drop(self) -> None:
        """Forget every cache in memory: the model they belong to goes."""
        self.memory.drop()

    def forget_chat(self, chat_id: int | None = None) -> None:
        """A chat's history changed or it is gone (None: every chat): its caches go, in memory and on disk,
        and none of its housekeeping still waiting runs."""
        self.memory.drop(chat_id=chat_id)
        self.scheduler.forget_idle(lambda key: isinstance(key, tuple) and key[0] in ("ahead", "save")
                                   and (chat_id is None or key[1] == chat_id))
        if self.disk is not None:
            disk = self.disk
            self.scheduler.call(lambda: disk.delete(chat_id))  # after a save under way, never before it

    def trim_disk(self) -> None:
        """The budget on disk changed: keep to it now (0 erases every cache), after a save under way."""
        if self.disk is not None:
            self.scheduler.call(self.disk.trim)


def _key(model_id: str, runtime: Runtime) -> tuple:
    """What a cache is tied to: the model as loaded now (a reload or a model change starts afresh)."""
    return model_id, id(runtime)
