"""The event protocol: what the engine streams for one answer, and what every view consumes.

Each event is a small dataclass with a ``type`` tag; ``to_dict()`` gives the JSON the chat panel and the
sidebar receive over widget messages or a kernel comm. The order for one answer is::

    message_started, (notice | token | tool_call | tool_result)*, done
    error may come before done; done always comes last.

Every event names its chat first (``chat_id``), so a view that follows several chats, or a log of events,
never has to remember which answer an event belongs to. (``chat_id`` is 0 only on an event made outside an
answer, for example the call shown to an approver when a tool is called by hand.)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal


@dataclass
class MessageStarted:
    chat_id: int
    message_id: int  # the assistant message being written
    user_message_id: int | None
    model: str
    type: Literal["message_started"] = "message_started"


@dataclass
class Token:
    chat_id: int
    text: str  # a text delta, to append to the answer
    message_id: int
    type: Literal["token"] = "token"


@dataclass
class ToolCall:
    chat_id: int
    id: str
    name: str
    arguments: dict[str, Any]
    message_id: int
    type: Literal["tool_call"] = "tool_call"


@dataclass
class ToolResult:
    chat_id: int
    id: str
    name: str
    output: str | None = None
    error: str | None = None
    duration: float = 0.0
    message_id: int | None = None  # the stored tool message
    type: Literal["tool_result"] = "tool_result"


@dataclass
class Notice:
    """Something the user should know that is not an error (for example, old turns left out)."""

    chat_id: int
    text: str
    code: str = ""
    type: Literal["notice"] = "notice"


@dataclass
class Done:
    chat_id: int
    message_id: int
    status: Literal["complete", "stopped", "error"]
    usage: dict[str, int] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    finish_reason: str | None = None  # why the last generation ended: "length" when cut at max_tokens
    type: Literal["done"] = "done"


@dataclass
class Error:
    chat_id: int
    message: str  # one line a user can act on
    code: str = "error"
    type: Literal["error"] = "error"


Event = MessageStarted | Token | ToolCall | ToolResult | Notice | Done | Error
EVENT_TYPES = {cls.type: cls for cls in (MessageStarted, Token, ToolCall, ToolResult, Notice, Done, Error)}


def to_dict(event: Event) -> dict[str, Any]:
    return asdict(event)


def from_dict(data: dict[str, Any]) -> Event:
    kind = data.get("type")
    if kind not in EVENT_TYPES:
        raise ValueError(f"Unknown event type {kind!r}.")
    return EVENT_TYPES[kind](**{k: v for k, v in data.items() if k != "type"})
