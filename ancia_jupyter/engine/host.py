"""The boundaries an answer crosses, named as protocols so the type checker follows every call."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from .. import events as ev


class ToolCatalog(Protocol):
    """What the engine uses of the tool registry."""

    def schemas(self, names: list[str] | None, chat_id: int | None = None) -> list[dict]: ...

    def resolve(self, name: str) -> str: ...

    def call(self, name: str, arguments: Any, *, chat_id: int | None = None,
             approve: Callable[[ev.ToolCall], bool] | None = None,
             event: ev.ToolCall | None = None) -> tuple[str | None, str | None]: ...
