"""The small tables beside the chats: settings, model parameters, tool state, local models, plugins.

A mixin of `Store`, which provides the write transaction, the query helper and the change channel.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from sqlite_utils import Database

from ..changes import Changes, ModelsChanged, ParamsChanged, PluginsChanged, SettingsChanged, ToolsChanged


class StateTables:
    """Reads and writes of the key/value tables; every write is one transaction and one notification."""

    db: Database

    if TYPE_CHECKING:  # provided by `Store`
        def _write(self) -> AbstractContextManager[sqlite3.Connection]: ...

        def _query(self, sql: str, params: Iterable[Any] = ()) -> list[dict]: ...

        changes: Changes

    # -- key/value tables: settings, model params, tool state ------------------------------------

    def get_settings(self) -> dict:
        return {r["key"]: json.loads(r["value"]) for r in self._query("SELECT key, value FROM settings")}

    def set_settings(self, values: dict) -> None:
        with self._write():
            for key, value in values.items():
                if value is None:
                    self.db.execute("DELETE FROM settings WHERE key = ?", [key])
                else:
                    self.db.table("settings").upsert({"key": key, "value": json.dumps(value)}, pk="key")
        self.changes.publish(SettingsChanged(tuple(sorted(values))))

    def get_params(self, model_id: str) -> dict:
        rows = self._query("SELECT params FROM model_params WHERE model_id = ?", [model_id])
        return rows[0]["params"] if rows else {}

    def set_params(self, model_id: str, params: dict) -> None:
        with self._write():
            if params:
                self.db.table("model_params").upsert({"model_id": model_id, "params": json.dumps(params)},
                                                     pk="model_id")
            else:
                self.db.execute("DELETE FROM model_params WHERE model_id = ?", [model_id])
        self.changes.publish(ParamsChanged(model_id))

    def tool_states(self) -> dict[str, bool]:
        return {r["name"]: bool(r["enabled"]) for r in self._query("SELECT * FROM tool_state")}

    def set_tool_enabled(self, name: str, enabled: bool) -> None:
        with self._write():
            self.db.table("tool_state").upsert({"name": name, "enabled": int(enabled)}, pk="name")
        self.changes.publish(ToolsChanged(name))

    # -- each notebook's current chat ------------------------------------------------------------

    def notebook_chat(self, notebook: str) -> int | None:
        rows = self._query("SELECT chat_id FROM notebook_chats WHERE notebook = ?", [notebook])
        return rows[0]["chat_id"] if rows else None

    def set_notebook_chat(self, notebook: str, chat_id: int | None) -> None:
        with self._write() as conn:
            if chat_id is None:
                conn.execute("DELETE FROM notebook_chats WHERE notebook = ?", [notebook])
            else:
                conn.execute("INSERT INTO notebook_chats (notebook, chat_id, updated_at) VALUES (?, ?, ?) "
                             "ON CONFLICT(notebook) DO UPDATE SET chat_id = excluded.chat_id, "
                             "updated_at = excluded.updated_at", [notebook, chat_id, time.time()])

    # -- local models and plugins -----------------------------------------------------------------

    def local_models(self) -> list[dict]:
        return self._query("SELECT * FROM local_models ORDER BY added_at")

    def add_local_model(self, model_id: str, path: str, format: str, title: str | None = None,
                        vision: bool = False, remote_model: str | None = None,
                        api_key_env: str | None = None) -> None:
        with self._write():
            self.db.table("local_models").insert({"id": model_id, "path": path, "format": format,
                                                  "title": title, "vision": int(vision), "added_at": time.time(),
                                                  "remote_model": remote_model, "api_key_env": api_key_env},
                                                 replace=True)
        self.changes.publish(ModelsChanged(model_id))

    def remove_local_model(self, model_id: str) -> None:
        with self._write():
            self.db.execute("DELETE FROM local_models WHERE id = ?", [model_id])
        self.changes.publish(ModelsChanged(model_id))

    def plugins(self) -> list[dict]:
        return self._query("SELECT * FROM plugins ORDER BY id")

    def upsert_plugin(self, plugin_id: str, **fields: Any) -> None:
        now = time.time()
        with self._write():
            existing = self._query("SELECT installed_at FROM plugins WHERE id = ?", [plugin_id])
            row = {"id": plugin_id, "installed_at": existing[0]["installed_at"] if existing else now,
                   "updated_at": now, **fields}
            self.db.table("plugins").upsert(row, pk="id")
        self.changes.publish(PluginsChanged(plugin_id))

    def delete_plugin(self, plugin_id: str) -> None:
        with self._write():
            self.db.execute("DELETE FROM plugins WHERE id = ?", [plugin_id])
        self.changes.publish(PluginsChanged(plugin_id))
