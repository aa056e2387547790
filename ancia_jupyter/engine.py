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
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import events as ev
from .errors import AnciaError, InvalidValueError, NotFoundError
from .model_manager import ModelManager, check_params
from .runtimes import PromptCache, Runtime, ToolCallRequest
from .store import Store

if TYPE_CHECKING:
    from .response import Response

SAVE_INTERVAL = 0.5  # seconds between saves of a growing answer
CACHE_BUDGET_BYTES = 2 * 1024**3  # prompt caches kept across chats, least recently used dropped first
CACHE_MAX_CHATS = 16


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


class PromptCaches:
    """Per-chat prompt caches, bounded by count and bytes, least recently used dropped first."""

    def __init__(self) -> None:
        self._caches: OrderedDict[int, tuple[tuple, PromptCache]] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, chat_id: int, key: tuple) -> PromptCache:
        with self._lock:
            entry = self._caches.pop(chat_id, None)
        return entry[1] if entry and entry[0] == key else PromptCache()

    def put(self, chat_id: int, key: tuple, cache: PromptCache) -> None:
        with self._lock:
            self._caches[chat_id] = (key, cache)
            while len(self._caches) > CACHE_MAX_CHATS or (
                len(self._caches) > 1 and sum(c.nbytes for _, c in self._caches.values()) > CACHE_BUDGET_BYTES
            ):
                self._caches.popitem(last=False)

    def drop(self, chat_id: int | None = None, model_id: str | None = None) -> None:
        with self._lock:
            for cid in list(self._caches):
                if chat_id is None and model_id is None or cid == chat_id or self._caches[cid][0][0] == model_id:
                    del self._caches[cid]

    def __contains__(self, chat_id: int) -> bool:
        return chat_id in self._caches


def _as_template_message(m: dict) -> dict:
    out: dict[str, Any] = {"role": m["role"], "content": m["content"]}
    if m.get("attachments"):
        out["images"] = m["attachments"]  # vision runtimes place and count them; text templates ignore the key
    if m.get("tool_calls"):
        out["tool_calls"] = [
            {"id": c["id"], "type": "function", "function": {"name": c["name"], "arguments": c["arguments"]}}
            for c in m["tool_calls"]
        ]
    if m["role"] == "tool":
        out["tool_call_id"] = m.get("tool_call_id")
        out["name"] = m.get("tool_name")
    return out


def title_from(prompt: str) -> str:
    """A chat's title, from its first question."""
    words = " ".join(prompt.split())
    return (words[:60] + "…") if len(words) > 60 else words


def _turns(history: list[dict]) -> list[list[dict]]:
    """Split history into turns, each starting at a user message; a turn is never split."""
    turns: list[list[dict]] = []
    for m in history:
        if m["role"] == "user" or not turns:
            turns.append([])
        turns[-1].append(m)
    return turns


class Engine:
    def __init__(self, store: Store, models: ModelManager, settings: Callable[[], dict], tools: Any = None) -> None:
        self.store = store
        self.models = models
        self.settings = settings
        self.tools = tools  # the tool registry: schemas(names) and call(name, arguments, chat_id)
        self.caches = PromptCaches()
        self.listeners: list[Callable[[ev.Event], None]] = []  # every event of every answer (panels)
        self._active: set[ChatRequest] = set()
        self._lock = threading.Lock()
        self._idle_timer: threading.Timer | None = None
        store.subscribe(self._on_store_change)

    # -- public -------------------------------------------------------------------------------------

    def submit(self, request: ChatRequest) -> EventStream:
        """Check the request, store the user's message (in a new chat when ``chat_id`` is None), then answer
        on the model worker; returns the answer's events. Bad input raises here and stores nothing."""
        chat = self.store.get_chat(request.chat_id) if request.chat_id is not None else None
        if request.prompt is not None and (not isinstance(request.prompt, str) or not request.prompt.strip()):
            raise InvalidValueError("The prompt is empty: ask something.")
        spec = self.models.spec(request.model or (chat and chat["model_id"]) or None)
        model_id = spec.id
        params = {**self.models.params(model_id), **check_params(spec, request.params)}
        if request.images and not spec.vision:
            raise InvalidValueError(f"{model_id} cannot see images; select a vision model to attach images.")
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
        self.models.worker.submit(lambda: self._run(request, stream, model_id, params, user_id))
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

    # -- on the worker ------------------------------------------------------------------------------

    def _emit(self, stream: EventStream, event: ev.Event) -> None:
        stream.put(event)
        for listener in list(self.listeners):
            try:
                listener(event)
            except Exception:
                pass

    def _run(self, request: ChatRequest, stream: EventStream, model_id: str, params: dict, user_id: int | None) -> None:
        message_id: int | None = None
        started = time.perf_counter()
        totals = {"prompt_tokens": 0, "completion_tokens": 0, "cached_tokens": 0}
        timings: dict[str, float] = {}
        status = "complete"
        try:
            message_id = self._start_message(request, stream, model_id, params, user_id)
            if request.stop.is_set():
                raise _Stopped()
            if self.models.loaded_id != model_id:
                self._emit(stream, ev.Notice(f"Loading {model_id}…", code="loading"))
            runtime = self.models.load(model_id)
            tools = self._fit_tools(request, runtime, params, self._tool_schemas(request, runtime), stream)
            rounds = 0
            while True:
                if rounds:
                    message_id = self._start_message(request, stream, model_id, params, user_id)
                calls, finish = self._generate(request, stream, runtime, model_id, params, tools, message_id,
                                               totals, timings, started)
                if finish == "stopped":
                    status = "stopped"
                    break
                if not calls:
                    break
                rounds += 1
                if rounds > self.settings()["max_tool_rounds"]:
                    self._emit(stream, ev.Notice("Stopped calling tools: too many rounds.", code="tool_rounds"))
                    break
                self._run_tools(request, stream, calls, message_id)
                if request.stop.is_set():
                    status = "stopped"
                    break
        except _Stopped:
            status = "stopped"
        except Exception as exc:
            status = "error"
            text = str(exc) if isinstance(exc, AnciaError) else f"{type(exc).__name__}: {exc}"
            self._emit(stream, ev.Error(text, code=type(exc).__name__))
            with contextlib.suppress(NotFoundError):  # the chat may have been deleted meanwhile
                if message_id is None:
                    message_id = self.store.add_message(request.chat_id, "assistant", "", status="error",
                                                        model_id=model_id, error=text)["id"]
                else:
                    self.store.update_message(message_id, status="error", error=text)
        finally:
            with self._lock:
                self._active.discard(request)
        timings["total"] = time.perf_counter() - started
        usage = {**totals, "total_tokens": totals["prompt_tokens"] + totals["completion_tokens"]}
        if message_id is not None and status != "error":
            try:
                self.store.update_message(message_id, status=status, timings=timings,
                                          prompt_tokens=totals["prompt_tokens"],
                                          completion_tokens=totals["completion_tokens"])
            except NotFoundError:
                status = "error"
                self._emit(stream, ev.Error("The chat was deleted while it was being answered.", code="NotFoundError"))
        self.models.last_used = time.monotonic()
        self.schedule_idle_unload()
        self._emit(stream, ev.Done(request.chat_id, message_id or 0, status, usage, timings))

    def _fit_tools(self, request: ChatRequest, runtime: Runtime, params: dict, tools: list[dict] | None,
                   stream: EventStream) -> list[dict] | None:
        """Tool descriptions go with every prompt: when they would take more than half of the context window,
        answer without them (a small window is better spent on the conversation). Say so only when the
        caller chose the tools; the default set is best effort."""
        if not tools:
            return tools
        probe = [{"role": "user", "content": "?"}]
        cost = len(runtime.prompt_tokens(probe, tools)) - len(runtime.prompt_tokens(probe, None))
        window = params["context_window"]
        if cost <= window // 2:
            return tools
        if isinstance(request.tools, list):
            self._emit(stream, ev.Notice(
                f"Left out the tools: their descriptions take {cost} tokens, more than half of the context "
                f"window of {window}. Choose fewer tools, or raise context_window with "
                "`ancia.models.set_params(context_window=...)`.", code="tools_left_out"))
        return None

    def _start_message(self, request: ChatRequest, stream: EventStream, model_id: str, params: dict,
                       user_id: int | None) -> int:
        message_id = self.store.add_message(request.chat_id, "assistant", "", status="partial",
                                            model_id=model_id, params=params)["id"]
        self._emit(stream, ev.MessageStarted(request.chat_id, message_id, user_id, model_id))
        return message_id

    def _tool_schemas(self, request: ChatRequest, runtime: Runtime) -> list[dict] | None:
        if request.tools is False or self.tools is None or not runtime.supports_tools:
            return None
        names = request.tools if isinstance(request.tools, list) else None
        return self.tools.schemas(names, chat_id=request.chat_id) or None

    def _prompt(self, request: ChatRequest, runtime: Runtime, params: dict,
                tools: list[dict] | None, stream: EventStream) -> tuple[list[int], list[dict]]:
        """The prompt's tokens, fitted to the context window, and the images of the last user message."""
        chat = self.store.get_chat(request.chat_id)
        system = request.system or chat["system_prompt"] or self.settings()["system_prompt"]
        history = [m for m in self.store.history(request.chat_id)
                   if m["status"] != "error" and not (m["role"] == "assistant" and m["status"] == "partial"
                                                      and not m["content"] and not m["tool_calls"])]
        turns = _turns(history)
        head = [{"role": "system", "content": system}] if system else []
        window = params["context_window"]

        def render(drop: int) -> list[int]:
            kept = [_as_template_message(m) for turn in turns[drop:] for m in turn]
            return runtime.prompt_tokens(head + kept, tools)

        tokens = render(0)
        if len(tokens) + min(params["max_tokens"], 64) > window and turns:
            low, high = 1, len(turns) - 1  # binary search for the fewest turns to drop
            best = None
            while low <= high:
                mid = (low + high) // 2
                candidate = render(mid)
                if len(candidate) + min(params["max_tokens"], 64) <= window:
                    best, high = (mid, candidate), mid - 1
                else:
                    low = mid + 1
            if best is None:
                raise InvalidValueError(
                    f"The prompt needs {len(render(len(turns) - 1))} tokens but the context window is {window}. "
                    "Shorten it, or raise context_window with `ancia.models.set_params(context_window=...)`.")
            dropped = sum(len(t) for t in turns[: best[0]])
            self._emit(stream, ev.Notice(f"Left out the {dropped} oldest message(s) to fit the context window "
                                         f"of {window} tokens.", code="context_trimmed"))
            tokens = best[1]
        users = [m for m in history if m["role"] == "user"]
        return tokens, users[-1]["attachments"] if users else []

    def _generate(self, request: ChatRequest, stream: EventStream, runtime: Runtime, model_id: str, params: dict,
                  tools: list[dict] | None, message_id: int, totals: dict, timings: dict,
                  started: float) -> tuple[list[ToolCallRequest], str]:
        prompt, images = self._prompt(request, runtime, params, tools, stream)
        budget = max(1, min(params["max_tokens"], params["context_window"] - len(prompt)))
        key = (model_id, id(runtime))
        cache = self.caches.take(request.chat_id, key)
        text, last_save = "", time.monotonic()
        final = None
        try:
            for chunk in runtime.stream(prompt, {**params, "max_tokens": budget}, cache=cache, tools=tools,
                                        images=images or None, should_stop=request.stop.is_set):
                if chunk.text:
                    timings.setdefault("time_to_first_token", time.perf_counter() - started)
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
            totals["prompt_tokens"] += final.prompt_tokens
            totals["cached_tokens"] += final.cached_tokens
            totals["completion_tokens"] += final.generation_tokens
            timings["prompt_tps"] = final.prompt_tps
            timings["generation_tps"] = final.generation_tps
        stored_calls = [{"id": c.id, "name": c.name or "invalid", "arguments": c.arguments} for c in calls]
        self.store.update_message(message_id, content=text, tool_calls=stored_calls or None,
                                  status="complete" if calls else "partial")
        return calls, final.finish_reason if final else "stop"

    def _run_tools(self, request: ChatRequest, stream: EventStream, calls: list[ToolCallRequest],
                   message_id: int) -> None:
        for call in calls:
            shown = self.tools.resolve(call.name) if self.tools is not None and call.name else call.name
            event = ev.ToolCall(call.id, shown, call.arguments, message_id)
            self._emit(stream, event)
            started = time.perf_counter()
            if call.error:
                output, error = None, f"{call.error} Raw text: {call.raw[:500]}"
            elif request.stop.is_set():
                output, error = None, "stopped by the user"
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
        elif kind == "params_changed":
            self.caches.drop(model_id=data["model_id"])
        elif kind == "reset":
            self.caches.drop()

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


class _Stopped(Exception):
    pass
