"""The kernel end of a chat view: one ``PanelSession`` per panel (widget) or sidebar (comm).

It answers the view's requests through the action table (``panel_actions.py``), follows the view's current
chat (the events of every answer written there, whoever asked, subscribed on the conversation service),
and pushes what changed elsewhere as a fresh snapshot. Pushes are batched, so a long answer costs a few
dozen messages instead of one per token, and no snapshot is pushed while the followed chat is being
answered: the view draws that answer from its events, and gets one snapshot once it is done. A model's
download goes out as it progresses, whoever started it. The wire format is ``docs/panel-protocol.md``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from .. import events as ev
from ..app import App, get_app
from ..changes import Change, ChatDeleted, ModelStateChanged, NotebookChatChanged, Reset
from ..errors import AnciaError, InvalidValueError, NotFoundError
from ..model_manager import progress
from ..version import __version__
from .notebook_bridge import NotebookBridge
from .notebook_identity import kernel_notebook
from .panel_actions import ACTIONS, SNAPSHOT, Action
from .panel_state import snapshot

log = logging.getLogger(__name__)

FLUSH_INTERVAL = 0.04  # seconds between two pushes: at most 25 messages a second

Send = Callable[[dict], None]


class PanelSession:
    """One view's conversation with the kernel; several can share the app at once."""

    def __init__(self, send: Send, *, chat_id: int | None = None) -> None:
        self._send_raw = send
        self.app: App = get_app()
        self.notebook = kernel_notebook()
        self._current: int | None = None
        if chat_id is not None:
            self.current_chat = chat_id
        else:
            self._current = self.app.conversations.current_chat(self.notebook)
        # What goes out (replies, pushes, approvals) goes out under this lock, in the order it happened.
        self._lock = threading.RLock()
        self._follow_lock = threading.Lock()  # the subscription; taken from change listeners, so never waits on _lock
        self._events: deque[ev.Event] = deque()  # the followed chat's events, not pushed yet
        self._dirty = False  # the store or the settings changed: a snapshot goes out when no answer runs
        self._model_changed = False  # the model's state changed (loading, ready): a snapshot goes out now
        self._closed = False
        self._bridge: tuple[NotebookBridge, Callable[[], None]] | None = None  # and its detach
        self._last_flush = 0.0
        self._wake = threading.Event()
        self._followed: int | None = None
        self._unfollow: Callable[[], None] | None = None
        self._telling_again = False
        # The latest report of each download not pushed yet; written on the downloading thread.
        self._downloads: dict[tuple[str, str], dict] = {}
        self._downloads_lock = threading.Lock()
        self._unsubscribe = self.app.changes.subscribe(self._on_change)
        self._unwatch = progress.watch(self._on_download)
        self.follow()
        self._flusher = threading.Thread(target=self._flush_loop, name="ancia-panel-flush", daemon=True)
        self._flusher.start()

    # -- the view's requests ------------------------------------------------------------------------------

    def handle(self, msg: dict) -> None:
        """Answer one request with exactly one reply; slow ones (loading a model) answer from a thread."""
        if isinstance(msg, dict) and msg.get("type") == "notebook_reply" and self._bridge is not None:
            self._bridge[0].deliver(msg)  # a tool's thread waits for it
        if not isinstance(msg, dict) or msg.get("type") != "request":
            return
        name = msg.get("action")
        action = ACTIONS.get(name) if isinstance(name, str) else None
        if action is None:
            self._reply(msg.get("id"), error=f"Unknown action {name!r}.")
        elif action.slow:
            threading.Thread(target=self._run, args=(action, msg), daemon=True).start()
        else:
            with self._lock:  # no push computed before this action may arrive after its reply
                self._run(action, msg)

    def _run(self, action: Action, msg: dict) -> None:
        request_id = msg.get("id")
        try:
            data = action(self, msg)
            self.follow()  # the action may have opened another chat
            with self._lock:  # the snapshot and its reply go out with nothing in between
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

    def chat(self) -> int:
        chat_id = self.chat_or_none()
        if chat_id is None:
            raise InvalidValueError("No chat is open: start a new chat first.")
        return chat_id

    @property
    def current_chat(self) -> int | None:
        return self._current

    @current_chat.setter
    def current_chat(self, chat_id: int | None) -> None:
        """Open ``chat_id`` here; it becomes the notebook's chat, which its other views and magics follow."""
        self._current = chat_id
        self.app.conversations.set_current_chat(self.notebook, chat_id)

    def chat_or_none(self) -> int | None:
        """The chat this view shows: its notebook's chat (None until the first question starts one)."""
        if self._current is not None:
            try:
                return self.app.store.get_chat(self._current)["id"]
            except NotFoundError:  # deleted elsewhere
                self._current = None
        self._current = self.app.conversations.current_chat(self.notebook)
        return self._current

    # -- following the current chat -------------------------------------------------------------------------

    def follow(self, *, replay: bool = False) -> None:
        """Subscribe to the current chat's answers, if that is not the chat followed already. ``replay``
        subscribes anew, so that the answer in progress comes again from its first event: a view that just
        connected shows all of it (one that had it starts it over from the same events)."""
        with self._follow_lock:
            chat_id = None if self._closed else self.chat_or_none()
            if chat_id == self._followed and not replay:
                return
            if self._unfollow is not None:
                self._unfollow()
            self._followed, self._unfollow = chat_id, None
            if chat_id is not None:
                self._telling_again = True  # what is said now was said before: its notices are old news
                try:
                    self._unfollow = self.app.conversations.subscribe(chat_id, self._on_event)
                finally:
                    self._telling_again = False

    def _on_event(self, event: ev.Event) -> None:
        """Called as the followed chat's answers write (on each answer's thread): kept short. An answer told
        again leaves out its notices, but for "Loading <model>…": the view shows that one while it is true (an
        answer that starts a chat is told again from its start, so this is the only way its view hears it)."""
        if not (self._telling_again and isinstance(event, ev.Notice) and event.code != "loading"):
            self._events.append(event)
            self._wake.set()

    def _on_change(self, change: Change) -> None:
        """Anything changed elsewhere: the model's state goes out at once, the rest in the next snapshot; when
        the notebook went on in another chat (a magic, another view), this view follows it."""
        if isinstance(change, ModelStateChanged):
            self._model_changed = True
        else:
            self._dirty = True
            if isinstance(change, NotebookChatChanged) and change.notebook == self.notebook:
                self._current = change.chat_id
                self.follow()  # now, so that an answer starting there is followed from its start
            elif isinstance(change, Reset) or isinstance(change, ChatDeleted) and change.chat_id == self._followed:
                self.follow()
        self._wake.set()

    def _on_download(self, download: progress.Download) -> None:
        """A download moved on: its latest report goes out with the next push (the last one always does)."""
        with self._downloads_lock:
            self._downloads[(download.model_id, download.file)] = download.to_dict()
        self._wake.set()

    def notebook_bridge(self, enabled: bool) -> dict:
        """The view's front end answers for the notebook (the sidebar), or no longer: the notebook tools reach
        it through the app's ``NotebookAccess`` while it is attached. A front end whose messages come on a
        kernel subshell answers even while a cell runs."""
        if self._bridge is not None:
            bridge, detach = self._bridge
            self._bridge = None
            detach()
            bridge.close()
        if enabled and not self._closed:
            bridge = NotebookBridge(self._send, answers_while_busy=threading.current_thread() is not
                                    threading.main_thread())
            self._bridge = (bridge, self.app.notebook.attach(bridge))
        return {"attached": self._bridge is not None}

    def approve(self, call: ev.ToolCall) -> bool:
        """Ask this view about a tool call marked ``confirm=True`` (for the answers it asks for)."""
        return self.app.conversations.approvals.ask(call, owner=self, announce=self._announce)

    def _announce(self, call: dict) -> None:
        """A tool call waits for this view's decision: its card goes out first, then the question."""
        with self._lock:
            self._push_events()
            self._send({"type": "approval", "call": call})

    # -- pushes ---------------------------------------------------------------------------------------------

    def snapshot(self) -> dict:
        """The state a view draws: stored chats and messages, models, settings, and this view's approvals."""
        self.follow()
        return {"version": __version__, **snapshot(self.app, self._followed,
                                                   self.app.conversations.approvals.pending(self))}

    def _fresh_snapshot(self) -> dict:
        """A snapshot for a reply (under the lock): the events before it go out first, and the pending push
        is dropped since the reply carries the same state."""
        self._push_events()
        self._dirty = self._model_changed = False
        return self.snapshot()

    def _push_events(self) -> bool:
        events = []
        while self._events:
            events.append(ev.to_dict(self._events.popleft()))
        if events:
            self._send({"type": "events", "events": merge_tokens(events)})
        return bool(events)

    def _push_downloads(self) -> bool:
        with self._downloads_lock:
            downloads, self._downloads = list(self._downloads.values()), {}
        for download in downloads:
            self._send({"type": "download", "download": download})
        return bool(downloads)

    def flush(self) -> None:
        """Send what is pending now: one ``events`` message, then a ``state`` if something changed (a change
        to the store or settings waits while the followed chat is being answered)."""
        with self._lock:
            pushed = self._push_downloads()
            pushed = self._push_events() or pushed
            answering = bool(self._events) or (self._followed is not None
                                                and self.app.conversations.generating(self._followed))
            if self._model_changed or self._dirty and not answering:
                self._dirty = self._model_changed = False
                if not self._closed:
                    self._send({"type": "state", "state": self.snapshot()})
                pushed = True
            if pushed:
                self._last_flush = time.monotonic()

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

    def _send(self, msg: dict) -> None:
        if not self._closed:
            with self._lock:
                self._send_raw(msg)

    def close(self) -> None:
        """Stop following and pushing; tool calls still waiting for this view are denied."""
        if self._closed:
            return
        self._closed = True
        self._wake.set()
        self._unsubscribe()
        self._unwatch()
        self.follow()  # closed: follows nothing
        self.app.conversations.approvals.withdraw(self)
        self.notebook_bridge(False)


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


def _one_line(text: str) -> str:
    return " ".join(str(text).split())
