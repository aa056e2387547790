"""The user's own tools (``@ancia.tool``, ``ancia.tools.register``), kept apart from any one app.

A notebook defines its tools whenever its cells run: before the assistant starts, or while it is closed
and started again. So they are kept here, for one data dir, and handed to each app's registry when it is
made; a tool defined while an app runs goes into its registry at once.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path

from ..errors import ToolError
from .registry import ToolRegistry
from .tool import Tool


class UserTools:
    """The tools the user defined for one data dir, and the registry they go to now (if an app runs)."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self._tools: dict[str, Tool] = {}
        self._registry: ToolRegistry | None = None
        self._lock = threading.RLock()

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def names(self) -> list[str]:
        return sorted(self._tools)

    def add(self, tool: Tool) -> Tool:
        """Keep a tool (a new definition replaces the old one) and add it to the running app's registry.

        A name a built-in or a plugin already has raises ``ToolError`` and nothing is kept.
        """
        with self._lock:
            if self._registry is not None:
                self._registry.check_free(tool)
            self._tools[tool.name] = tool
            if self._registry is not None:
                self._registry.add(tool)
        return tool

    def remove(self, name: str) -> bool:
        """Forget one of the user's tools; ``False`` if there is none of that name."""
        with self._lock:
            if self._tools.pop(name, None) is None:
                return False
            if self._registry is not None:
                self._registry.unregister(name)
        return True

    def plugin_loading(self) -> bool:
        """Whether this thread is importing a plugin's modules into the running app: an ``@ancia.tool``
        there is the plugin's, registered by its loader."""
        registry = self._registry
        return registry is not None and registry.loading_plugin()

    @contextlib.contextmanager
    def joining(self, registry: ToolRegistry) -> Iterator[None]:
        """Hand the user's tools to a new app's registry: new ones from the start of the block, those kept
        from before at its end. What the block loads (the installed plugins) comes first, so a plugin keeps
        a name a user tool also wants; and a plugin's ``@ancia.tool`` inside is known for the plugin's."""
        with self._lock:
            self._registry = registry
        yield
        with self._lock:
            for tool in list(self._tools.values()):
                with contextlib.suppress(ToolError):  # a name taken meanwhile: the plugin's or built-in's stays
                    registry.add(tool)

    def leave(self, registry: ToolRegistry) -> None:
        """The app of ``registry`` closed: keep the tools for the next one."""
        with self._lock:
            if self._registry is registry:
                self._registry = None
