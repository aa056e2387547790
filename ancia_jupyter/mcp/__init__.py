"""Tools from MCP servers: the servers a user added, started on first use, their tools in the tool registry.

``specs`` checks what a user gives (names, commands, URLs, references to environment variables) and resolves
it when a server starts; ``session`` is one server's connection (a thread and an event loop of its own);
``tools`` turns an MCP tool into an ancia ``Tool`` and its result into text; ``manager`` is the app's
``McpServers``: what is added, started, running or failed, and the tool catalog the engine uses.
Nothing here imports the ``mcp`` SDK until a server starts.
"""
