"""A small MCP server for the tests, written with the official SDK: an adder, a tool that raises, one that
sleeps, and one that reads an environment variable (to show what a server is given).

    python adder.py                 serves stdio
    python adder.py --http PORT     serves streamable HTTP on 127.0.0.1:PORT (path /mcp)
"""

from __future__ import annotations

import os
import sys
import time

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

server = MCPServer("adder", log_level="WARNING")


@server.tool()
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@server.tool()
def fail(message: str) -> str:
    """Always fails, with the given message."""
    raise ToolError(message)


@server.tool()
def sleep(seconds: float) -> str:
    """Sleep, then say how long it slept."""
    time.sleep(seconds)
    return f"slept {seconds:g} s"


@server.tool()
def getenv(name: str) -> str:
    """The value of an environment variable in the server's process, or '(unset)'."""
    return os.environ.get(name, "(unset)")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--http":
        server.run("streamable-http", host="127.0.0.1", port=int(sys.argv[2]))
    else:
        server.run()
