"""One answer, on a thread of its own: its prompt built, its generation rounds streamed, the tools the
model calls run between them, and the answer saved as it grows.

This thread does everything but the model's own steps: it reads the chat, fits the prompt, emits every event
and writes the store; the model worker only steps the runtime's stream (a server model's stream is read here,
never on the worker). Tools, approvals and downloads wait here too, so a chat waiting on a person or the
network never holds up another chat's answer.

Every answer ends in ``run``'s ``finally``, the one place an answer ends: its last state is written (or kept
in memory until the database accepts it) and ``done`` is emitted, whatever happened before.
"""

from __future__ import annotations

import contextlib
import time
import weakref
from collections.abc import Callable, Sequence
from typing import Any, Literal, Protocol

from .. import events as ev
from ..errors import AnciaError, ContextWindowError, NotFoundError, StoreError
from ..model_manager.manager import ModelManager
from ..model_manager.resident import Reservation
from ..runtimes import Runtime, ToolCallRequest
from ..store.database import Store
from .answer import Answer
from .answer_prompt import build_prompt, fit_tools, tool_schemas
from .context_fit import ContextFitter
from .host import ToolCatalog
from .pending_writes import PendingWrites

SAVE_INTERVAL = 0.5  # seconds between saves of a growing answer
DELETED_MID_ANSWER = "The chat was deleted while it was being answered; nothing more was saved."
UNSAVED = " It is kept in memory and saved as soon as the database accepts writes again."

Status = Literal["complete", "stopped", "error"]


class Host(Protocol):
    """What an answer uses of the engine that started it."""

    store: Store
    models: ModelManager
    settings: Callable[[], dict]
    tools: ToolCatalog
    fitter: ContextFitter
    pending: PendingWrites

    def runtime_hint(self, model_id: str) -> str | None: ...

    def answer_ended(self, run: AnswerRun) -> None: ...


class AnswerRun:
    """What one answer carries from round to round, and the rounds themselves."""

    def __init__(self, host: Host, answer: Answer, model_id: str, params: dict, created_chat: bool, *,
                 system: str | None, tools: Sequence[str] | bool | None,
                 approve: Callable[[ev.ToolCall], bool] | None, reservation: Reservation | None = None,
                 continuing: str | None = None, copies: bool = False, question: str | None = None) -> None:
        self.host = host
        self.reservation = reservation  # counted by the model's owner from the question on
        self.answer = answer
        self.chat_id = answer.chat_id
        self.model_id = model_id
        self.params = params
        self.created_chat = created_chat
        self.system = system
        self.tool_names = tools
        self.approve = approve
        self.message_id: int | None = answer.message_id  # the assistant message being written
        self.text = continuing or ""  # what the model wrote in that message so far
        self.continuing = continuing is not None  # the first round carries on that text instead of a new turn
        self.copies = copies  # drafts from the prompt pay off (setting prompt_lookup "auto")
        self.question = question  # the user message just stored: the model may read it while the prompt is fitted
        self.finish: str | None = None  # why the last generation ended
        self.error: str | None = None
        self.totals = {"prompt_tokens": 0, "completion_tokens": 0, "cached_tokens": 0}
        self.timings: dict[str, float] = {}
        self.started = time.perf_counter()

    def emit(self, event: ev.Event) -> None:
        self.answer.put(event)

    def notice(self, text: str, code: str) -> None:
        self.emit(ev.Notice(self.chat_id, text, code=code))

    # -- the answer's thread ----------------------------------------------------------------------------

    def run(self) -> None:
        """Answer, then end: the last state saved or kept, and ``done`` emitted, on every path."""
        status: Status = "error"
        try:
            status = self._answer()
        except BaseException as exc:
            self._fail(exc)
        finally:
            self._end(status)

    def _answer(self) -> Status:
        host, answer = self.host, self.answer
        if answer.stop_requested():
            return "stopped"
        if host.models.loaded_id != self.model_id and not host.models.spec(self.model_id).remote:
            self.notice(f"Loading {self.model_id}…", "loading")
            hint = host.runtime_hint(self.model_id)  # said once per kernel
            if hint:
                self.notice(hint, "runtime_hint")
        host.models.prepare(self.model_id)  # memory check, offline check and download, on this thread
        with host.models.hold(self.model_id, self.reservation) as runtime:
            tools, left_out = fit_tools(runtime, tool_schemas(host.tools, self.tool_names, runtime, self.chat_id),
                                        self.params["context_window"], isinstance(self.tool_names, (list, tuple)))
            if left_out:
                self.notice(left_out, "tools_left_out")
            if not runtime.supports_tools and _tools_unsaid(host, self.chat_id, self.tool_names):
                self.notice(host.models.tool_ability(self.model_id).advice or "", "tools_unavailable")
            for rounds in range(host.settings()["max_tool_rounds"] + 1):
                if rounds:
                    self._start_message()
                calls, finish = self._generate(runtime, tools)
                if finish == "stopped":
                    return "stopped"
                if not calls:
                    return "complete"
                self._run_tools(calls)
                if answer.stop_requested():
                    return "stopped"
            self.notice("Stopped calling tools: too many rounds.", "tool_rounds")
        return "complete"

    def _fail(self, exc: BaseException) -> None:
        """Say what went wrong in one line; a request refused before anything was said leaves no trace."""
        if isinstance(exc, StoreError):
            self.error = f"Could not save the answer: {exc}{UNSAVED}"
        elif isinstance(exc, NotFoundError) and not self._chat_exists():
            self.error = DELETED_MID_ANSWER
        else:
            self.error = _one_line(exc)
        self.emit(ev.Error(self.chat_id, self.error, code=type(exc).__name__))
        if isinstance(exc, ContextWindowError) and not self.text and self.message_id == self.answer.message_id:
            self._forget_question()

    def _forget_question(self) -> None:
        store = self.host.store
        with contextlib.suppress(NotFoundError, StoreError):
            if self.created_chat:
                store.delete_chat(self.chat_id)
            else:
                for message_id in (self.message_id, self.answer.user_message_id):
                    if message_id is not None:
                        store.delete_message(self.chat_id, message_id)
        self.message_id = None

    def _end(self, status: Status) -> None:
        """The one place an answer ends: its message's last state written (or kept until the database takes
        it), the engine told, and ``done`` emitted last, whatever fails on the way."""
        if self.error is not None:
            status = "error"
        try:
            self.timings["total"] = time.perf_counter() - self.started
            if self.message_id is not None:
                status = self._save_end(status)
        except BaseException as exc:  # nothing may keep ``done`` from its asker
            status = "error"
            with contextlib.suppress(BaseException):
                self.emit(ev.Error(self.chat_id, _one_line(exc), code=type(exc).__name__))
        finally:
            with contextlib.suppress(BaseException):
                if self.reservation is not None:
                    self.reservation.release()
                self.host.answer_ended(self)
            totals = self.totals
            usage = {**totals, "total_tokens": totals["prompt_tokens"] + totals["completion_tokens"]}
            self.emit(ev.Done(self.chat_id, self.message_id or 0, status, usage, self.timings, self.finish))

    def _save_end(self, status: Status) -> Status:
        message_id, store = self.message_id, self.host.store
        assert message_id is not None
        fields: dict[str, Any] = {"content": self.text, "status": status, "timings": self.timings,
                  "prompt_tokens": self.totals["prompt_tokens"], "completion_tokens": self.totals["completion_tokens"],
                  "finish_reason": self.finish}
        if self.error is not None:
            fields["error"] = self.error

        def write() -> None:
            store.update_message(message_id, **fields)

        try:
            self.host.pending.write(write)
        except StoreError as exc:  # kept in memory: written once the database takes it
            if self.error is None:
                self.error = f"Could not save the answer: {exc}{UNSAVED}"
                self.emit(ev.Error(self.chat_id, self.error, code="StoreError"))
            return "error"
        except NotFoundError:
            if self.error != DELETED_MID_ANSWER:
                self.emit(ev.Error(self.chat_id, DELETED_MID_ANSWER, code="NotFoundError"))
            return "error"
        return status

    def _chat_exists(self) -> bool:
        try:
            return self.host.store.has_chat(self.chat_id)
        except (NotFoundError, StoreError):
            return False

    def _start_message(self) -> None:
        self.text = ""
        self.message_id = None
        self.message_id = self.host.pending.write(lambda: self.host.store.add_message(
            self.chat_id, "assistant", "", status="partial", model_id=self.model_id, params=self.params)["id"])
        self.emit(ev.MessageStarted(self.chat_id, self.message_id, self.answer.user_message_id, self.model_id))

    def _save(self, **fields: Any) -> None:
        message_id, store = self.message_id, self.host.store
        assert message_id is not None
        self.host.pending.write(lambda: store.update_message(message_id, notify=False, **fields))

    # -- one generation round ---------------------------------------------------------------------------

    def _generate(self, runtime: Runtime, tools: list[dict] | None) -> tuple[list[ToolCallRequest], str]:
        host, params, chat_id, message_id = self.host, self.params, self.chat_id, self.message_id
        assert message_id is not None
        host.models.warm(self.model_id, runtime, chat_id, self.question,  # overlaps with building the prompt
                         params["context_window"])
        self.question = None  # a later round reads tool results, not the question
        prompt = build_prompt(host.store, host.fitter, runtime, chat_id,
                              self.system or host.store.get_chat(chat_id)["system_prompt"]
                              or host.settings()["system_prompt"], tools, params, continuing=self.continuing)
        self.continuing = False
        for text, code in prompt.notices:
            self.notice(text, code)
        fit = prompt.fit
        budget = max(1, min(params["max_tokens"], params["context_window"] - fit.size))
        last_save, final = float("-inf"), None  # the first token is saved at once, then every SAVE_INTERVAL
        for chunk in host.models.generate(self.model_id, runtime, chat_id, fit.tokens or [],
                                          {**params, "max_tokens": budget, "prompt_lookup": self._drafting()},
                                          tools=tools,
                                          images=prompt.images or None, should_stop=self.answer.stop_requested,
                                          messages=fit.messages):
            if chunk.text:
                self.timings.setdefault("time_to_first_token", time.perf_counter() - self.started)
                self.text += chunk.text
                self.emit(ev.Token(chat_id, chunk.text, message_id))
                if time.monotonic() - last_save >= SAVE_INTERVAL:
                    self._save(content=self.text)
                    last_save = time.monotonic()
            if chunk.finish_reason:
                final = chunk
        calls = final.tool_calls if final else []
        self.finish = final.finish_reason if final else None
        if self.finish == "length":
            self.notice(f"Stopped at the {budget}-token limit: continue to extend this answer "
                        "(`ancia.chats.get(chat).continue_()`, or Continue in the panel).", "length_limit")
        if final:
            self.totals["prompt_tokens"] += final.prompt_tokens
            self.totals["cached_tokens"] += final.cached_tokens
            self.totals["completion_tokens"] += final.generation_tokens
            self.timings["prompt_tps"] = final.prompt_tps
            self.timings["generation_tps"] = final.generation_tps
        cap = host.settings()["max_tool_calls"]
        if len(calls) > cap:
            self.notice(f"The model asked for {len(calls)} tool calls in one turn; only the first {cap} run "
                        "(the setting max_tool_calls).", "tool_calls_capped")
            calls = calls[:cap]
        if calls:
            stored = [{"id": c.id, "name": c.name or "invalid", "arguments": c.arguments} for c in calls]
            self._save(content=self.text, tool_calls=stored, status="complete")
        return calls, (final.finish_reason or "stop") if final else "stop"

    def _drafting(self) -> bool:
        """Whether the runtime drafts from the prompt (the setting ``prompt_lookup``; "auto": answers that
        copy their prompt, where drafts pay, and no other, where a refused draft costs a batch)."""
        setting = self.host.settings()["prompt_lookup"]
        return setting is True or setting == "auto" and self.copies

    # -- tools, on the answer's thread ------------------------------------------------------------------

    def _run_tools(self, calls: list[ToolCallRequest]) -> None:
        registry, store = self.host.tools, self.host.store
        for call in calls:
            shown = registry.resolve(call.name) if call.name else call.name
            event = ev.ToolCall(self.chat_id, call.id, shown, call.arguments, self.message_id or 0)
            self.emit(event)
            started = time.perf_counter()
            output: str | None
            error: str | None
            if call.error:
                output, error = None, f"{call.error} Raw text: {call.raw[:500]}"
            elif self.answer.stop_requested():
                output, error = None, "stopped by the user"
            else:
                output, error = registry.call(call.name, call.arguments, chat_id=self.chat_id,
                                              approve=self.approve, event=event)
            duration = time.perf_counter() - started
            stored = self.host.pending.write(_tool_message(store, self.chat_id, call, output, error))
            self.emit(ev.ToolResult(self.chat_id, call.id, shown, output, error, duration, stored["id"]))


_SAID_NO_TOOLS: weakref.WeakKeyDictionary[Any, set[int]] = weakref.WeakKeyDictionary()  # engine -> chats


def _tools_unsaid(host: Host, chat_id: int, names: Sequence[str] | bool | None) -> bool:
    """Whether to say that the model answers without the tools this chat would have offered it: once per
    chat, so it never repeats at every question. Remembered in memory, per engine, not in the chat's stored
    options: those are the user's settings for the chat, while whether the model can call tools is a fact
    of this kernel's model that the next session may change; after a restart it is said once more."""
    if names is False:
        return False
    said = _SAID_NO_TOOLS.setdefault(host, set())
    chosen = list(names) if isinstance(names, (list, tuple)) else None
    if chat_id in said or not host.tools.schemas(chosen, chat_id=chat_id):
        return False
    said.add(chat_id)
    return True


def _tool_message(store: Store, chat_id: int, call: ToolCallRequest, output: str | None,
                  error: str | None) -> Callable[[], dict]:
    """The write that keeps a tool's result in the chat, for the model's next round and the history."""
    content = (output or "") if error is None else f"error: {error}"
    return lambda: store.add_message(chat_id, "tool", content, tool_call_id=call.id, tool_name=call.name or None)


def _one_line(exc: BaseException) -> str:
    """What a user reads of a failure: our own errors as they are worded, anything else with its type."""
    return str(exc) if isinstance(exc, AnciaError) else f"{type(exc).__name__}: {exc}"
