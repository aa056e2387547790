"""How answers look in a notebook: Markdown that grows in place while it streams."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Iterable

from . import events as ev

if TYPE_CHECKING:
    from .response import Response

UPDATE_INTERVAL = 0.05  # seconds between redraws of a streaming answer


def tool_block(call: dict) -> str:
    args = json.dumps(call.get("arguments", {}), ensure_ascii=False)
    if call.get("error"):
        result = f"error: {call['error']}"
    else:
        result = (call.get("output") or "")[:300]
    return f"> 🔧 **{call.get('name') or 'tool'}**(`{args}`) → {result}\n\n"


def response_markdown(response: "Response") -> str:
    parts = [tool_block(c) for c in response.tool_calls]
    parts.append(response.text)
    if response.status == "stopped":
        parts.append("\n\n*(stopped)*")
    if response.error:
        parts.append(f"\n\n**Error:** {response.error}")
    return "".join(parts)


class MarkdownStream:
    """Render a stream of events as one Markdown output, updated in place at most ~20 times a second."""

    def __init__(self) -> None:
        self.text = ""
        self.tools: dict[str, dict] = {}
        self.footer = ""
        self._handle = None
        self._last = 0.0

    def markdown(self) -> str:
        return "".join(tool_block(c) for c in self.tools.values()) + self.text + self.footer

    def feed(self, event: ev.Event) -> None:
        if isinstance(event, ev.MessageStarted):
            self.text = ""
        elif isinstance(event, ev.Token):
            self.text += event.text
        elif isinstance(event, ev.ToolCall):
            self.tools[event.id] = {"name": event.name, "arguments": event.arguments}
        elif isinstance(event, ev.ToolResult):
            self.tools.setdefault(event.id, {"name": event.name}).update(output=event.output, error=event.error)
        elif isinstance(event, ev.Error):
            self.footer += f"\n\n**Error:** {event.message}"
        elif isinstance(event, ev.Done) and event.status == "stopped":
            self.footer += "\n\n*(stopped)*"
        self._draw(force=isinstance(event, (ev.Done, ev.ToolCall, ev.ToolResult)))

    def _draw(self, force: bool = False) -> None:
        from IPython.display import Markdown, display

        now = time.monotonic()
        if not force and now - self._last < UPDATE_INTERVAL:
            return
        self._last = now
        if self._handle is None:
            self._handle = display(Markdown(self.markdown() or "…"), display_id=True)
        else:
            self._handle.update(Markdown(self.markdown() or "…"))


def show_stream(events: Iterable[ev.Event]) -> MarkdownStream:
    view = MarkdownStream()
    for event in events:
        view.feed(event)
    return view
