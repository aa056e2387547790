"""What ``ancia.chat()`` returns: the answer, collected from its event stream."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from . import events as ev


@dataclass
class Response:
    text: str
    chat_id: int
    message_id: int
    status: str
    usage: dict[str, int] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    notices: list[str] = field(default_factory=list)

    @classmethod
    def from_events(cls, events: list[ev.Event]) -> Response:
        text: dict[int, str] = {}
        calls: dict[str, dict[str, Any]] = {}
        error = None
        notices = []
        done = None
        for event in events:
            if isinstance(event, ev.Token):
                text[event.message_id] = text.get(event.message_id, "") + event.text
            elif isinstance(event, ev.ToolCall):
                calls[event.id] = {"id": event.id, "name": event.name, "arguments": event.arguments}
            elif isinstance(event, ev.ToolResult) and event.id in calls:
                calls[event.id].update(output=event.output, error=event.error, duration=event.duration)
            elif isinstance(event, ev.Error):
                error = event.message
            elif isinstance(event, ev.Notice):
                notices.append(event.text)
            elif isinstance(event, ev.Done):
                done = event
        if done is None:
            raise RuntimeError("The answer's stream ended without a done event.")
        return cls(text=text.get(done.message_id, ""), chat_id=done.chat_id, message_id=done.message_id,
                   status=done.status, usage=done.usage, timings=done.timings, tool_calls=list(calls.values()),
                   error=error, notices=notices)

    def __str__(self) -> str:
        return self.text

    def _repr_markdown_(self) -> str:
        from .display import response_markdown

        return response_markdown(self)
