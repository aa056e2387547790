"""``%ancia mcp``: the MCP servers whose tools the model may call, and managing them.

A mixin of the magics (``MagicCommands``). Each action is one ``ancia.mcp`` call and a line or a table;
``env=``/``headers=`` references are given through ``ancia.mcp.add(...)`` only. A line whose first word is
not an action is a question, as with ``%ancia models``.
"""

from __future__ import annotations

import shlex
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError

from ..errors import AnciaError
from .display import show_markdown, table

MCP_ACTIONS = ("refresh", "add", "remove", "enable", "disable", "trust", "untrust")
MCP_USAGE = ("[refresh | add NAME COMMAND… | add NAME URL | remove NAME | enable NAME | disable NAME | "
             "trust NAME | untrust NAME]")
_DONE = {"enable": "Enabled {}: it starts when its tools are first needed.",
         "disable": "Disabled {}: it is stopped and its tools are gone until you enable it.",
         "trust": "Trusted {}: its tools run without asking for approval.",
         "untrust": "{} is no longer trusted: each call of its tools asks for approval."}


def _rows(servers: list[dict]) -> list[dict]:
    return [{**s, "target": s["url"] or shlex.join(s["command"] or []),
             "status": f"{s['state']}: {s['error']}" if s["error"] else s["state"]} for s in servers]


class MagicMcp:
    """``%ancia mcp …``; the magics provide ``_ask`` and ``_parse`` (a line that is a question)."""

    if TYPE_CHECKING:
        def _ask(self, prompt: str, args: Any) -> Any: ...

        def _parse(self, options: str) -> Any: ...

    def _mcp(self, words: list[str]) -> None:
        from ..api_mcp import mcp

        if words and words[0] not in MCP_ACTIONS:
            self._ask(" ".join(["mcp", *words]), self._parse(""))
            return
        action, rest = (words[0], words[1:]) if words else (None, [])
        try:
            if action in (None, "refresh"):
                servers = mcp.list(refresh=action == "refresh")
                if not servers:
                    print("No MCP servers yet: %ancia mcp add NAME COMMAND…, or ancia.mcp.add(name, command=[...], "
                          "env={...}) for one that needs secrets.")
                    return
                show_markdown(table(_rows(servers), [("enabled", "on"), ("name", "server"), ("kind", "kind"),
                                                     ("target", "command or URL"), ("trusted", "trusted"),
                                                     ("status", "state"), ("tools", "tools")]))
            elif action == "add":
                if len(rest) < 2:
                    raise UsageError("Write %ancia mcp add NAME COMMAND ARG…, or %ancia mcp add NAME URL.")
                name, target = rest[0], rest[1:]
                is_url = len(target) == 1 and target[0].startswith(("http://", "https://"))
                mcp.add(name, url=target[0]) if is_url else mcp.add(name, target)
                print(f"Added {name}: it starts when its tools are first needed (`%ancia mcp refresh` starts it "
                      "now); its tools ask for approval until you trust it.")
            elif len(rest) != 1:
                raise UsageError(f"Name the server: %ancia mcp {action} NAME (`%ancia mcp` lists them).")
            elif action == "remove":
                mcp.remove(rest[0])
                print(f"Removed {rest[0]}.")
            else:
                getattr(mcp, action)(rest[0])
                print(_DONE[action].format(rest[0]))
        except AnciaError as exc:  # one line the user can act on, never a traceback
            raise UsageError(str(exc)) from None
