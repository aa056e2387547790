"""The one engine per kernel: store, model worker, model manager, tools and engine, made on first use.

Every view (``ancia.chat``, the magics, the panels, the sidebar comm) goes through ``get_app()``, so
they share the same chats, the same loaded model and the same stream of events. Imports flow one way:
this module wires the tool registry, the built-ins, the installed plugins and the user's own tools; none
of those import it (``ancia.tools`` and ``ancia.plugins``, in ``api_tools``/``api_plugins``, look the app
up when called).
"""

from __future__ import annotations

import atexit
import contextlib
import threading
from typing import Any

from . import config
from .changes import Changes, ModelStateChanged
from .completion.service import Completions
from .engine.chat_engine import Engine
from .engine.conversation import Conversations
from .mcp.manager import McpServers
from .model_manager.manager import ModelManager
from .paths import data_dir
from .plugins.loading import load_installed
from .plugins.manager import PluginManager
from .store.database import Store
from .tools.builtins import register_builtins
from .tools.notebook_access import NotebookAccess
from .tools.registry import ToolRegistry
from .tools.user_tools import UserTools


class App:
    def __init__(self, user_tools: UserTools) -> None:
        self.data_dir = data_dir()
        self.changes = Changes()
        self.store = Store(changes=self.changes)
        self.models = ModelManager(self.store, self.settings,
                                   lambda state, model: self.changes.publish(ModelStateChanged(state, model)))
        self.user_tools = user_tools
        # The notebook as the tools reach it: a front end (the sidebar) attaches itself; a stop reaches a run there.
        self.notebook = NotebookAccess(stopped=lambda chat_id: self.conversations._stop_requested(chat_id))
        self.tools = ToolRegistry(self.store, self.settings, self.models.tool_ability, self.notebook)
        register_builtins(self.tools)
        with user_tools.joining(self.tools):  # plugins first: at start, one keeps a name a user tool wants
            load_installed(self.tools, self.store)
        self.plugins = PluginManager(self.store, self.tools, self.data_dir, self.settings, self.update_settings)
        self.mcp = McpServers(self.store, self.tools, self.settings, self.data_dir / "mcp")
        self.engine = Engine(self.store, self.models, self.settings, self.mcp.tool_catalog())  # starts MCP servers
        self.conversations = Conversations(self.store, self.engine, self.models)
        self.completions = Completions(self.models)  # inline completion: one at a time, on the worker

    def settings(self) -> dict[str, Any]:
        return config.resolve(self.store.get_settings())

    def update_settings(self, **changes: Any) -> dict[str, Any]:
        config.validate(changes)
        if "selected_model" in changes:
            self.models.spec(changes["selected_model"])
        self.store.set_settings(changes)
        return self.settings()

    def close(self) -> None:
        self.user_tools.leave(self.tools)
        self.conversations.stop()
        self.mcp.close()  # no MCP server's process outlives the app
        try:
            self.models.close()
        finally:
            self.engine.close()
            self.store.close()


_app: App | None = None
_lock = threading.Lock()
_user_tools: UserTools | None = None
_user_tools_lock = threading.Lock()  # not ``_lock``: a plugin's ``@ancia.tool`` runs while an app is made


def get_app() -> App:
    """The kernel's app, made anew if ``ANCIA_DATA_DIR`` now points elsewhere."""
    global _app
    with _lock:
        if _app is None or _app.data_dir != data_dir():
            if _app is not None:
                _app.close()
            _app = App(user_tools())
        return _app


@atexit.register
def _at_exit() -> None:
    """At the kernel's end: what the database refused is written a last time, the model is freed and the
    model worker stops before the interpreter does (a worker left inside MLX or llama.cpp then would abort)."""
    with contextlib.suppress(BaseException):
        close_app()


def user_tools() -> UserTools:
    """The user's own tools for the data dir in use, whether or not its app runs: they outlive the app
    closing and starting again; another data dir is another assistant, which starts without them."""
    global _user_tools
    with _user_tools_lock:
        if _user_tools is None or _user_tools.data_dir != data_dir():
            _user_tools = UserTools(data_dir())
        return _user_tools


def close_app() -> None:
    global _app
    with _lock:
        if _app is not None:
            _app.close()
            _app = None
