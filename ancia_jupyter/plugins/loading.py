"""Getting a plugin's code in and out of the interpreter: ``sys.path``, its entry points, ``sys.modules``.

A plugin is loaded through its ``ancia_jupyter.plugins`` entry points into the tool registry it is given,
through the same ``register`` door the built-ins use. Whatever its code raises while loading is recorded
and the plugin turned off, never raised: every start loads the enabled plugins, so one that let an
exception through would stop the assistant from starting, and with it the ``uninstall`` that fixes it.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.metadata
import os
import sys
import types
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import PluginError

if TYPE_CHECKING:
    from ..tools.registry import ToolRegistry

ENTRY_POINT_GROUP = "ancia_jupyter.plugins"


def forget_modules(path: Path) -> None:
    """Drop the plugin's dir from sys.path and its modules from sys.modules, so a new version reloads."""
    root = str(path)
    while root in sys.path:
        sys.path.remove(root)
    sys.path_importer_cache.pop(root, None)
    prefix = os.path.abspath(root) + os.sep
    for name, module in list(sys.modules.items()):
        paths = getattr(module, "__path__", None) or []
        location = getattr(module, "__file__", None) or next(iter(paths), None)
        if isinstance(location, str) and os.path.abspath(location).startswith(prefix):
            del sys.modules[name]
    importlib.invalidate_caches()


def unload(registry: ToolRegistry, plugin_id: str, path: Path | None) -> None:
    """Take a plugin's tools out of ``registry`` and its modules (from ``path``) out of the interpreter."""
    registry.remove_source(f"plugin:{plugin_id}")
    if path is not None:
        forget_modules(path)


def _register_entry_points(registry: ToolRegistry, path: Path) -> None:
    found = 0
    for dist in importlib.metadata.distributions(path=[str(path)]):
        for point in dist.entry_points.select(group=ENTRY_POINT_GROUP):
            found += 1
            target = point.load()
            if isinstance(target, types.ModuleType):
                listed = getattr(target, "TOOLS", None) or [
                    v for v in vars(target).values() if callable(v) and hasattr(v, "__ancia_tool__")]
                for func in listed:
                    registry.register(func)
            elif callable(target):
                target(registry)
            else:
                raise PluginError(f"entry point {point.name!r} is neither register(registry) nor a module")
    if not found:
        raise PluginError(f"the wheel declares no {ENTRY_POINT_GROUP!r} entry point")


def load_plugin(registry: ToolRegistry, store: Any, plugin_id: str, path: Path) -> str | None:
    """Load one plugin's tools into ``registry``; on failure record the error in ``store``, disable the
    plugin, and return the error.

    Anything the plugin's code raises counts, ``SystemExit`` and ``KeyboardInterrupt`` included.
    """
    if str(path) not in sys.path:
        sys.path.append(str(path))  # appended: a plugin can never shadow an installed module
    importlib.invalidate_caches()
    try:
        with registry.loading(f"plugin:{plugin_id}"):  # its ``@ancia.tool``s are its own, not the user's
            _register_entry_points(registry, path)
    except BaseException as exc:  # the plugin's failure, whatever it raised: recorded, not re-raised
        from ..tools.calling import error_text  # the tools package only when needed: ancia.plugins stays light

        forget_modules(path)
        error = error_text(exc)
        store.upsert_plugin(plugin_id, enabled=0, error=error)
        return error
    return None


def load_installed(registry: ToolRegistry, store: Any) -> None:
    """Load every enabled installed plugin (the app starting). It never raises: a broken plugin store
    must not take the assistant down, and ``ancia.plugins.list()`` shows what went wrong."""
    with contextlib.suppress(Exception):
        for row in store.plugins():
            if row["enabled"]:
                path = Path(row["path"] or "")
                if not path.is_dir():
                    store.upsert_plugin(row["id"], enabled=0, error=f"its files are missing ({path})")
                    continue
                load_plugin(registry, store, row["id"], path)
