"""The one engine per kernel: store, model worker, model manager, tools and engine, made on first use.

Every view (``ancia.chat``, the magics, the panels, the sidebar comm) goes through ``get_app()``, so
they share the same chats, the same loaded model and the same stream of events.
"""

from __future__ import annotations

import threading
from typing import Any

from . import config
from .engine import Engine
from .model_manager import ModelManager
from .paths import data_dir
from .store import Store
from .worker import Worker


class App:
    def __init__(self) -> None:
        self.data_dir = data_dir()
        self.store = Store()
        self.worker = Worker()
        self.models = ModelManager(self.store, self.worker, self.settings)
        self.tools = _make_tools(self)
        self.engine = Engine(self.store, self.models, self.settings, self.tools)

    def settings(self) -> dict[str, Any]:
        return config.resolve(self.store.get_settings())

    def update_settings(self, **changes: Any) -> dict[str, Any]:
        config.validate(changes)
        if "selected_model" in changes:
            self.models.spec(changes["selected_model"])
        self.store.set_settings(changes)
        return self.settings()

    def close(self) -> None:
        self.engine.stop()
        self.engine._cancel_idle_timer()
        try:
            self.models.unload()
        finally:
            self.worker.close()
            self.store.close()


def _make_tools(app: App) -> Any:
    try:
        from .tools import ToolRegistry
    except ImportError:
        return None
    return ToolRegistry(app)


_app: App | None = None
_lock = threading.Lock()


def get_app() -> App:
    """The kernel's app, made anew if ``ANCIA_DATA_DIR`` now points elsewhere."""
    global _app
    with _lock:
        if _app is None or _app.data_dir != data_dir():
            if _app is not None:
                _app.close()
            _app = App()
        return _app


def close_app() -> None:
    global _app
    with _lock:
        if _app is not None:
            _app.close()
            _app = None
