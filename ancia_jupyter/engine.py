"""The chat engine: from a prompt to a stream of events.

It stores the user message before anything else, builds the prompt from the chat's history with the
model's chat template, fits it into the context window, generates on the model worker thread, runs
tool calls the model asks for, and saves the answer as it grows, so that a stop, an interrupt or a
crash never loses what was already said. Every view (``ancia.chat``, the magics, the panels) is a
consumer of the same ``EventStream``.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import events as ev
from .context_fit import ContextFitter, Fit
from .errors import AnciaError, ContextWindowError, InvalidValueError, NotFoundError
from .model_manager import ModelManager, check_params
from .prompt_caches import PromptCaches
from .runtimes import Runtime, ToolCallRequest
from .store import Store

if TYPE_CHECKING:
    from .response import Response

SAVE_INTERVAL = 0.5  # seconds between saves of a growing answer


@dataclass(eq=False)
class ChatRequest:
    chat_id: int | None  # None: a new chat titled after the prompt
    prompt: str | None  # None: answer the history as it is (regenerate)
    model: str | None = None
    system: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    tools: list[str] | bool | None = None  # names, False for none, None for every enabled tool
    images: list[dict] = field(default_factory=list)  # attachments: {"path"} or {"data", "mime"}
    context: str | None = None  # text to attach to the prompt (kernel variables)
    approve: Callable[[ev.ToolCall], bool] | None = None
    stop: threading.Event = field(default_factory=threading.Event)


class EventStream:
    """The events of one answer, as they come. Iterate it; Ctrl-C (KeyboardInterrupt) stops the answer
    and the stream ends cleanly with ``done`` (status ``stopped``)."""

    def __init__(self, request: ChatRequest) -> None:
        self.request = request
        self._queue: queue.Queue[ev.Event] = queue.Queue()
        self.events: list[ev.Event] = []
        self.finished = False

    def put(self, event: ev.Event) -> None:
        self._queue.put(event)

    def __iter__(self) -> Iterator[ev.Event]:
        while not self.finished:
            try:
                event = self._queue.get()
            except KeyboardInterrupt:
                self.request.stop.set()
                continue
            self.events.append(event)
            if isinstance(event, ev.Done):
                self.finished = True
            yield event

    def response(self) -> Response:
        from .response import Response

        for _ in self:
            pass
        return Response.from_events(self.events)

    def _ipython_display_(self) -> None:
        from .display import show_stream

        show_stream(self)


def title_from(prompt: str) -> str:
    """A chat's title, from its first question."""
    words = " ".join(prompt.split())
    return (words[:60] + "…") if len(words) > 60 else words


class Engine:
    """Answers questions: checks and stores each request, then answers it on a thread of its own that hands
    each generation round to the model worker and runs tools, approvals and downloads itself, so one chat
    waiting on a person or the network never holds up another chat's answer."""

    def __init__(self, store: Store, models: ModelManager, settings: Callable[[], dict], tools: Any = None) -> None:
        self.store = store
        self.models = models
        self.settings = settings
        self.tools = tools  # the tool registry: schemas(names) and call(name, arguments, chat_id)
        self.caches = PromptCaches()
        self.fitter = ContextFitter()
        self.listeners: list[Callable[[ev.Event], None]] = []  # every event of every answer (panels)
        self._active: set[ChatRequest] = set()
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._idle_timer: threading.Timer | None = None
        self._hinted = False
        store.subscribe(self._on_store_change)

    # -- public -------------------------------------------------------------------------------------

    def submit(self, request: ChatRequest) -> EventStream:
        """Check the request, store the user's message (in a new chat when ``chat_id`` is None), then answer
        it; returns the answer's events. Bad input raises here and stores nothing."""
        chat = self.store.get_chat(request.chat_id) if request.chat_id is not None else None
        if request.prompt is not None and (not isinstance(request.prompt, str) or not request.prompt.strip()):
            raise InvalidValueError("The prompt is empty: ask something.")
        spec = self.models.spec(request.model or (chat and chat["model_id"]) or None)
        model_id = spec.id
        params = {**self.models.params(model_id), **check_params(spec, request.params)}
        if request.images and not spec.vision:
            raise InvalidValueError(f"{model_id} cannot see images; select a vision model to attach images.")
        self._check_tools(request)
        created = chat is None
        if chat is None:
            if request.prompt is None:
                raise InvalidValueError("A new chat needs a prompt.")
            chat = self.store.create_chat(title_from(request.prompt), model_id=request.model and model_id)
            request.chat_id = chat["id"]
        if request.prompt is not None:
            content = request.prompt if not request.context else f"{request.prompt}\n\n{request.context}"
            user = self.store.add_message(chat["id"], "user", content, attachments=request.images)
            user_id: int | None = user["id"]
        else:
            user_id = None
        if chat["model_id"] != model_id:
            self.store.update_chat(chat["id"], model_id=model_id)
        stream = EventStream(request)
        with self._lock:
            self._active.add(request)
        self._cancel_idle_timer()
        answer = _Answer(request, stream, model_id, params, user_id, created)
        threading.Thread(target=self._run, args=(answer,), name=f"ancia-answer-{chat['id']}", daemon=True).start()
        return stream

    def stop(self, chat_id: int | None = None) -> int:
        """Stop answers in progress (all, or one chat's); safe from any thread. Returns how many."""
        with self._lock:
            targets = [r for r in self._active if chat_id is None or r.chat_id == chat_id]
        for request in targets:
            request.stop.set()
        return len(targets)

    @property
    def busy(self) -> bool:
        return bool(self._active)

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until no answer is in progress (unloading waits so as not to pull the model from under one)."""
        with self._idle:
            return self._idle.wait_for(lambda: not self._active, timeout)

    def _check_tools(self, request: ChatRequest) -> None:
        """Tools named by the caller must exist and be on: said before anything is stored."""
        names = request.tools
        if names is None or isinstance(names, bool):
            return
        if not isinstance(names, (list, tuple)) or not all(isinstance(n, str) for n in names):
            raise InvalidValueError(f"tools must be a list of tool names, None for every enabled tool or False "
                                    f"for none (got {names!r}).")
        if self.tools is None:
            raise InvalidValueError("No tools are available in this installation.")
        self.tools.schemas(list(names), chat_id=request.chat_id)

    # -- one answer, on its own thread --------------------------------------------------------------

    def _emit(self, stream: EventStream, event: ev.Event) -> None:
        stream.put(event)
        for listener in list(self.listeners):
            try:
                listener(event)
            except Exception:
                pass

    def _run(self, answer: _Answer) -> None:
        request, stream = answer.request, answer.stream
        started = time.perf_counter()
        status = "complete"
        rounds = 0
        try:
            answer.message_id = self._start_message(answer)
            if request.stop.is_set():
                raise _Stopped()
            if self.models.loaded_id != answer.model_id:
                self._emit(stream, ev.Notice(f"Loading {answer.model_id}…", code="loading"))
                hint = self.models.choice(self.models.spec(answer.model_id)).hint
                if hint and not self._hinted:  # said once per kernel
                    self._hinted = True
                    self._emit(stream, ev.Notice(hint, code="runtime_hint"))
            self.models.prepare(answer.model_id)  # memory check and download, off the model worker
            while True:
                if rounds:
                    answer.message_id = self._start_message(answer)
                calls, finish = self.models.worker.call(lambda: self._round(answer, started))
                if finish == "stopped":
                    status = "stopped"
                    break
                if not calls:
                    break
                rounds += 1
                if rounds > self.settings()["max_tool_rounds"]:
                    self._emit(stream, ev.Notice("Stopped calling tools: too many rounds.", code="tool_rounds"))
                    break
                self._run_tools(answer, calls)
                if request.stop.is_set():
                    status = "stopped"
                    break
        except _Stopped:
            status = "stopped"
        except Exception as exc:
            status = "error"
            self._fail(answer, exc, refused=isinstance(exc, ContextWindowError) and not rounds)
        finally:
            with self._lock:
                self._active.discard(request)
                self._idle.notify_all()
        answer.timings["total"] = time.perf_counter() - started
        totals = answer.totals
        usage = {**totals, "total_tokens": totals["prompt_tokens"] + totals["completion_tokens"]}
        if answer.message_id is not None and status != "error":
            try:
                self.store.update_message(answer.message_id, status=status, timings=answer.timings,
                                          prompt_tokens=totals["prompt_tokens"],
                                          completion_tokens=totals["completion_tokens"])
            except NotFoundError:
                status = "error"
                self._emit(stream, ev.Error(DELETED_MID_ANSWER, code="NotFoundError"))
        self.models.last_used = time.monotonic()
        self.schedule_idle_unload()
        self._emit(stream, ev.Done(request.chat_id, answer.message_id or 0, status, usage, answer.timings))

    def _fail(self, answer: _Answer, exc: Exception, refused: bool) -> None:
        """Say what went wrong in one line and keep it with the chat; a refused request leaves no trace."""
        request = answer.request
        text = str(exc) if isinstance(exc, AnciaError) else f"{type(exc).__name__}: {exc}"
        if isinstance(exc, NotFoundError) and not self._chat_exists(request.chat_id):
            text = DELETED_MID_ANSWER
        self._emit(answer.stream, ev.Error(text, code=type(exc).__name__))
        with contextlib.suppress(NotFoundError):  # the chat may have been deleted meanwhile
            if refused:
                if answer.created_chat:
                    self.store.delete_chat(request.chat_id)
                else:
                    for message_id in (answer.message_id, answer.user_id):
                        if message_id is not None:
                            self.store.delete_message(request.chat_id, message_id)
                answer.message_id = None
            elif answer.message_id is None:
                answer.message_id = self.store.add_message(request.chat_id, "assistant", "", status="error",
                                                           model_id=answer.model_id, error=text)["id"]
            else:
                self.store.update_message(answer.message_id, status="error", error=text)

    def _chat_exists(self, chat_id: int | None) -> bool:
        try:
            self.store.get_chat(chat_id)
            return True
        except NotFoundError:
            return False

    def _start_message(self, answer: _Answer) -> int:
        request = answer.request
        message_id = self.store.add_message(request.chat_id, "assistant", "", status="partial",
                                            model_id=answer.model_id, params=answer.params)["id"]
        self._emit(answer.stream, ev.MessageStarted(request.chat_id, message_id, answer.user_id, answer.model_id))
        return message_id

    # -- on the model worker: one generation round --------------------------------------------------

    def _round(self, answer: _Answer, started: float) -> tuple[list[ToolCallRequest], str]:
        runtime = self.models.load(answer.model_id)
        if answer.tools is _UNSET:
            answer.tools = self._fit_tools(answer, runtime, self._tool_schemas(answer.request, runtime))
        return self._generate(answer, runtime, started)

    def _tool_schemas(self, request: ChatRequest, runtime: Runtime) -> list[dict] | None:
        if request.tools is False or self.tools is None or not runtime.supports_tools:
            return None
        names = list(request.tools) if isinstance(request.tools, (list, tuple)) else None
        return self.tools.schemas(names, chat_id=request.chat_id) or None

    def _fit_tools(self, answer: _Answer, runtime: Runtime, tools: list[dict] | None) -> list[dict] | None:
        """Tool descriptions go with every prompt: when they would take more than half of the context window,
        answer without them (a small window is better spent on the conversation). Say so only when the
        caller chose the tools; the default set is best effort."""
        if not tools:
            return tools
        probe = [{"role": "user", "content": "?"}]
        cost = runtime.count_tokens(probe, tools) - runtime.count_tokens(probe, None)
        window = answer.params["context_window"]
        if cost <= window // 2:
            return tools
        if isinstance(answer.request.tools, (list, tuple)):
            self._emit(answer.stream, ev.Notice(
                f"Left out the tools: their descriptions take {cost} tokens, more than half of the context "
                f"window of {window}. Choose fewer tools, or raise context_window with "
                "`ancia.models.set_params(context_window=...)`.", code="tools_left_out"))
        return None

    def _prompt(self, answer: _Answer, runtime: Runtime) -> tuple[Fit, list[dict]]:
        """The prompt fitted to the context window, and the images of the last user message."""
        request = answer.request
        chat = self.store.get_chat(request.chat_id)
        system = request.system or chat["system_prompt"] or self.settings()["system_prompt"]
        history = [m for m in self.store.history(request.chat_id)
                   if m["status"] != "error" and not (m["role"] == "assistant" and m["status"] == "partial"
                                                      and not m["content"] and not m["tool_calls"])]
        head = [{"role": "system", "content": system}] if system else []
        window = answer.params["context_window"]
        fit = self.fitter.fit(chat["id"], runtime, head, history, answer.tools, window,
                              min(answer.params["max_tokens"], 64))
        if fit.newly_dropped:
            self._emit(answer.stream, ev.Notice(
                f"Left out the {fit.dropped} oldest message(s) to fit the context window of {window} tokens "
                "(they stay in the chat).", code="context_trimmed"))
        users = [m for m in history if m["role"] == "user"]
        return fit, users[-1]["attachments"] if users else []

    def _generate(self, answer: _Answer, runtime: Runtime, started: float) -> tuple[list[ToolCallRequest], str]:
        request, stream, params, message_id = answer.request, answer.stream, answer.params, answer.message_id
        assert message_id is not None
        fit, images = self._prompt(answer, runtime)
        budget = max(1, min(params["max_tokens"], params["context_window"] - fit.size))
        key = (answer.model_id, id(runtime))
        cache = self.caches.take(request.chat_id, key)
        text, last_save = "", time.monotonic()
        final = None
        try:
            for chunk in runtime.stream(fit.tokens or [], {**params, "max_tokens": budget}, cache=cache,
                                        tools=answer.tools, images=images or None,
                                        should_stop=request.stop.is_set, messages=fit.messages):
                if chunk.text:
                    answer.timings.setdefault("time_to_first_token", time.perf_counter() - started)
                    text += chunk.text
                    self._emit(stream, ev.Token(chunk.text, message_id))
                    if time.monotonic() - last_save >= SAVE_INTERVAL:
                        self.store.update_message(message_id, notify=False, content=text)
                        last_save = time.monotonic()
                if chunk.finish_reason:
                    final = chunk
        except BaseException:
            with contextlib.suppress(NotFoundError):
                self.store.update_message(message_id, content=text)
            raise
        self.caches.put(request.chat_id, key, cache)
        calls = final.tool_calls if final else []
        if final:
            answer.totals["prompt_tokens"] += final.prompt_tokens
            answer.totals["cached_tokens"] += final.cached_tokens
            answer.totals["completion_tokens"] += final.generation_tokens
            answer.timings["prompt_tps"] = final.prompt_tps
            answer.timings["generation_tps"] = final.generation_tps
        stored_calls = [{"id": c.id, "name": c.name or "invalid", "arguments": c.arguments} for c in calls]
        self.store.update_message(message_id, content=text, tool_calls=stored_calls or None,
                                  status="complete" if calls else "partial")
        return calls, final.finish_reason if final else "stop"

    # -- tools, on the answer's thread ----------------------------------------------------------------

    def _run_tools(self, answer: _Answer, calls: list[ToolCallRequest]) -> None:
        request, stream = answer.request, answer.stream
        for call in calls:
            shown = self.tools.resolve(call.name) if self.tools is not None and call.name else call.name
            event = ev.ToolCall(call.id, shown, call.arguments, answer.message_id or 0)
            self._emit(stream, event)
            started = time.perf_counter()
            if call.error:
                output, error = None, f"{call.error} Raw text: {call.raw[:500]}"
            elif request.stop.is_set():
                output, error = None, "stopped by the user"
            elif self.tools is None:
                output, error = None, "no tools are available"
            else:
                output, error = self.tools.call(call.name, call.arguments, chat_id=request.chat_id,
                                                approve=request.approve, event=event)
            duration = time.perf_counter() - started
            stored = self.store.add_message(request.chat_id, "tool", output if error is None else f"error: {error}",
                                            tool_call_id=call.id, tool_name=call.name or None)
            self._emit(stream, ev.ToolResult(call.id, shown, output, error, duration, stored["id"]))

    # -- keeping memory in check ----------------------------------------------------------------------

    def _on_store_change(self, kind: str, data: dict) -> None:
        if kind in ("history_changed", "chat_deleted"):
            self.caches.drop(chat_id=data["chat_id"])
            self.fitter.forget(data["chat_id"])
        elif kind == "params_changed":
            self.caches.drop(model_id=data["model_id"])
        elif kind == "reset":
            self.caches.drop()
            self.fitter.forget()

    def _cancel_idle_timer(self) -> None:
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None

    def schedule_idle_unload(self) -> None:
        keep_alive = self.settings()["keep_alive"]
        self._cancel_idle_timer()
        if keep_alive < 0:
            return
        if keep_alive == 0:
            self._unload_if_idle(0)
            return
        self._idle_timer = threading.Timer(keep_alive, self._unload_if_idle, args=(keep_alive,))
        self._idle_timer.daemon = True
        self._idle_timer.start()

    def _unload_if_idle(self, keep_alive: float) -> None:
        if self.busy or time.monotonic() - self.models.last_used < keep_alive:
            return
        self.caches.drop()
        self.models.unload()


DELETED_MID_ANSWER = "The chat was deleted while it was being answered; nothing more was saved."
_UNSET: Any = object()


@dataclass(eq=False)
class _Answer:
    """What one answer carries from round to round."""

    request: ChatRequest
    stream: EventStream
    model_id: str
    params: dict
    user_id: int | None
    created_chat: bool
    message_id: int | None = None
    tools: Any = _UNSET  # the tool schemas the model is shown, fitted in the first round
    totals: dict = field(default_factory=lambda: {"prompt_tokens": 0, "completion_tokens": 0, "cached_tokens": 0})
    timings: dict = field(default_factory=dict)


class _Stopped(Exception):
    pass
