"""The completion service: one completion at a time in a kernel, streamed as it grows.

A user types in one place at a time, so a newer request supersedes every older one: the older one is told
to stop (its ``should_stop`` is read after each token, so it ends within a token), and the newer one
starts as soon as it has, on the same prompt cache. A completion holds its model like an answer does
(``ModelManager.hold_completion``) and steps on the model worker between the tokens of the answers in
progress, so it never waits for a chat answer to end. Stopping at the end of the line or block is asked
the same way, which leaves the prompt cache matching what the model read.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping
from typing import Any

from ..model_manager.completion_slot import HeldCompletion
from ..model_manager.manager import ModelManager
from .live_objects import describe_near
from .prompt import PROMPT_TOKENS, PromptWriter
from .request import Completion, CompletionRequest
from .shaping import shape

MAX_TOKENS = {"line": 48, "block": 160}


class Completions:
    def __init__(self, models: ModelManager) -> None:
        self._models = models
        self._turn = threading.Condition()
        self._running = False
        self._latest: threading.Event | None = None  # the newest request's cancel flag
        self._writers: dict[tuple, PromptWriter] = {}  # by model: where its prompts keep their cells

    def complete(self, request: CompletionRequest, *, namespace: Mapping[str, Any] | None = None,
                 cancelled: threading.Event | None = None) -> Completion:
        """The whole suggestion (the last of ``stream``)."""
        found = Completion("", "empty")
        for update in self.stream(request, namespace=namespace, cancelled=cancelled):
            found = update
        return found

    def stream(self, request: CompletionRequest, *, namespace: Mapping[str, Any] | None = None,
               cancelled: threading.Event | None = None) -> Iterator[Completion]:
        """The suggestion each time it changes, then a last one with its ``reason`` and figures. Setting
        ``cancelled`` (or asking for a newer completion) stops it within a token. ``namespace``: the live
        objects the cell may name (the kernel's user namespace)."""
        started = time.perf_counter()
        cancel = cancelled if cancelled is not None else threading.Event()
        with self._turn:
            if self._latest is not None:
                self._latest.set()  # the older request stops at its next token
            self._latest = cancel
            self._turn.wait_for(lambda: not self._running or cancel.is_set())
            if cancel.is_set():
                yield Completion("", "cancelled", seconds=time.perf_counter() - started)
                return
            self._running = True
        try:
            with self._models.hold_completion() as held:
                yield from self._generate(held, request, namespace or {}, cancel, started)
        finally:
            with self._turn:
                self._running = False
                if self._latest is cancel:
                    self._latest = None
                self._turn.notify_all()

    def _writer(self, held: HeldCompletion) -> PromptWriter:
        key = (held.model_id, id(held.runtime))
        writer = self._writers.get(key)
        if writer is None:
            budget = max(64, min(PROMPT_TOKENS, held.context_window - MAX_TOKENS["block"] - 16))
            self._writers = {key: (writer := PromptWriter(held.runtime, held.fim, budget))}
        return writer

    def _generate(self, held: HeldCompletion, request: CompletionRequest, namespace: Mapping[str, Any],
                  cancel: threading.Event, started: float) -> Iterator[Completion]:
        prompt = self._writer(held).write(request, describe_near(request.prefix, request.suffix, namespace))
        params = {"temperature": 0.0, "max_tokens": MAX_TOKENS[request.mode], "context_window": held.context_window}
        enough = threading.Event()  # the line or block is whole: the rest is not wanted
        raw, shown, first, last, cut = "", "", None, None, None
        for chunk in held.generate(prompt.tokens, params, lambda: enough.is_set() or cancel.is_set()):
            if chunk.finish_reason:
                last = chunk
            if enough.is_set() or not chunk.text:
                continue
            raw += chunk.text
            shaped = shape(raw, request.prefix, request.suffix, request.mode)
            if shaped.done:
                enough.set()
                cut = shaped.reason or "stop"
            if shaped.text != shown and not cancel.is_set():
                shown = shaped.text
                first = first if first is not None or not shown else time.perf_counter() - started
                yield Completion(shown, model_id=held.model_id, first_text_s=first, fim=prompt.fim)
        if cut is None:
            final = shape(raw, request.prefix, request.suffix, request.mode, final=True)
            shown, cut = final.text, final.reason
        reason = "cancelled" if cancel.is_set() and not enough.is_set() else cut or (last.finish_reason if last
                                                                                     else None) or "stop"
        if reason != "cancelled" and not shown:
            reason = "empty"
        read = (last.prompt_tokens - last.cached_tokens) if last is not None else len(prompt.tokens)
        yield Completion("" if reason == "cancelled" else shown, reason, held.model_id, len(prompt.tokens), read,
                         last.generation_tokens if last is not None else 0, first, time.perf_counter() - started,
                         prompt.fim, prompt.text)
