"""The MCP servers a user added: how each starts, whether it is on and trusted, and the tools it last listed.

A mixin of `Store`, which provides the write transaction, the query helper and the change channel. What a
server is given from the kernel's environment is kept as references (``"$GITHUB_TOKEN"``), checked before
they get here by ``ancia_jupyter.mcp``; this table never holds a value read from the environment.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from sqlite_utils import Database

from ..changes import Changes, McpServersChanged

MCP_JSON_COLUMNS = ("command", "env", "headers", "tools")
MCP_FIELDS = ("kind", "command", "url", "env", "headers", "enabled", "trusted", "tools")


def _decode(row: dict) -> dict:
    for key in MCP_JSON_COLUMNS:
        if isinstance(row.get(key), str):
            row[key] = json.loads(row[key])
    row["enabled"], row["trusted"] = bool(row["enabled"]), bool(row["trusted"])
    return row


def _encode(fields: dict[str, Any]) -> dict[str, Any]:
    unknown = set(fields) - set(MCP_FIELDS)
    if unknown:  # a programming error, not a user's: the manager passes only these
        raise ValueError(f"Unknown MCP server field(s): {', '.join(sorted(unknown))}")
    return {k: json.dumps(v) if k in MCP_JSON_COLUMNS and v is not None else
            int(v) if k in ("enabled", "trusted") else v for k, v in fields.items()}


class McpServerTables:
    """Reads and writes of ``mcp_servers``; every write is one transaction and one notification."""

    db: Database

    if TYPE_CHECKING:  # provided by `Store`
        def _write(self) -> AbstractContextManager[sqlite3.Connection]: ...

        def _query(self, sql: str, params: Iterable[Any] = ()) -> list[dict]: ...

        changes: Changes

    def mcp_servers(self) -> list[dict]:
        """Every server, oldest first."""
        return [_decode(r) for r in self._query("SELECT * FROM mcp_servers ORDER BY added_at, name")]

    def mcp_server(self, name: str) -> dict | None:
        rows = self._query("SELECT * FROM mcp_servers WHERE name = ?", [name])
        return _decode(rows[0]) if rows else None

    def save_mcp_server(self, name: str, **fields: Any) -> None:
        """Add a server, or replace one of the same name (keeping when it was first added)."""
        now = time.time()
        with self._write():
            existing = self._query("SELECT added_at FROM mcp_servers WHERE name = ?", [name])
            row = {"name": name, "added_at": existing[0]["added_at"] if existing else now, "updated_at": now,
                   **_encode(fields)}
            self.db.table("mcp_servers").upsert(row, pk="name")
        self.changes.publish(McpServersChanged(name))

    def update_mcp_server(self, name: str, **fields: Any) -> None:
        """Change some fields of a server that exists (a missing one is left missing)."""
        if not fields:
            return
        encoded = _encode(fields)
        columns = ", ".join(f"{k} = ?" for k in encoded)
        with self._write() as conn:
            conn.execute(f"UPDATE mcp_servers SET {columns}, updated_at = ? WHERE name = ?",
                         [*encoded.values(), time.time(), name])
        self.changes.publish(McpServersChanged(name))

    def delete_mcp_server(self, name: str) -> None:
        with self._write() as conn:
            conn.execute("DELETE FROM mcp_servers WHERE name = ?", [name])
        self.changes.publish(McpServersChanged(name))
