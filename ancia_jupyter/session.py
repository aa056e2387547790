"""The kernel end of the chat UI: one ``PanelSession`` per panel (widget) or sidebar (comm).

It answers the UI's requests by calling the Python API and the app (it holds no chat logic of its own),
and pushes what happens elsewhere in the kernel: the engine's events, batched so that a long answer costs
a few dozen messages instead of one per token, and a fresh snapshot when the store, the settings or the
model state change. The wire format is ``docs/panel-protocol.md``.
"""

from __future__ import annotations

import base64
import binascii
import logging
import threading
import time
from collections.abc import Callable
from functools import partial
from typing import Any

from . import __version__, api
from . import events as ev
from .app import App, get_app
from .catalog import PARAM_BOUNDS
from .engine import ChatRequest, title_from
from .errors import AnciaError, InvalidValueError, NotFoundError

log = logging.getLogger(__name__)

FLUSH_INTERVAL = 0.04  # seconds between two pushes: at most 25 messages a second
APPROVAL_TIMEOUT = 300.0  # seconds a tool call waits for approve/deny before it is denied
MAX_INLINE_IMAGE = 4 * 1024 * 1024  # attachments bigger than this are listed without their bytes

NEW_CHAT_TITLE = "New chat"
SNAPSHOT = object()  # what an action returns when its reply is the fresh snapshot
SLOW_ACTIONS = ("load_model", "unload_model")  # they wait for the model worker: answered from a thread

Send = Callable[[dict], None]


# Actions that are one call of the API, answered with the fresh snapshot. Loading downloads off the model
# worker, then loads on it; unloading waits for the answers in progress, then unloads on the worker.
API_ACTIONS: dict[str, Callable[[Any, dict], Any]] = {
    "state": lambda s, m: None,
    "rename_chat": lambda s, m: api.chats.rename(_arg(m, "chat_id", int), _arg(m, "title", str)),
    "delete_message": lambda s, m: api.chats.delete_message(s._chat(), _arg(m, "message_id", int)),
    "select_model": lambda s, m: api.models.select(_arg(m, "model_id", str)),
    "set_params": lambda s, m: api.models.set_params(_arg(m, "model_id", str, required=False),
                                                     **_arg(m, "params", dict)),
    "update_settings": lambda s, m: s.app.update_settings(**_arg(m, "settings", dict)),
    "load_model": lambda s, m: api.models.load(_arg(m, "model_id", str, required=False)),
    "unload_model": lambda s, m: api.models.unload(),
}


class RequestError(AnciaError):
    """A request the UI made wrong (missing or mistyped argument); its message goes back as the error."""


class PanelSession:
    """One view's conversation with the kernel; several can share the app at once."""

    def __init__(self, send: Send, *, chat_id: int | None = None) -> None:
        self._send_raw = send
        self.app: App = get_app()
        self.current_chat: int | None = None
        self._send_lock = threading.Lock()
        self._flush_lock = threading.RLock()
        self._lock = threading.Lock()
        self._events: list[dict] = []
        self._dirty = False
        self._closed = False
        self._last_flush = 0.0
        self._wake = threading.Event()
        self._approvals: dict[str, dict] = {}
        self._live: dict[int, tuple[int, str]] = {}  # message being written -> (chat, text sent so far)
        if chat_id is not None:
            self.current_chat = self.app.store.get_chat(chat_id)["id"]
        self.app.engine.listeners.append(self._on_event)
        self.app.models.listeners.append(self._changed)
        self._unsubscribe = self.app.store.subscribe(self._changed)
        self._flusher = threading.Thread(target=self._flush_loop, name="ancia-panel-flush", daemon=True)
        self._flusher.start()

    # -- the UI's requests ------------------------------------------------------------------------------

    def handle(self, msg: dict) -> None:
        """Answer one request with exactly one reply; slow ones (loading a model) answer from a thread."""
        if not isinstance(msg, dict) or msg.get("type") != "request":
            return
        request_id = msg.get("id")
        action = msg.get("action")
        method = getattr(self, f"_do_{action}", None) if isinstance(action, str) else None
        if action in API_ACTIONS:
            method = partial(self._api_action, API_ACTIONS[action])
        if method is None:
            self._reply(request_id, error=f"Unknown action {action!r}.")
            return
        if action in SLOW_ACTIONS:
            threading.Thread(target=self._run, args=(request_id, method, msg), daemon=True).start()
            return
        with self._flush_lock:  # no push computed before this action may arrive after its reply
            self._run(request_id, method, msg)

    def _run(self, request_id: Any, method: Callable[[dict], Any], msg: dict) -> None:
        try:
            data = method(msg)
            with self._flush_lock:  # the snapshot and its reply go out with nothing in between
                self._reply(request_id, data=self._fresh_snapshot() if data is SNAPSHOT else data)
        except (AnciaError, KeyError, ValueError, TypeError) as exc:
            text = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)
            self._reply(request_id, error=_one_line(text) or type(exc).__name__)
        except Exception as exc:  # noqa: BLE001 - a bug must still answer the UI, in one line
            self._reply(request_id, error=_one_line(f"{type(exc).__name__}: {exc}"))

    def _reply(self, request_id: Any, *, data: Any = None, error: str | None = None) -> None:
        if error is None:
            self._send({"type": "reply", "id": request_id, "ok": True, "data": data})
        else:
            self._send({"type": "reply", "id": request_id, "ok": False, "error": error})

    def _api_action(self, call: Callable[[Any, dict], Any], msg: dict) -> object:
        call(self, msg)
        return SNAPSHOT

    def _do_select_chat(self, msg: dict) -> dict:
        self.current_chat = self.app.store.get_chat(_arg(msg, "chat_id", int))["id"]
        return SNAPSHOT

    def _do_new_chat(self, msg: dict) -> dict:
        title = _arg(msg, "title", str, required=False) or NEW_CHAT_TITLE
        self.current_chat = api.chats.create(title).id
        return SNAPSHOT

    def _do_delete_chat(self, msg: dict) -> dict:
        chat_id = _arg(msg, "chat_id", int)
        api.chats.delete(chat_id)
        if self.current_chat == chat_id:
            self.current_chat = None
        return SNAPSHOT

    def _do_duplicate_chat(self, msg: dict) -> dict:
        self.current_chat = api.chats.duplicate(_arg(msg, "chat_id", int)).id
        return SNAPSHOT

    def _do_send(self, msg: dict) -> dict:
        text = _arg(msg, "text", str)
        if not text.strip():
            raise InvalidValueError("The message is empty: type a question first.")
        images = [_image(i) for i in _arg(msg, "images", list, required=False) or []]
        chat_id = self._chat_or_none()
        info = self.app.store.get_chat(chat_id) if chat_id is not None else None
        untitled = info is not None and info["title"] == NEW_CHAT_TITLE and info["message_count"] == 0
        holder: dict[str, threading.Event] = {}
        stream = api.chat(text, chat=chat_id, model=self.app.models.selected(), images=images, stream=True,
                          approve=lambda call: self._approve(call, holder))
        holder["stop"] = stream.request.stop
        self.current_chat = stream.request.chat_id
        if untitled:
            self.app.store.update_chat(self.current_chat, title=title_from(text))  # named by its question
        users = [m for m in self.app.store.history(self.current_chat) if m["role"] == "user"]
        return {"chat_id": self.current_chat, "message_id": users[-1]["id"] if users else None}

    def _do_stop(self, msg: dict) -> dict:
        return {"stopped": api.stop(_arg(msg, "chat_id", int, required=False))}

    def _do_regenerate(self, msg: dict) -> dict:
        chat_id = self._chat()
        message_id = _arg(msg, "message_id", int, required=False)
        history = self.app.store.history(chat_id)
        if message_id is not None and not any(m["id"] == message_id for m in history):
            raise NotFoundError(f"Message {message_id} is not in this chat.")
        users = [m for m in history if m["role"] == "user" and (message_id is None or m["id"] <= message_id)]
        if not users:
            raise InvalidValueError("This chat has no question to answer again.")
        return self._answer_again(chat_id, users[-1]["id"])

    def _do_edit_message(self, msg: dict) -> dict:
        chat_id = self._chat()
        message_id = _arg(msg, "message_id", int)
        content = _arg(msg, "content", str)
        if not content.strip():
            raise InvalidValueError("A message cannot be empty: delete it instead.")
        api.chats.edit_message(chat_id, message_id, content)
        if _arg(msg, "regenerate", bool, required=False):
            self._answer_again(chat_id, message_id)
        return SNAPSHOT

    def _do_approve_tool(self, msg: dict) -> dict:
        call_id = _arg(msg, "call_id", str)
        approved = _arg(msg, "approved", bool)
        with self._lock:
            pending = self._approvals.get(call_id)
        if pending is None:
            raise NotFoundError(f"No tool call {call_id!r} is waiting for approval (it may have timed out).")
        pending["approved"] = approved
        pending["event"].set()
        return {"call_id": call_id, "approved": approved}

    def _do_set_tool_enabled(self, msg: dict) -> dict:
        name, enabled = _arg(msg, "name", str), _arg(msg, "enabled", bool)
        if self.app.tools is None:
            raise InvalidValueError("No tools are available in this installation.")
        self.app.store.set_tool_enabled(self.app.tools.get(name).name, enabled)
        return SNAPSHOT

    # -- helpers of the actions -------------------------------------------------------------------------

    def _chat(self) -> int:
        chat_id = self._chat_or_none()
        if chat_id is None:
            raise InvalidValueError("No chat is open: start a new chat first.")
        return chat_id

    def _chat_or_none(self) -> int | None:
        """The current chat, or the most recent one when none was picked or it was deleted elsewhere."""
        if self.current_chat is not None:
            try:
                return self.app.store.get_chat(self.current_chat)["id"]
            except NotFoundError:
                self.current_chat = None
        chats = self.app.store.list_chats()
        self.current_chat = chats[0]["id"] if chats else None
        return self.current_chat

    def _answer_again(self, chat_id: int, user_message_id: int) -> dict:
        """Drop what follows ``user_message_id`` and answer the history as it is, with the selected model."""
        history = self.app.store.history(chat_id)
        after = [m for m in history if m["id"] > user_message_id]
        if after:
            self.app.store.delete_messages_from(chat_id, after[0]["id"])
        holder: dict[str, threading.Event] = {}
        request = ChatRequest(chat_id=chat_id, prompt=None, model=self.app.models.selected(),
                              approve=lambda call: self._approve(call, holder))
        holder["stop"] = request.stop
        self.app.engine.submit(request)
        return {"chat_id": chat_id}

    def _approve(self, call: ev.ToolCall, holder: dict[str, threading.Event]) -> bool:
        """Runs on the model worker: ask the UI and wait for its answer, a stop, a close or the timeout."""
        pending = {"event": threading.Event(), "approved": False,
                   "call": {"id": call.id, "name": call.name, "arguments": call.arguments}}
        with self._lock:
            self._approvals[call.id] = pending
        self.flush()  # the tool_call event must reach the UI before the question about it
        self._send({"type": "approval", "call": pending["call"]})
        deadline = time.monotonic() + APPROVAL_TIMEOUT
        try:
            while not pending["event"].wait(0.1):
                stop = holder.get("stop")
                if self._closed or (stop is not None and stop.is_set()) or time.monotonic() > deadline:
                    return False
            return bool(pending["approved"])
        finally:
            with self._lock:
                self._approvals.pop(call.id, None)

    def _tools(self, chat_id: int | None) -> list[dict]:
        return [] if self.app.tools is None else self.app.tools.list(chat_id)

    # -- the snapshot -----------------------------------------------------------------------------------

    def _fresh_snapshot(self) -> dict:
        """A snapshot for a reply (the caller holds the flush lock): the events before it go out first, and
        the pending push is dropped since the reply carries the same state."""
        events, _, live = self._take(clear_dirty=True)
        if events:
            self._send({"type": "events", "events": merge_tokens(events)})
        return self.snapshot(live)

    def _take(self, *, clear_dirty: bool) -> tuple[list[dict], bool, dict[int, str]]:
        """The pending events, the dirty flag, and the streaming texts those events add up to."""
        with self._lock:
            events, self._events = self._events, []
            dirty = self._dirty
            if clear_dirty:
                self._dirty = False
            return events, dirty, {mid: text for mid, (_, text) in self._live.items()}

    def snapshot(self, live: dict[int, str] | None = None) -> dict:
        """The state a view draws; ``live`` holds the text of answers being written, as sent so far."""
        app = self.app
        chat_id = self._chat_or_none()
        selected = app.models.selected()
        spec = app.models.spec(selected)
        bounds = {name: {"type": kind.__name__, "min": low,
                         "max": spec.context_length if name == "context_window" else high}
                  for name, (kind, low, high) in PARAM_BOUNDS.items()}
        chat = app.store.get_chat(chat_id) if chat_id is not None else None
        with self._lock:
            approvals = [p["call"] for p in self._approvals.values()]
        return {
            "version": __version__, "chats": [_chat_row(c) for c in app.store.list_chats()],
            "current_chat": chat_id,
            "messages": [_message_row(m, live or {}) for m in app.store.history(chat_id)] if chat else [],
            "models": app.models.list(), "selected_model": selected, "loaded_model": app.models.loaded_id,
            "model_state": "generating" if app.engine.busy else app.models.state,
            "params": app.models.params(selected), "param_bounds": bounds, "settings": app.settings(),
            "tools": self._tools(chat_id), "mood": chat["mood"] if chat else None, "approvals": approvals,
        }

    # -- pushes -------------------------------------------------------------------------------------------

    def _on_event(self, event: ev.Event) -> None:
        with self._lock:
            self._events.append(ev.to_dict(event))
            if isinstance(event, (ev.MessageStarted, ev.Done)):  # a new round or the end: the last is written
                for mid in [m for m, (chat_id, _) in self._live.items() if chat_id == event.chat_id]:
                    del self._live[mid]
            if isinstance(event, ev.MessageStarted):
                self._live[event.message_id] = (event.chat_id, "")
            elif isinstance(event, ev.Token) and event.message_id in self._live:
                chat_id, text = self._live[event.message_id]
                self._live[event.message_id] = (chat_id, text + event.text)
        self._wake.set()

    def _changed(self, *_: Any) -> None:
        """A store change or a model state change: a fresh snapshot goes out with the next flush."""
        with self._lock:
            self._dirty = True
        self._wake.set()

    def _flush_loop(self) -> None:
        while True:
            self._wake.wait()
            if self._closed:
                return
            delay = self._last_flush + FLUSH_INTERVAL - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            self._wake.clear()
            try:
                self.flush()
            except Exception:  # a closed app or comm must not end a live panel's updates
                log.warning("ancia: could not update a chat panel", exc_info=True)

    def flush(self) -> None:
        """Send what is pending now: one ``events`` message, then a ``state`` if anything changed."""
        with self._flush_lock:  # one flush at a time keeps the pushes in the order things happened
            events, dirty, live = self._take(clear_dirty=True)
            if events:
                self._send({"type": "events", "events": merge_tokens(events)})
            if dirty and not self._closed:
                self._send({"type": "state", "state": self.snapshot(live)})
            if events or dirty:
                self._last_flush = time.monotonic()

    def _send(self, msg: dict) -> None:
        if self._closed:
            return
        with self._send_lock:
            self._send_raw(msg)

    def close(self) -> None:
        """Stop listening and pushing; tool calls still waiting for this view are denied."""
        if self._closed:
            return
        self._closed = True
        self._wake.set()
        if self._on_event in self.app.engine.listeners:
            self.app.engine.listeners.remove(self._on_event)
        if self._changed in self.app.models.listeners:
            self.app.models.listeners.remove(self._changed)
        self._unsubscribe()
        with self._lock:
            for pending in self._approvals.values():
                pending["event"].set()


def merge_tokens(events: list[dict]) -> list[dict]:
    """Join runs of token deltas of the same message, so a batch carries one token event per message."""
    out: list[dict] = []
    for event in events:
        last = out[-1] if out else None
        if (event["type"] == "token" and last is not None and last["type"] == "token"
                and last["message_id"] == event["message_id"]):
            out[-1] = {**last, "text": last["text"] + event["text"]}
        else:
            out.append(event)
    return out


def _arg(msg: dict, name: str, kind: type, *, required: bool = True) -> Any:
    value = msg.get(name)
    if value is None:
        if required:
            raise RequestError(f"Missing {name!r} for {msg.get('action')}.")
        return None
    if kind is int and isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value)
    if isinstance(value, bool) and kind is not bool or not isinstance(value, kind):
        raise RequestError(f"{name!r} must be {_KIND_NAMES[kind]} (got {value!r}).")
    return value


_KIND_NAMES = {int: "an integer", str: "a string", bool: "true or false", list: "a list", dict: "an object"}


def _image(item: Any) -> dict:
    if not isinstance(item, dict) or not isinstance(item.get("data"), str):
        raise RequestError("Each image must be {data: base64, mime}.")
    mime = item.get("mime") or "image/png"
    if not isinstance(mime, str) or not mime.startswith("image/"):
        raise RequestError(f"Only images can be attached (got {mime!r}).")
    try:
        data = base64.b64decode(item["data"].split(",", 1)[-1], validate=True)
    except (binascii.Error, ValueError):
        raise RequestError("An attached image is not valid base64.") from None
    return {"data": data, "mime": mime}


def _chat_row(chat: dict) -> dict:
    return {k: chat.get(k) for k in ("id", "title", "model_id", "mood", "message_count", "created_at",
                                     "updated_at")}


def _message_row(m: dict, live: dict[int, str]) -> dict:
    row = {k: m.get(k) for k in ("id", "chat_id", "role", "content", "status", "model_id", "tool_calls",
                                 "tool_call_id", "tool_name", "error", "created_at", "completion_tokens",
                                 "timings")}
    row["streaming"] = m["id"] in live
    if row["streaming"]:
        row["content"] = live[m["id"]]  # exactly the tokens sent before this snapshot; later ones follow
    row["attachments"] = [
        {"mime": a.get("mime"), "path": a.get("path"),
         "data": base64.b64encode(a["data"]).decode() if a.get("data") and len(a["data"]) <= MAX_INLINE_IMAGE
         else None}
        for a in m.get("attachments") or []
    ]
    return row


def _one_line(text: str) -> str:
    return " ".join(str(text).split())
