"""Installing, updating, enabling and removing plugins: tools from a registry document, per user, no pip.

A wheel listed in the registry (``registry_document``) is downloaded, checked against its sha256, unzipped
into ``<data dir>/plugins/<id>/`` (``wheel_files``) and loaded through its ``ancia_jupyter.plugins`` entry
points (``loading``), the same door the built-in tools use. One ``PluginManager`` per app; ``ancia.plugins``
(``api_plugins.py``) asks it.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import InvalidValueError, NotFoundError, PluginError
from ..store.database import Store
from ..tools.registry import ToolRegistry
from . import registry_document, wheel_files
from .loading import load_plugin, unload


class PluginManager:
    def __init__(self, store: Store, tools: ToolRegistry, data_dir: Path, settings: Callable[[], dict],
                 update_settings: Callable[..., dict]) -> None:
        self.store = store
        self.tools = tools
        self.root = data_dir / "plugins"
        self.settings = settings
        self.update_settings = update_settings

    def _row(self, plugin_id: str) -> dict:
        for row in self.store.plugins():
            if row["id"] == plugin_id:
                return row
        raise NotFoundError(f"The plugin {plugin_id!r} is not installed; "
                            "`ancia.plugins.list()` shows those that are.")

    def info(self, plugin_id: str) -> dict:
        row = self._row(plugin_id)
        tools = [t["name"] for t in self.tools.list() if t["source"] == f"plugin:{plugin_id}"]
        return {"id": row["id"], "version": row["version"], "enabled": bool(row["enabled"]), "error": row["error"],
                "path": row["path"], "sha256": row["sha256"], "tools": tools}

    def _install(self, entry: dict) -> dict:
        data = registry_document.read(self.settings(), entry["wheel_url"], f"the wheel of {entry['id']}",
                                      wheel_files.MAX_WHEEL_BYTES)
        digest = wheel_files.check_digest(data, entry)
        staging = wheel_files.stage(data, self.root, entry["id"])
        final = self.root / entry["id"]
        unload(self.tools, entry["id"], final)
        wheel_files.swap_in(staging, final)
        # recorded off until it has loaded: a load that never returns (the process dies) must not leave a
        # plugin that every start loads again
        self.store.upsert_plugin(entry["id"], version=entry["version"], enabled=0, path=str(final), sha256=digest,
                                 error="it did not finish loading")
        error = load_plugin(self.tools, self.store, entry["id"], final)
        if error:
            raise PluginError(f"{entry['id']} {entry['version']} was installed but failed to load, so it is "
                              f"disabled: {error}. Fix the plugin, or `ancia.plugins.uninstall({entry['id']!r})`.")
        self.store.upsert_plugin(entry["id"], enabled=1, error=None)
        return self.info(entry["id"])

    def registry_location(self) -> str:
        return registry_document.location(self.settings())

    def list(self) -> builtins.list[dict]:
        return [self.info(row["id"]) for row in self.store.plugins()]

    def registry(self) -> builtins.list[dict]:
        installed = {row["id"]: row["version"] for row in self.store.plugins()}
        return [{**e, "installed": installed.get(e["id"])} for e in registry_document.entries(self.settings())]

    def install(self, plugin_id: str) -> dict:
        if any(row["id"] == plugin_id for row in self.store.plugins()):
            raise PluginError(f"{plugin_id!r} is already installed; `ancia.plugins.update({plugin_id!r})` "
                              "fetches the registry's version.")
        return self._install(registry_document.entry(self.settings(), plugin_id))

    def update(self, plugin_id: str | None = None) -> builtins.list[dict]:
        rows = [self._row(plugin_id)] if plugin_id else self.store.plugins()
        entries = {e["id"]: e for e in registry_document.entries(self.settings())}
        changed = []
        for row in rows:
            entry = entries.get(row["id"])
            if entry is None:
                if plugin_id:
                    raise PluginError(f"{plugin_id!r} is no longer in the registry "
                                      f"{registry_document.location(self.settings())}.")
                continue
            if entry["version"] != row["version"] or entry["sha256"] != row["sha256"]:
                self._install(entry)
                changed.append({"id": row["id"], "from": row["version"], "to": entry["version"]})
        return changed

    def uninstall(self, plugin_id: str) -> None:
        row = self._row(plugin_id)
        path = Path(row["path"] or self.root / plugin_id)
        unload(self.tools, plugin_id, path)
        wheel_files.remove(path, self.root)
        self.store.delete_plugin(plugin_id)

    def enable(self, plugin_id: str) -> dict:
        row = self._row(plugin_id)
        path = Path(row["path"] or "")
        error = load_plugin(self.tools, self.store, plugin_id, path) if row["path"] and path.is_dir() else \
            f"its files are missing ({row['path']})"
        if error:
            self.store.upsert_plugin(plugin_id, enabled=0, error=error)
            raise PluginError(f"{plugin_id} failed to load, so it stays disabled: {error}. "
                              f"`ancia.plugins.uninstall({plugin_id!r})` removes it.")
        self.store.upsert_plugin(plugin_id, enabled=1, error=None)
        return self.info(plugin_id)

    def disable(self, plugin_id: str) -> dict:
        row = self._row(plugin_id)
        unload(self.tools, plugin_id, Path(row["path"]) if row["path"] else None)
        self.store.upsert_plugin(plugin_id, enabled=0)
        return self.info(plugin_id)

    def set_registry_url(self, url: Any) -> str:
        if url is not None and (not isinstance(url, str) or not url.strip()):
            raise InvalidValueError("A registry is an http(s) URL or a file path (or None for the default).")
        self.update_settings(plugin_registry_url=url.strip() if url else None)
        return registry_document.location(self.settings())
