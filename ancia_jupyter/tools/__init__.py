"""Tools the model can call: ``@ancia.tool`` on a plain function, and ``ancia.tools`` to manage them.

The schema comes from the signature, the type hints and the docstring, so a notebook function becomes
a tool with one line. Tools decorated before the assistant starts are kept and picked up when it does.
This module is ``ancia.tools`` itself, the public face of the tools: it finds the app (and the user's
tools it keeps) only when called, because the app imports the store and the engine, and importing this
module stays cheap; nothing heavy (httpx, ddgs, readability) is imported here.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..errors import ToolError
from .calling import ToolContext, current
from .registry import ToolRegistry
from .tool import Tool, make_tool

if TYPE_CHECKING:
    from .user_tools import UserTools

__all__ = [
    "Tool",
    "ToolContext",
    "ToolRegistry",
    "call",
    "current",
    "disable",
    "enable",
    "list",
    "register",
    "schema",
    "tool",
    "tools",
    "unregister",
]


def _registry() -> ToolRegistry:
    from ..app import get_app  # here, not at the top: the app is heavy and this module must stay light

    return get_app().tools


def _user_tools() -> UserTools:
    from ..app import user_tools  # the user's tools for the data dir in use, whether or not an app runs

    return user_tools()


def tool(func: Callable | None = None, *, name: str | None = None, description: str | None = None,
         network: bool = False, confirm: bool = False) -> Any:
    """Make a function a tool the model may call; use bare (``@ancia.tool``) or with options.

    ``name`` may be dotted (``text.word_count``); ``network=True`` tools are refused in offline mode;
    ``confirm=True`` tools run only after the user approves each call. The function stays callable.
    """

    def decorate(f: Callable) -> Callable:
        f.__ancia_tool__ = {"name": name, "description": description,  # type: ignore[attr-defined]
                            "network": network, "confirm": confirm}
        made = make_tool(f, source="user")  # checks the name and the schema now, not at chat time
        kept = _user_tools()
        if not kept.plugin_loading():  # a plugin's tools are registered by its loader, not as user tools
            kept.add(made)
        return f

    return decorate(func) if func is not None else decorate


def list(chat: int | None = None) -> Any:
    """Every tool: name, description, where it comes from, whether it is enabled and available."""
    return _registry().list(chat)


def enable(name: str) -> None:
    """Turn a tool on (remembered across sessions)."""
    registry = _registry()
    registry.app.store.set_tool_enabled(registry.get(name).name, True)


def disable(name: str) -> None:
    """Turn a tool off: the model no longer sees it and calls to it are refused (remembered)."""
    registry = _registry()
    registry.app.store.set_tool_enabled(registry.get(name).name, False)


def schema(name: str) -> dict:
    """The JSON schema the model sees for one tool (its function name may be a safe alias)."""
    return _registry().schema(name)


def call(name: str, arguments: dict | None = None, /, *, chat: int | None = None,
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


def register(func: Callable, *, name: str | None = None, description: str | None = None,
             network: bool = False, confirm: bool = False) -> Tool:
    """Add a function as a tool without decorating it (same options as ``@ancia.tool``)."""
    return _user_tools().add(make_tool(func, name=name, description=description, network=network,
                                       confirm=confirm, source="user"))


def unregister(name: str) -> None:
    """Remove one of your tools. Built-in and plugin tools are disabled or uninstalled instead."""
    if _user_tools().remove(name):
        return
    registry = _registry()
    found = registry.get(name)  # NotFoundError names the tools there are
    also = " or ancia.plugins.uninstall(...)" if found.source.startswith("plugin:") else ""
    raise ToolError(f"{found.name!r} is {found.origin} tool, not one of yours: "
                    f"use ancia.tools.disable({found.name!r}){also}.")


tools = sys.modules[__name__]  # ``ancia.tools`` is this module, however it was first imported
