"""``ancia.mcp``: tools from MCP servers, added per user and started on first use.

Thin: each call finds the kernel's app and asks its MCP manager (``mcp/manager.py``). Importing this module
imports neither the app nor the MCP SDK.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .mcp.manager import McpServers


def _servers() -> McpServers:
    from .app import get_app  # here, not at the top: the app is heavy and importing ancia stays light

    return get_app().mcp


class Mcp:
    """``ancia.mcp``: the MCP servers whose tools the model may call, as ``mcp.<server>.<tool>``."""

    def add(self, name: str, command: Sequence[str] | str | None = None, *, url: str | None = None,
            env: Mapping[str, str] | None = None, headers: Mapping[str, str] | None = None) -> dict:
        """Add a server the kernel starts (``command=[...]``, over stdio) or one at a streamable-HTTP ``url``.

        Secrets are references to the kernel's environment, read when the server starts and never stored:
        ``env={"GITHUB_TOKEN": "$GITHUB_TOKEN"}``, ``headers={"Authorization": "Bearer $API_TOKEN"}``;
        ``$NAME`` in the command is replaced too. A server starts on first use; its tools ask for approval
        until you ``trust`` it. Adding the same name again replaces it (the same definition changes nothing).
        """
        return _servers().add(name, command, url=url, env=env, headers=headers)

    def list(self, refresh: bool = False) -> builtins.list[dict]:
        """Every server: kind, command or url, enabled, trusted, state (not started, starting, running,
        failed, blocked) with the error, and its tools. ``refresh=True`` starts the enabled servers that
        are not running (failed ones again) and lists the tools of those that are."""
        return _servers().list(refresh)

    def remove(self, name: str) -> None:
        """Stop a server and forget it, with its tools."""
        _servers().remove(name)

    def enable(self, name: str) -> dict:
        """Turn a server back on: its tools return, and it starts on first use (a failed one starts again)."""
        return _servers().set_enabled(name, True)

    def disable(self, name: str) -> dict:
        """Turn a server off: it stops and its tools go away until it is enabled (remembered)."""
        return _servers().set_enabled(name, False)

    def trust(self, name: str) -> dict:
        """Let the server's tools run without asking for approval each time (remembered)."""
        return _servers().set_trusted(name, True)

    def untrust(self, name: str) -> dict:
        """Ask for approval before each call of the server's tools again (the default)."""
        return _servers().set_trusted(name, False)


mcp = Mcp()

__all__ = ["Mcp", "mcp"]
