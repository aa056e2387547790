"""The app's MCP servers (``ancia.mcp``): what the user added, kept in the store, and their tools in the tool
registry; what runs in this kernel is ``running.Running``'s.

Servers start on first use: when an answer needs the tool list (``StartingCatalog``, the registry as the
engine sees it), when one of their tools is called, or on ``list(refresh=True)``. The tools a server lists
are remembered in the store and registered again from there when the app starts, so they show (and can be
called, which starts the server) before it runs. Everything stops with the app, or at exit.
"""

from __future__ import annotations

import atexit
import builtins
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import NotFoundError
from ..store.database import Store
from ..tools.registry import ToolRegistry
from . import specs
from .running import Running
from .tools import source, tool_name


class McpServers:
    """Add, list, remove, enable, disable, trust: each change stored at once and applied to what runs."""

    def __init__(self, store: Store, tools: ToolRegistry, settings: Callable[[], dict], log_dir: Path) -> None:
        self.store = store
        self.tools = tools
        self.running = Running(store, tools, settings, log_dir)
        for row in self.store.mcp_servers():
            if row["enabled"]:
                self.running.register(row, row["tools"])
        _OPEN.add(self)

    def add(self, name: str, command: Any = None, *, url: Any = None, env: Any = None, headers: Any = None) -> dict:
        """Add a server (started on first use); the same definition again changes nothing, another one
        replaces it (stopped, and no longer trusted)."""
        name = specs.check_name(name)
        fields = specs.server_fields(command, url, env, headers)
        existing = self.store.mcp_server(name)
        if existing is not None and all(existing[k] == v for k, v in fields.items()):
            return self.info(name)
        self.running.stop(name)
        self.tools.remove_source(source(name))
        self.store.save_mcp_server(name, **fields, enabled=True, trusted=False, tools=[])
        return self.info(name)

    def remove(self, name: str) -> None:
        self._row(name)
        self.running.stop(name)
        self.tools.remove_source(source(name))
        self.store.delete_mcp_server(name)

    def set_enabled(self, name: str, enabled: bool) -> dict:
        """Off: stopped, its tools gone. On: its tools back, started on first use (a failed one again)."""
        row = self._row(name)
        self.running.stop(name)
        self.store.update_mcp_server(name, enabled=enabled)
        if enabled:
            self.running.register({**row, "enabled": True}, row["tools"])
        else:
            self.tools.remove_source(source(name))
        return self.info(name)

    def set_trusted(self, name: str, trusted: bool) -> dict:
        """Trusted: its tools run without asking for approval; otherwise each call is approved."""
        row = self._row(name)
        self.store.update_mcp_server(name, trusted=trusted)
        if row["enabled"]:
            self.running.register({**row, "trusted": trusted}, row["tools"])
        return self.info(name)

    def list(self, refresh: bool = False) -> builtins.list[dict]:
        """Every server with its state and tools; ``refresh`` starts the enabled ones that are not running
        (failed ones again) and lists the tools of those that are."""
        if refresh:
            self.running.refresh()
        return [self._info(row) for row in self.store.mcp_servers()]

    def info(self, name: str) -> dict:
        return self._info(self._row(name))

    def tool_catalog(self) -> StartingCatalog:
        return StartingCatalog(self.tools, self.running)

    def close(self) -> None:
        self.running.close()
        _OPEN.discard(self)

    def _row(self, name: str) -> dict:
        row = self.store.mcp_server(name) if isinstance(name, str) else None
        if row is None:
            known = ", ".join(r["name"] for r in self.store.mcp_servers()) or "none"
            raise NotFoundError(f"No MCP server named {name!r}. Servers: {known} (`ancia.mcp.add(...)` adds one).")
        return row

    def _info(self, row: dict) -> dict:
        live = self.running.state(row["name"])
        running = live.state == "running" and live.session is not None
        return {"name": row["name"], "kind": row["kind"], "command": row["command"], "url": row["url"],
                "env": row["env"], "headers": row["headers"], "enabled": row["enabled"], "trusted": row["trusted"],
                "state": live.state, "error": live.error,
                "tools": [tool_name(row["name"], t["name"]) for t in row["tools"]], "skipped": live.skipped,
                "pid": live.session.pid if running and live.session is not None else None,
                "start_s": round(live.start_s, 3) if live.start_s is not None else None}


class StartingCatalog:
    """The tool registry as the engine sees it: when an answer needs the tool list (every enabled tool, or
    named MCP tools), the MCP servers not started yet start first, so the model is shown their tools."""

    def __init__(self, registry: ToolRegistry, running: Running) -> None:
        self.registry = registry
        self.running = running

    def schemas(self, names: builtins.list[str] | None, chat_id: int | None = None) -> builtins.list[dict]:
        if names is None or any(isinstance(n, str) and n.startswith("mcp.") for n in names):
            self.running.start_pending()
        return self.registry.schemas(names, chat_id=chat_id)

    def resolve(self, name: str) -> str:
        return self.registry.resolve(name)

    def call(self, name: str, arguments: Any, *, chat_id: int | None = None,
             approve: Callable[[Any], bool] | None = None, event: Any = None) -> tuple[str | None, str | None]:
        return self.registry.call(name, arguments, chat_id=chat_id, approve=approve, event=event)


_OPEN: weakref.WeakSet[McpServers] = weakref.WeakSet()


@atexit.register
def _close_all() -> None:
    """No stdio server outlives the kernel, even when the app was never closed."""
    for servers in builtins.list(_OPEN):
        try:
            servers.close()
        except Exception:  # the interpreter is going: stop the others anyway
            pass
