"""ancia-jupyter: a private, local LLM assistant that lives inside the Jupyter kernel.

Importing the package is cheap: the store, the engine and MLX load on first use.
"""

from __future__ import annotations

from typing import Any

from .version import __version__

__all__ = [
    "__version__", "chat", "stop", "Chat", "chats", "models", "settings", "tools", "tool", "plugins", "mcp",
    "complete", "panel", "app_state", "reset", "Response", "events", "load_ipython_extension",
    "unload_ipython_extension",
]

_LAZY = {
    "chat": "api", "stop": "api", "Chat": "api", "chats": "api", "models": "api", "settings": "api",
    "app_state": "api", "reset": "api", "Response": "response", "events": None, "panel": "notebook.widget",
    "complete": "api_completion",
}

# ``ancia.tools``, ``ancia.plugins`` and ``ancia.mcp`` are the API objects, not the subpackages of the same names:
# those are imported first (their ``__init__`` is empty, so this is cheap), which binds their names here once
# and for all; the API objects then take the names. (Left to ``_LAZY``, a subpackage imported later would take
# its name back.)
from . import mcp as _mcp_package  # noqa: E402, F401
from . import plugins as _plugins_package  # noqa: E402, F401
from . import tools as _tools_package  # noqa: E402, F401
from .api_mcp import mcp  # noqa: E402
from .api_plugins import plugins  # noqa: E402
from .api_tools import tool, tools  # noqa: E402


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


def _eager_load_in_a_kernel() -> None:
    """``ANCIA_ENABLE_MODEL_EAGER_LOAD=1``: importing ancia in a kernel starts loading the selected model in
    the background, as ``%load_ext`` does. It only looks at modules already imported (a kernel has imported
    ipykernel and IPython before any cell runs), so a plain ``import ancia_jupyter`` costs nothing more and
    loads nothing; whatever goes wrong is said by the load, never raised into the import."""
    import sys

    ipython = sys.modules.get("IPython")
    if ipython is None or "ipykernel" not in sys.modules:
        return
    try:
        if getattr(ipython.get_ipython(), "kernel", None) is None:
            return
        from .config import env_flag

        if env_flag("ANCIA_ENABLE_MODEL_EAGER_LOAD"):
            from .notebook.extension import start_eager_load

            start_eager_load()
    except Exception as exc:  # never into the import
        print(f"ancia: could not start loading the selected model: {exc}", file=sys.stderr)


_eager_load_in_a_kernel()  # last: the load's thread imports the rest of the package
