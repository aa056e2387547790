"""The one way to hear that something changed: chats, messages, settings, tools, plugins, the loaded model.

Each change is a small frozen dataclass, typed like an answer's events (``events.py``); the app owns one
``Changes`` channel, the store, the tool registry and the model manager publish to it, and views and caches
subscribe. ``subscribe`` returns the function that unsubscribes. A listener that fails never breaks the
write that published the change.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class ChatCreated:
    chat_id: int


@dataclass(frozen=True)
class ChatUpdated:
    chat_id: int
    fields: tuple[str, ...]


@dataclass(frozen=True)
class ChatDeleted:
    chat_id: int


@dataclass(frozen=True)
class MessageAdded:
    chat_id: int
    message_id: int


@dataclass(frozen=True)
class MessageUpdated:
    message_id: int
    fields: tuple[str, ...]


@dataclass(frozen=True)
class HistoryChanged:
    """Messages of a chat were edited or deleted: what was remembered of its prompt is stale."""

    chat_id: int
    from_message_id: int | None


@dataclass(frozen=True)
class SettingsChanged:
    keys: tuple[str, ...]


@dataclass(frozen=True)
class ParamsChanged:
    model_id: str


@dataclass(frozen=True)
class ModelsChanged:
    """A user's own model was registered or removed."""

    model_id: str


@dataclass(frozen=True)
class ToolsChanged:
    name: str


@dataclass(frozen=True)
class PluginsChanged:
    plugin_id: str


@dataclass(frozen=True)
class McpServersChanged:
    """An MCP server was added, removed, switched on or off, trusted, or started, stopped or failed."""

    name: str


@dataclass(frozen=True)
class Reset:
    """Everything was deleted (``ancia.reset``)."""


@dataclass(frozen=True)
class NotebookChatChanged:
    """A notebook's current chat changed (a view opened or made a chat, a magic switched): every view and
    the magics of that notebook go on in it."""

    notebook: str | None  # None: the kernel runs no notebook (a console, a script)
    chat_id: int | None


@dataclass(frozen=True)
class ModelStateChanged:
    state: str  # not_loaded, loading, ready
    model_id: str | None


Change = (ChatCreated | ChatUpdated | ChatDeleted | MessageAdded | MessageUpdated | HistoryChanged
          | SettingsChanged | ParamsChanged | ModelsChanged | ToolsChanged | PluginsChanged | Reset
          | NotebookChatChanged
          | ModelStateChanged | McpServersChanged)
Listener = Callable[[Change], None]


class Changes:
    """A channel of changes: every listener gets every change, in the order they were published."""

    def __init__(self) -> None:
        self._listeners: tuple[Listener, ...] = ()
        self._lock = threading.Lock()

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        with self._lock:
            self._listeners = (*self._listeners, listener)

        def unsubscribe() -> None:
            with self._lock:
                self._listeners = tuple(x for x in self._listeners if x is not listener)

        return unsubscribe

    def publish(self, change: Change) -> None:
        for listener in self._listeners:
            try:
                listener(change)
            except Exception:  # a broken view must never break a write
                pass
