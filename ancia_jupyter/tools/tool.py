"""A tool: a plain callable the model may ask for, with the schema it is shown and where it came from.

Built-ins, plugins and the user's own functions all become a ``Tool`` through ``make_tool``, which reads the
schema from the function's signature. A tool whose schema is given instead (an MCP server's tool: its
``inputSchema``) is made by ``make_schema_tool``; the same argument checks then run on its top-level
properties.
"""

from __future__ import annotations

import copy
import dataclasses
import re
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

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
    source: str = "user"  # "builtin", "user", "plugin:<id>" or "mcp:<server>"
    requires: str | None = None  # a setting or chat option that must be on (kernel variables)
    max_output: int = MAX_OUTPUT_CHARS

    @property
    def origin(self) -> str:
        """The source in words, for messages."""
        if self.source.startswith("plugin:"):
            return f"the plugin {self.source[7:]!r}'s"
        if self.source.startswith("mcp:"):
            return f"the MCP server {self.source[4:]!r}'s"
        return "a built-in" if self.source == "builtin" else "your own"

    def info(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "source": self.source,
                "network": self.network, "confirm": self.confirm, "requires": self.requires}


def check_name(name: object) -> str:
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise ToolError(f"Tool name {name!r} is not allowed: use letters, digits, '_', '-' and '.', "
                        "start with a letter, at most 64 characters.")
    return name


def make_tool(func: Any, *, name: str | None = None, description: str | None = None,
              network: bool | None = None, confirm: bool | None = None, source: str = "user",
              requires: str | None = None) -> Tool:
    """A ``Tool`` from a plain function; options not given come from its ``@tool`` decoration."""
    if isinstance(func, Tool):
        return dataclasses.replace(func, source=source)
    if not callable(func):
        raise ToolError(f"A tool must be a function, not {type(func).__name__}.")
    marked = getattr(func, "__ancia_tool__", {})
    name = check_name(name or marked.get("name") or getattr(func, "__name__", None))
    summary, docs = parse_docstring(getattr(func, "__doc__", None))
    return Tool(name=name, func=func, description=description or marked.get("description") or summary or name,
                params=parameters(func, docs),
                network=bool(network if network is not None else marked.get("network", False)),
                confirm=bool(confirm if confirm is not None else marked.get("confirm", False)),
                source=source, requires=requires)


# JSON schema types and the annotations ``check_arguments`` checks them with.
_JSON_TO_PYTHON: dict[str, Any] = {"string": str, "integer": int, "number": float, "boolean": bool,
                                   "array": list, "object": dict, "null": type(None)}


def _annotation(schema: Any) -> Any:
    """What one top-level property is checked against: its ``type`` (or types), or its ``enum`` of plain
    values; anything else (``anyOf``, ``$ref``, no type) is passed through unchecked, for the server to judge."""
    if not isinstance(schema, dict):
        return Any
    enum = schema.get("enum")
    if isinstance(enum, list) and enum and all(type(v) in (str, int, float, bool) for v in enum):
        return Literal.__getitem__(tuple(enum))
    kinds = schema.get("type")
    kinds = [kinds] if isinstance(kinds, str) else kinds
    if not isinstance(kinds, list) or not kinds or not all(k in _JSON_TO_PYTHON for k in kinds):
        return Any
    types = tuple(_JSON_TO_PYTHON[k] for k in kinds)
    return types[0] if len(types) == 1 else typing.Union.__getitem__(types)


def schema_parameters(input_schema: Any) -> Parameters:
    """``Parameters`` for a given JSON object schema: the model is shown the schema as it is; a call must
    have the required properties, each top-level property of the type it declares; properties not
    declared pass through unless ``additionalProperties`` is false."""
    schema = copy.deepcopy(input_schema) if isinstance(input_schema, dict) else {}
    schema["type"] = "object"
    properties = schema.get("properties")
    if not isinstance(properties, dict):
        properties = schema["properties"] = {}
    required = [n for n in schema.get("required") or [] if isinstance(n, str)]
    annotations = {name: _annotation(prop) for name, prop in properties.items() if isinstance(name, str)}
    return Parameters(schema, annotations, required, extra=schema.get("additionalProperties") is not False)


def make_schema_tool(name: str, func: Callable[..., Any], input_schema: Any, *, description: str | None = None,
                     network: bool = False, confirm: bool = False, source: str = "user") -> Tool:
    """A ``Tool`` whose schema is given (an MCP server's ``inputSchema``) rather than read from ``func``'s
    signature; ``func`` is called with the checked arguments as keywords."""
    if not callable(func):
        raise ToolError(f"A tool must be a function, not {type(func).__name__}.")
    return Tool(name=check_name(name), func=func, description=description or name,
                params=schema_parameters(input_schema), network=network, confirm=confirm, source=source)
