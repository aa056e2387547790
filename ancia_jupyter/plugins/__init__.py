"""Plugins: tools from a registry document, installed per user without pip. This module is ``ancia.plugins``.

A wheel listed in the registry (``registry_document``) is downloaded, checked against its sha256,
unzipped into ``<data dir>/plugins/<id>/`` (``wheel_files``) and loaded through its
``ancia_jupyter.plugins`` entry points (``loading``), the same door the built-in tools use. The functions
here act on the kernel's app, which they look up when called: the app loads the installed plugins when
it starts, so it imports ``loading``, and importing this module stays cheap.
"""

from __future__ import annotations

import builtins
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import InvalidValueError, NotFoundError, PluginError
from . import registry_document, wheel_files
from .loading import load_plugin, unload

if TYPE_CHECKING:
    from ..app import App

__all__ = ["disable", "enable", "install", "list", "registry", "registry_location", "set_registry_url",
           "uninstall", "update"]


def _app() -> App:
    from ..app import get_app  # here, not at the top: the app is heavy and this module must stay light

    return get_app()


def _row(app: App, plugin_id: str) -> dict:
    for row in app.store.plugins():
        if row["id"] == plugin_id:
            return row
    raise NotFoundError(f"The plugin {plugin_id!r} is not installed; "
                        "`ancia.plugins.list()` shows those that are.")


def _info(app: App, plugin_id: str) -> dict:
    row = _row(app, plugin_id)
    tools = [t["name"] for t in app.tools.list() if t["source"] == f"plugin:{plugin_id}"]
    return {"id": row["id"], "version": row["version"], "enabled": bool(row["enabled"]),
            "error": row["error"],
            "path": row["path"], "sha256": row["sha256"], "tools": tools}


def _install(app: App, entry: dict) -> dict:
    data = registry_document.read(app.settings(), entry["wheel_url"], f"the wheel of {entry['id']}",
                                  wheel_files.MAX_WHEEL_BYTES)
    digest = wheel_files.check_digest(data, entry)
    root = app.data_dir / "plugins"
    staging = wheel_files.stage(data, root, entry["id"])
    final = root / entry["id"]
    unload(app.tools, entry["id"], final)
    wheel_files.swap_in(staging, final)
    # recorded off until it has loaded: a load that never returns (the process dies) must not leave a
    # plugin that every start loads again
    app.store.upsert_plugin(entry["id"], version=entry["version"], enabled=0, path=str(final), sha256=digest,
                            error="it did not finish loading")
    error = load_plugin(app.tools, app.store, entry["id"], final)
    if error:
        raise PluginError(f"{entry['id']} {entry['version']} was installed but failed to load, "
                          "so it is disabled: "
                          f"{error}. Fix the plugin, or `ancia.plugins.uninstall({entry['id']!r})`.")
    app.store.upsert_plugin(entry["id"], enabled=1, error=None)
    return _info(app, entry["id"])


def registry_location() -> str:
    """The registry in use: the setting ``plugin_registry_url``, ``ANCIA_PLUGIN_REGISTRY_URL``, or the
    default one shipped with the package."""
    return registry_document.location(_app().settings())


def list() -> builtins.list[dict]:
    """Installed plugins: version, enabled, the error if one failed to load, and their tools."""
    app = _app()
    return [_info(app, row["id"]) for row in app.store.plugins()]


def registry() -> builtins.list[dict]:
    """What the registry offers, with the installed version of each (``None`` if not installed)."""
    app = _app()
    installed = {row["id"]: row["version"] for row in app.store.plugins()}
    return [{**e, "installed": installed.get(e["id"])} for e in registry_document.entries(app.settings())]


def install(plugin_id: str) -> dict:
    """Download, verify (sha256) and load a plugin from the registry; its tools are then available."""
    app = _app()
    if any(row["id"] == plugin_id for row in app.store.plugins()):
        raise PluginError(f"{plugin_id!r} is already installed; `ancia.plugins.update({plugin_id!r})` "
                          "fetches the registry's version.")
    return _install(app, registry_document.entry(app.settings(), plugin_id))


def update(plugin_id: str | None = None) -> builtins.list[dict]:
    """Install the registry's version of one plugin (or of all) where it differs; returns what changed."""
    app = _app()
    rows = [_row(app, plugin_id)] if plugin_id else app.store.plugins()
    entries = {e["id"]: e for e in registry_document.entries(app.settings())}
    changed = []
    for row in rows:
        entry = entries.get(row["id"])
        if entry is None:
            if plugin_id:
                raise PluginError(f"{plugin_id!r} is no longer in the registry "
                                  f"{registry_document.location(app.settings())}.")
            continue
        if entry["version"] != row["version"] or entry["sha256"] != row["sha256"]:
            _install(app, entry)
            changed.append({"id": row["id"], "from": row["version"], "to": entry["version"]})
    return changed


def uninstall(plugin_id: str) -> None:
    """Remove a plugin: its tools, its files, its record; also when it is broken or its files are gone."""
    app = _app()
    row = _row(app, plugin_id)
    root = app.data_dir / "plugins"
    path = Path(row["path"] or root / plugin_id)
    unload(app.tools, plugin_id, path)
    wheel_files.remove(path, root)
    app.store.delete_plugin(plugin_id)


def enable(plugin_id: str) -> dict:
    """Turn a plugin back on and load its tools; a load failure raises ``PluginError`` and keeps it off."""
    app = _app()
    row = _row(app, plugin_id)
    path = Path(row["path"] or "")
    error = load_plugin(app.tools, app.store, plugin_id, path) if row["path"] and path.is_dir() else \
        f"its files are missing ({row['path']})"
    if error:
        app.store.upsert_plugin(plugin_id, enabled=0, error=error)
        raise PluginError(f"{plugin_id} failed to load, so it stays disabled: {error}. "
                          f"`ancia.plugins.uninstall({plugin_id!r})` removes it.")
    app.store.upsert_plugin(plugin_id, enabled=1, error=None)
    return _info(app, plugin_id)


def disable(plugin_id: str) -> dict:
    """Turn a plugin off: its tools go away until it is enabled again (its files stay)."""
    app = _app()
    row = _row(app, plugin_id)
    unload(app.tools, plugin_id, Path(row["path"]) if row["path"] else None)
    app.store.upsert_plugin(plugin_id, enabled=0)
    return _info(app, plugin_id)


def set_registry_url(url: str | None) -> str:
    """Use another registry (an http(s) URL or a file path); ``None`` goes back to the default."""
    if url is not None and (not isinstance(url, str) or not url.strip()):
        raise InvalidValueError("A registry is an http(s) URL or a file path (or None for the default).")
    app = _app()
    app.update_settings(plugin_registry_url=url.strip() if url else None)
    return registry_document.location(app.settings())


plugins = sys.modules[__name__]  # ``ancia.plugins`` is this module, however it was first imported
