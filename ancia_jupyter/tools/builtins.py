"""The built-in tools: each module has a ``register(registry)``, the door plugins use too."""

from __future__ import annotations

from . import kernel_context, mood, notebook_tools, system_time, web_search, web_visit
from .registry import ToolRegistry

MODULES = (system_time, mood, web_search, web_visit, kernel_context, notebook_tools)


def register_builtins(registry: ToolRegistry) -> None:
    """Add every built-in tool to ``registry`` as source ``"builtin"``."""
    with registry.loading("builtin"):
        for module in MODULES:
            module.register(registry)
