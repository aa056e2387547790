"""A tool: a plain callable the model may ask for, with the schema it is shown and where it came from.

Built-ins, plugins and the user's own functions all become a ``Tool`` through ``make_tool``.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..errors import ToolError
from .schema import Parameters, parameters, parse_docstring

MAX_OUTPUT_CHARS = 16_000  # a result longer than this is cut, with a note, to keep the context window usable
NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]{0,63}$")
@dataclass(eq=False)
class Tool:
    """A callable the model may ask for, with the schema it is shown."""

    name: str
    func: Callable[..., Any]
    description: str
    params: Parameters
    network: bool = False  # reaches the network: refused in offline mode
    confirm: bool = False  # asks the user (``approve``) before each call
    source: str = "user"  # "builtin", "user" or "plugin:<id>"
    requires: str | None = None  # a setting or chat option that must be on (kernel variables)
    max_output: int = MAX_OUTPUT_CHARS

    @property
    def origin(self) -> str:
        """The source in words, for messages."""
        if self.source.startswith("plugin:"):
            return f"the plugin {self.source[7:]!r}'s"
        return "a built-in" if self.source == "builtin" else "your own"

    def info(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "source": self.source,
                "network": self.network, "confirm": self.confirm, "requires": self.requires}


def make_tool(func: Any, *, name: str | None = None, description: str | None = None,
              network: bool | None = None, confirm: bool | None = None, source: str = "user",
              requires: str | None = None) -> Tool:
    """A ``Tool`` from a plain function; options not given come from its ``@tool`` decoration."""
    if isinstance(func, Tool):
        return dataclasses.replace(func, source=source)
    if not callable(func):
        raise ToolError(f"A tool must be a function, not {type(func).__name__}.")
    marked = getattr(func, "__ancia_tool__", {})
    name = name or marked.get("name") or getattr(func, "__name__", None)
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise ToolError(f"Tool name {name!r} is not allowed: use letters, digits, '_', '-' and '.', "
                        "start with a letter, at most 64 characters.")
    summary, docs = parse_docstring(getattr(func, "__doc__", None))
    return Tool(name=name, func=func, description=description or marked.get("description") or summary or name,
                params=parameters(func, docs),
                network=bool(network if network is not None else marked.get("network", False)),
                confirm=bool(confirm if confirm is not None else marked.get("confirm", False)),
                source=source, requires=requires)


