"""``ancia.tool`` and ``ancia.tools``: your own tools, and every tool's state.

Thin: each call finds the kernel's app and asks its tool registry. ``@ancia.tool`` works before any app
runs: the user's tools are kept per data dir (``tools/user_tools.py``) and join each app's registry.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .errors import ToolError

if TYPE_CHECKING:  # the tools package is imported when a tool is made or called: ``import ancia`` stays light
    from .tools.calling import ToolContext
    from .tools.registry import ToolRegistry
    from .tools.tool import Tool
    from .tools.user_tools import UserTools


def _registry() -> ToolRegistry:
    from .app import get_app  # here, not at the top: the app is heavy and ``@ancia.tool`` must stay light

    return get_app().tools


def _user_tools() -> UserTools:
    from .app import user_tools  # the user's tools for the data dir in use, whether or not an app runs

    return user_tools()


def tool(func: Callable | None = None, *, name: str | None = None, description: str | None = None,
         network: bool = False, confirm: bool = False) -> Any:
    """Make a function a tool the model may call; use bare (``@ancia.tool``) or with options.

    ``name`` may be dotted (``text.word_count``); ``network=True`` tools are refused in offline mode;
    ``confirm=True`` tools run only after the user approves each call. The function stays callable.
    """

    from .tools.tool import make_tool

    def decorate(f: Callable) -> Callable:
        f.__ancia_tool__ = {"name": name, "description": description,  # type: ignore[attr-defined]
                            "network": network, "confirm": confirm}
        made = make_tool(f, source="user")  # checks the name and the schema now, not at chat time
        kept = _user_tools()
        if not kept.plugin_loading():  # a plugin's tools are registered by its loader, not as user tools
            kept.add(made)
        return f

    return decorate(func) if func is not None else decorate


class Tools:
    """``ancia.tools``: every tool (built-in, plugin, yours), on or off, called by hand."""

    tool = staticmethod(tool)

    @staticmethod
    def current() -> ToolContext:
        """Inside a tool: the call's context (its chat, the store, the settings, its deadline)."""
        from .tools.calling import current

        return current()

    def list(self, chat: int | None = None) -> builtins.list[dict]:
        """Every tool: name, description, where it comes from, whether it is enabled and available."""
        return _registry().list(chat)

    def enable(self, name: str) -> None:
        """Turn a tool on (remembered across sessions)."""
        _registry().set_enabled(name, True)

    def disable(self, name: str) -> None:
        """Turn a tool off: the model no longer sees it and calls to it are refused (remembered)."""
        _registry().set_enabled(name, False)

    def trust(self, name: str) -> None:
        """Let a network tool run without asking before each call (remembered). Until then, every call of a
        tool that reaches the network waits for your yes: the panel's approval card, or ``approve=``."""
        _registry().set_trusted(name, True)

    def untrust(self, name: str) -> None:
        """Make a network tool ask before each call again."""
        _registry().set_trusted(name, False)

    def schema(self, name: str) -> dict:
        """The JSON schema the model sees for one tool (its function name may be a safe alias)."""
        return _registry().schema(name)

    def call(self, name: str, arguments: dict | None = None, /, *, chat: int | None = None,
             approve: Callable[[Any], bool] | None = None, **kwargs: Any) -> str:
        """Run a tool by hand exactly as the engine would (same checks, same text result).

        Arguments come as a dict or as keywords (use the dict for arguments named ``chat`` or ``approve``).
        ``chat`` is the chat the call is for (``chat.set_mood`` needs one). An error the model would have
        seen raises ``ToolError`` with the same text.
        """
        output, error = _registry().call(name, {**(arguments or {}), **kwargs}, chat_id=chat, approve=approve)
        if error is not None:
            raise ToolError(f"{name}: {error}")
        return output or ""

    def register(self, func: Callable, *, name: str | None = None, description: str | None = None,
                 network: bool = False, confirm: bool = False) -> Tool:
        """Add a function as a tool without decorating it (same options as ``@ancia.tool``)."""
        from .tools.tool import make_tool

        return _user_tools().add(make_tool(func, name=name, description=description, network=network,
                                          confirm=confirm, source="user"))

    def unregister(self, name: str) -> None:
        """Remove one of your tools. Built-in and plugin tools are disabled or uninstalled instead."""
        if _user_tools().remove(name):
            return
        found = _registry().get(name)  # NotFoundError names the tools there are
        also = " or ancia.plugins.uninstall(...)" if found.source.startswith("plugin:") else ""
        raise ToolError(f"{found.name!r} is {found.origin} tool, not one of yours: "
                        f"use ancia.tools.disable({found.name!r}){also}.")


tools = Tools()

__all__ = ["Tools", "tool", "tools"]
