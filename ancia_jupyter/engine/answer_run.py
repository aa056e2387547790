"""One answer, on a thread of its own: generation rounds on the model worker, the tools the model calls
between them, and the answer saved as it grows.

Only a generation round runs on the model worker; tools, approvals and downloads wait on this thread, so a
chat waiting on a person or the network never holds up another chat's answer. Every event goes into the
answer's ``Answer`` handle, the one stream its asker and the views following its chat read.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from typing import Any, Literal, Protocol

from .. import events as ev
from ..errors import AnciaError, ContextWindowError, NotFoundError
from ..model_manager.manager import ModelManager
from ..runtimes import Runtime, ToolCallRequest
from ..store.database import Store
from .answer import Answer
from .context_fit import ContextFitter, Fit
from .prompt_caches import PromptCaches

SAVE_INTERVAL = 0.5  # seconds between saves of a growing answer
DELETED_MID_ANSWER = "The chat was deleted while it was being answered; nothing more was saved."
_UNSET: Any = object()

Status = Literal["complete", "stopped", "error"]


class Host(Protocol):
    """What an answer uses of the engine that started it."""

    store: Store
    models: ModelManager
    settings: Callable[[], dict]
    tools: Any
    caches: PromptCaches
    fitter: ContextFitter

    def runtime_hint(self, model_id: str) -> str | None: ...

    def answer_ended(self, run: AnswerRun) -> None: ...


class AnswerRun:
    """What one answer carries from round to round, and the rounds themselves."""

    def __init__(self, host: Host, answer: Answer, model_id: str, params: dict, created_chat: bool, *,
                 system: str | None, tools: Sequence[str] | bool | None,
                 approve: Callable[[ev.ToolCall], bool] | None) -> None:
        self.host = host
        self.answer = answer
        self.chat_id = answer.chat_id
        self.model_id = model_id
        self.params = params
        self.created_chat = created_chat
        self.system = system
        self.tool_names = tools
        self.approve = approve
        self.message_id: int | None = answer.message_id  # the assistant message being written
        self.tools: Any = _UNSET  # the tool schemas the model is shown, fitted in the first round
        self.totals = {"prompt_tokens": 0, "completion_tokens": 0, "cached_tokens": 0}
        self.timings: dict[str, float] = {}

    def emit(self, event: ev.Event) -> None:
        self.answer.put(event)

    def run(self) -> None:
        host, answer = self.host, self.answer
        started = time.perf_counter()
        status: Status = "complete"
        rounds = 0
        try:
            if answer.stop_requested():
                raise _Stopped()
            if host.models.loaded_id != self.model_id:
                self.emit(ev.Notice(f"Loading {self.model_id}…", code="loading", chat_id=self.chat_id))
                hint = host.runtime_hint(self.model_id)  # said once per kernel
                if hint:
                    self.emit(ev.Notice(hint, code="runtime_hint", chat_id=self.chat_id))
            host.models.prepare(self.model_id)  # memory check and download, off the model worker
            while True:
                if rounds:
                    self._start_message()
                calls, finish = host.models.worker.call(lambda: self._round(started))
                if finish == "stopped":
                    status = "stopped"
                    break
                if not calls:
                    break
                rounds += 1
                if rounds > host.settings()["max_tool_rounds"]:
                    self.emit(ev.Notice("Stopped calling tools: too many rounds.", code="tool_rounds",
                                        chat_id=self.chat_id))
                    break
                self._run_tools(calls)
                if answer.stop_requested():
                    status = "stopped"
                    break
        except _Stopped:
            status = "stopped"
        except Exception as exc:
            status = "error"
            self._fail(exc, refused=isinstance(exc, ContextWindowError) and not rounds)
        try:
            status = self._finish(status, started)
        except Exception as exc:  # the store failing at the very end: say so, and still end the stream
            status = "error"
            self.emit(ev.Error(_one_line(exc), code=type(exc).__name__, chat_id=self.chat_id))
        finally:
            host.answer_ended(self)
        totals = self.totals
        usage = {**totals, "total_tokens": totals["prompt_tokens"] + totals["completion_tokens"]}
        self.emit(ev.Done(self.chat_id, self.message_id or 0, status, usage, self.timings))

    def _finish(self, status: Status, started: float) -> Status:
        """Save how the answer ended; returns its status (an error when the chat went meanwhile)."""
        self.timings["total"] = time.perf_counter() - started
        if self.message_id is None or status == "error":
            return status
        try:
            self.host.store.update_message(self.message_id, status=status, timings=self.timings,
                                           prompt_tokens=self.totals["prompt_tokens"],
                                           completion_tokens=self.totals["completion_tokens"])
        except NotFoundError:
            self.emit(ev.Error(DELETED_MID_ANSWER, code="NotFoundError", chat_id=self.chat_id))
            return "error"
        return status

    def _fail(self, exc: Exception, refused: bool) -> None:
        """Say what went wrong in one line and keep it with the chat; a refused request leaves no trace."""
        store = self.host.store
        text = _one_line(exc)
        if isinstance(exc, NotFoundError) and not self._chat_exists():
            text = DELETED_MID_ANSWER
        self.emit(ev.Error(text, code=type(exc).__name__, chat_id=self.chat_id))
        with contextlib.suppress(NotFoundError):  # the chat may have been deleted meanwhile
            if refused:
                if self.created_chat:
                    store.delete_chat(self.chat_id)
                else:
                    for message_id in (self.message_id, self.answer.user_message_id):
                        if message_id is not None:
                            store.delete_message(self.chat_id, message_id)
                self.message_id = None
            elif self.message_id is None:
                self.message_id = store.add_message(self.chat_id, "assistant", "", status="error",
                                                    model_id=self.model_id, error=text)["id"]
            else:
                store.update_message(self.message_id, status="error", error=text)

    def _chat_exists(self) -> bool:
        try:
            self.host.store.get_chat(self.chat_id)
            return True
        except NotFoundError:
            return False

    def _start_message(self) -> None:
        self.message_id = self.host.store.add_message(self.chat_id, "assistant", "", status="partial",
                                                      model_id=self.model_id, params=self.params)["id"]
        self.emit(ev.MessageStarted(self.chat_id, self.message_id, self.answer.user_message_id, self.model_id))

    # -- on the model worker: one generation round ------------------------------------------------------

    def _round(self, started: float) -> tuple[list[ToolCallRequest], str]:
        runtime = self.host.models.load(self.model_id)
        if self.tools is _UNSET:
            self.tools = self._fit_tools(runtime, self._tool_schemas(runtime))
        return self._generate(runtime, started)

    def _tool_schemas(self, runtime: Runtime) -> list[dict] | None:
        registry = self.host.tools
        if self.tool_names is False or registry is None or not runtime.supports_tools:
            return None
        names = list(self.tool_names) if isinstance(self.tool_names, (list, tuple)) else None
        return registry.schemas(names, chat_id=self.chat_id) or None

    def _fit_tools(self, runtime: Runtime, tools: list[dict] | None) -> list[dict] | None:
        """Tool descriptions go with every prompt: when they would take more than half of the context window,
        answer without them (a small window is better spent on the conversation). Say so only when the
        caller chose the tools; the default set is best effort."""
        if not tools:
            return tools
        probe = [{"role": "user", "content": "?"}]
        cost = runtime.count_tokens(probe, tools) - runtime.count_tokens(probe, None)
        window = self.params["context_window"]
        if cost <= window // 2:
            return tools
        if isinstance(self.tool_names, (list, tuple)):
            self.emit(ev.Notice(
                f"Left out the tools: their descriptions take {cost} tokens, more than half of the context "
                f"window of {window}. Choose fewer tools, or raise context_window with "
                "`ancia.models.set_params(context_window=...)`.", code="tools_left_out", chat_id=self.chat_id))
        return None

    def _prompt(self, runtime: Runtime) -> tuple[Fit, list[dict]]:
        """The prompt fitted to the context window, and the images of the last user message."""
        store = self.host.store
        chat = store.get_chat(self.chat_id)
        system = self.system or chat["system_prompt"] or self.host.settings()["system_prompt"]
        history = [m for m in store.history(self.chat_id)
                   if m["status"] != "error" and not (m["role"] == "assistant" and m["status"] == "partial"
                                                      and not m["content"] and not m["tool_calls"])]
        head = [{"role": "system", "content": system}] if system else []
        window = self.params["context_window"]
        fit = self.host.fitter.fit(chat["id"], runtime, head, history, self.tools, window,
                                   min(self.params["max_tokens"], 64))
        if fit.newly_dropped:
            self.emit(ev.Notice(
                f"Left out the {fit.dropped} oldest message(s) to fit the context window of {window} tokens "
                "(they stay in the chat).", code="context_trimmed", chat_id=self.chat_id))
        users = [m for m in history if m["role"] == "user"]
        return fit, users[-1]["attachments"] if users else []

    def _generate(self, runtime: Runtime, started: float) -> tuple[list[ToolCallRequest], str]:
        store, params, message_id, chat_id = self.host.store, self.params, self.message_id, self.chat_id
        assert message_id is not None
        fit, images = self._prompt(runtime)
        budget = max(1, min(params["max_tokens"], params["context_window"] - fit.size))
        key = (self.model_id, id(runtime))
        cache = self.host.caches.take(chat_id, key)
        text, last_save = "", time.monotonic()
        final = None
        put = self.answer.put
        try:
            for chunk in runtime.stream(fit.tokens or [], {**params, "max_tokens": budget}, cache=cache,
                                        tools=self.tools, images=images or None,
                                        should_stop=self.answer.stop_requested, messages=fit.messages):
                if chunk.text:
                    self.timings.setdefault("time_to_first_token", time.perf_counter() - started)
                    text += chunk.text
                    put(ev.Token(chunk.text, message_id, chat_id))
                    if time.monotonic() - last_save >= SAVE_INTERVAL:
                        store.update_message(message_id, notify=False, content=text)
                        last_save = time.monotonic()
                if chunk.finish_reason:
                    final = chunk
        except BaseException:
            with contextlib.suppress(NotFoundError):
                store.update_message(message_id, content=text)
            raise
        self.host.caches.put(chat_id, key, cache)
        calls = final.tool_calls if final else []
        if final:
            self.totals["prompt_tokens"] += final.prompt_tokens
            self.totals["cached_tokens"] += final.cached_tokens
            self.totals["completion_tokens"] += final.generation_tokens
            self.timings["prompt_tps"] = final.prompt_tps
            self.timings["generation_tps"] = final.generation_tps
        stored_calls = [{"id": c.id, "name": c.name or "invalid", "arguments": c.arguments} for c in calls]
        store.update_message(message_id, content=text, tool_calls=stored_calls or None,
                             status="complete" if calls else "partial")
        return calls, (final.finish_reason or "stop") if final else "stop"

    # -- tools, on the answer's thread ------------------------------------------------------------------

    def _run_tools(self, calls: list[ToolCallRequest]) -> None:
        registry, store = self.host.tools, self.host.store
        for call in calls:
            shown = registry.resolve(call.name) if registry is not None and call.name else call.name
            event = ev.ToolCall(call.id, shown, call.arguments, self.message_id or 0, self.chat_id)
            self.emit(event)
            started = time.perf_counter()
            if call.error:
                output, error = None, f"{call.error} Raw text: {call.raw[:500]}"
            elif self.answer.stop_requested():
                output, error = None, "stopped by the user"
            elif registry is None:
                output, error = None, "no tools are available"
            else:
                output, error = registry.call(call.name, call.arguments, chat_id=self.chat_id,
                                              approve=self.approve, event=event)
            duration = time.perf_counter() - started
            stored = store.add_message(self.chat_id, "tool", output if error is None else f"error: {error}",
                                       tool_call_id=call.id, tool_name=call.name or None)
            self.emit(ev.ToolResult(call.id, shown, output, error, duration, stored["id"], self.chat_id))


def _one_line(exc: Exception) -> str:
    """What a user reads of a failure: our own errors as they are worded, anything else with its type."""
    return str(exc) if isinstance(exc, AnciaError) else f"{type(exc).__name__}: {exc}"


class _Stopped(Exception):
    pass
