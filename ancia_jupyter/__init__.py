"""ancia-jupyter: a private, local LLM assistant that lives inside the Jupyter kernel.

Importing the package is cheap: the store, the engine and MLX load on first use.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = [
    "__version__", "chat", "stop", "Chat", "chats", "models", "settings", "tools", "tool", "plugins",
    "panel", "app_state", "reset", "Response", "events", "load_ipython_extension", "unload_ipython_extension",
]

_LAZY = {
    "chat": "api", "stop": "api", "Chat": "api", "chats": "api", "models": "api", "settings": "api",
    "app_state": "api", "reset": "api", "Response": "response", "events": None,
    "tools": "tools", "tool": "tools", "plugins": "plugins", "panel": "notebook.widget",
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'ancia_jupyter' has no attribute {name!r}")
    from importlib import import_module

    module = _LAZY[name]
    if module is None:
        return import_module(f".{name}", __name__)
    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    return [{"src": "labextension", "dest": "ancia-jupyter"}]


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext ancia_jupyter``: the magics, the sidebar's comm target, and an eager model load if asked."""
    from .notebook.extension import load

    load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    from .notebook.extension import unload

    unload(ipython)
