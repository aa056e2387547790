"""An MCP server's tool as an ancia ``Tool`` (``mcp.<server>.<tool>``, its own JSON schema), and what the
server answers turned into the text the model reads.

The ``Tool`` only holds a function that asks the manager to make the call, so the registry checks, approves,
times and reports it like every other tool. The SDK is not imported here: results are read by their fields.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from ..errors import NotFoundError, ToolError
from ..runtimes.server_url import is_loopback_url
from ..tools.registry import ToolRegistry
from ..tools.tool import Tool, make_schema_tool

Caller = Callable[[str, str, dict[str, Any]], Any]  # (server, tool, arguments) -> the server's result


def tool_name(server: str, tool: str) -> str:
    return f"mcp.{server}.{tool}"


def source(server: str) -> str:
    return f"mcp:{server}"


def make_mcp_tool(server: str, info: dict[str, Any], call: Caller, *, trusted: bool, network: bool) -> Tool:
    """The ancia tool for one tool a server listed (``info``: name, description, input_schema); ``ToolError``
    when its name cannot be one (the registry's names are at most 64 characters)."""
    name = info.get("name")
    if not isinstance(name, str) or not name:
        raise ToolError(f"the MCP server {server!r} listed a tool without a name")

    def func(**arguments: Any) -> str:
        return result_text(call(server, name, arguments))

    func.__name__ = name
    description = info.get("description") or f"The tool {name} of the MCP server {server}."
    return make_schema_tool(tool_name(server, name), func, info.get("input_schema"), description=description,
                            network=network, confirm=not trusted, source=source(server))


def register_tools(registry: ToolRegistry, row: dict[str, Any], listed: list[dict[str, Any]],
                   call: Caller) -> list[str]:
    """Register a server's tools as it listed them, in place of those it had; returns the tools that could
    not be registered (a name too long, or taken by another tool), each with why."""
    server, made, skipped = row["name"], set(), []
    network = row["kind"] == "http" and not is_loopback_url(row["url"] or "")  # offline mode refuses these
    for info in listed:
        try:
            made.add(registry.add(make_mcp_tool(server, info, call, trusted=row["trusted"], network=network)).name)
        except ToolError as exc:
            skipped.append(f"{info.get('name')!r}: {exc}")
    for old in registry.names():
        try:
            if old not in made and registry.get(old).source == source(server):
                registry.unregister(old)
        except NotFoundError:  # unregistered meanwhile
            pass
    return skipped


def _block_text(block: Any) -> str:
    kind = getattr(block, "type", None)
    if kind == "text":
        return str(block.text)
    if kind in ("image", "audio"):
        size = len(getattr(block, "data", "") or "") * 3 // 4
        return f"[{kind} {getattr(block, 'mime_type', '')}, {size} bytes, not shown]"
    if kind == "resource_link":
        return f"[resource {block.uri}]"
    if kind == "resource":
        resource = block.resource
        text = getattr(resource, "text", None)
        return str(text) if isinstance(text, str) else f"[resource {resource.uri}, not shown]"
    return f"[{kind or type(block).__name__} content, not shown]"


def result_text(result: Any) -> str:
    """A ``CallToolResult`` as text: its content blocks (text as it is, others described), else its
    structured content as JSON. A result the server marks as an error raises ``ToolError`` with its text, as
    the server wrote it."""
    parts = [_block_text(b) for b in getattr(result, "content", None) or []]
    text = "\n".join(parts)
    structured = getattr(result, "structured_content", None)
    if not parts and structured is not None:
        text = json.dumps(structured, ensure_ascii=False, default=str)
    if getattr(result, "is_error", False):
        raise ToolError(text or "the tool failed (the server said no more)")
    return text
