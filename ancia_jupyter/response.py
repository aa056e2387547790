"""What an answer said, collected from its events: ``Collector`` folds them in as they come (the notebook
views draw from it while the answer streams), and ``Response``, what ``ancia.chat()`` returns, is the
collector's result once the answer is done. This is the only place events are added up."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from . import events as ev

RESULT_CHARS = 300  # how much of a tool's result a block shows


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
    parts: list[dict[str, Any]] = field(default_factory=list)  # words and tool calls in the order they came
    limit_notice: str | None = None  # the answer was cut at its max_tokens limit: what the user can do

    @classmethod
    def from_events(cls, events: list[ev.Event]) -> Response:
        collector = Collector()
        for event in events:
            collector.feed(event)
        return collector.response()

    def __str__(self) -> str:
        return self.text

    def _repr_markdown_(self) -> str:
        errors = [self.error] if self.error else []
        notices = [n for n in self.notices if n != self.limit_notice]
        return answer_markdown(self.parts, notices, errors, self.status, self.limit_notice)


class Collector:
    """An answer so far: its parts in the order they happened (``{"text": str}`` or ``{"tool": call}``),
    ``text``, the words of its last message (after the last tool call, what acting on an answer wants), its
    tool calls with their results, notices, errors and, at the end, the ``done`` event."""

    def __init__(self) -> None:
        self.parts: list[dict[str, Any]] = []
        self.calls: dict[str, dict[str, Any]] = {}
        self.text = ""
        self.notices: list[ev.Notice] = []
        self.errors: list[str] = []
        self.done: ev.Done | None = None

    @property
    def limit_notice(self) -> str | None:
        """The notice of an answer cut at its max_tokens limit (shown at its end, where the cut is)."""
        return next((n.text for n in reversed(self.notices) if n.code == "length_limit"), None)

    def feed(self, event: ev.Event) -> None:
        if isinstance(event, ev.MessageStarted):
            self.text = ""
            self.parts.append({"text": ""})
        elif isinstance(event, ev.Token):
            if not self.parts or "text" not in self.parts[-1]:
                self.parts.append({"text": ""})
            self.parts[-1]["text"] += event.text
            self.text += event.text
        elif isinstance(event, ev.ToolCall):
            self.calls[event.id] = {"id": event.id, "name": event.name, "arguments": event.arguments}
            self.parts.append({"tool": self.calls[event.id]})
        elif isinstance(event, ev.ToolResult):
            if event.id not in self.calls:
                self.calls[event.id] = {"id": event.id, "name": event.name}
                self.parts.append({"tool": self.calls[event.id]})
            self.calls[event.id].update(output=event.output, error=event.error, duration=event.duration)
        elif isinstance(event, ev.Notice):
            self.notices.append(event)
        elif isinstance(event, ev.Error):
            self.errors.append(event.message)
        elif isinstance(event, ev.Done):
            self.done = event

    def response(self) -> Response:
        done = self.done
        if done is None:
            raise RuntimeError("The answer's stream ended without a done event.")
        return Response(text=self.text, chat_id=done.chat_id, message_id=done.message_id, status=done.status,
                        usage=done.usage, timings=done.timings, tool_calls=list(self.calls.values()),
                        error=self.errors[-1] if self.errors else None, notices=[n.text for n in self.notices],
                        parts=[dict(p) for p in self.parts], limit_notice=self.limit_notice)


def tool_result(call: dict) -> str:
    if call.get("error"):
        return f"error: {call['error']}"
    if "output" not in call:
        return "…"
    return (call.get("output") or "")[:RESULT_CHARS]


def tool_block(call: dict) -> str:
    args = json.dumps(call.get("arguments", {}), ensure_ascii=False)
    result = " ".join(tool_result(call).split())
    return f"> 🔧 **{call.get('name') or 'tool'}**(`{args}`) → {result}\n\n"


def answer_markdown(parts: Sequence[dict[str, Any]], notices: Sequence[str] = (), errors: Sequence[str] = (),
                    status: str | None = None, limit_notice: str | None = None) -> str:
    """An answer as Markdown, the one way every view shows it (the live cell, a ``Response``, an export): its
    notices, then its words and tool calls in the order they came (each call a compact quoted block), then
    its errors, whether it was stopped, and whether it was cut at its token limit."""
    body = "".join(f"*{text}*\n\n" for text in notices)
    for part in parts:
        if "tool" in part:
            if body and not body.endswith("\n\n"):
                body += "\n\n"
            body += tool_block(part["tool"])
        else:
            body += part["text"]
    body += "".join(f"\n\n**Error:** {message}" for message in errors)
    if status == "stopped":
        body += "\n\n*(stopped)*"
    if limit_notice:
        body += f"\n\n*{limit_notice}*"
    return body
