"""The Python API: ``ancia.chat``, ``ancia.stop``, ``ancia.chats``, ``ancia.models``, ``ancia.settings``.

Thin: each call finds the kernel's app and asks the conversation service, the store or the model manager.
Asking and chats are ``api_chats``; models and settings ``api_models``; what concerns the whole app is here.
"""

from __future__ import annotations

from .api_chats import PARAM_OPTIONS as PARAM_OPTIONS
from .api_chats import Chat, Chats, chat, export_chat, stop
from .api_models import Models, Settings
from .api_plugins import plugins
from .api_tools import tool, tools
from .app import close_app, get_app
from .errors import InvalidValueError


def app_state() -> dict:
    """Everything a view needs to draw itself: model state, settings, chats, version."""
    from .version import __version__

    app = get_app()
    return {
        "version": __version__,
        "data_dir": str(app.data_dir),
        "database": str(app.store.path),
        "selected_model": app.models.selected(),
        "loaded_model": app.models.loaded_id,
        "model_state": app.conversations.model_state(),
        "settings": app.settings(),
        "chats": len(app.store.list_chats()),
    }


def reset(*, confirm: bool = False) -> None:
    """Delete every chat, message, setting and parameter. Pass ``confirm=True``: this cannot be undone."""
    if confirm is not True:
        raise InvalidValueError("reset() deletes every chat, setting and parameter; call reset(confirm=True).")
    app = get_app()
    app.conversations.stop()
    app.models.unload()
    app.store.wipe()


chats = Chats()
models = Models()
settings = Settings()

__all__ = ["chat", "stop", "Chat", "chats", "models", "settings", "tool", "tools", "plugins", "app_state", "reset",
           "close_app", "export_chat"]
