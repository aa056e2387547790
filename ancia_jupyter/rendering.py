"""How an answer's events look as they come: Markdown that grows in place in a notebook cell, or plain text
printed to a terminal. Tool calls show as compact quoted blocks, in the order they happened between the
model's words (``response.answer_markdown``, the one way an answer becomes Markdown). Ctrl-C while showing
stops the answer and still shows its end.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterable
from typing import Any

from . import events as ev
from .response import Collector, answer_markdown, tool_result

UPDATE_INTERVAL = 0.05  # seconds between redraws of a streaming answer


class _View:
    """What every live view keeps: the answer collected so far."""

    def __init__(self) -> None:
        self.answer = Collector()

    @property
    def text(self) -> str:
        return self.answer.text

    @property
    def done(self) -> ev.Done | None:
        return self.answer.done


class MarkdownStream(_View):
    """Render a stream of events as one Markdown output, updated in place at most ~20 times a second.

    ``text`` is the answer's last message: the words after the last tool call, which views that act on
    the answer (insert its code, parse its JSON) want.
    """

    def __init__(self) -> None:
        super().__init__()
        self._handle: Any = None
        self._last = 0.0

    def markdown(self) -> str:
        answer = self.answer
        notices = [n.text for n in answer.notices if n.code not in ("loading", "length_limit")]
        status = answer.done.status if answer.done is not None else None
        text = answer_markdown(answer.parts, notices, answer.errors, status, answer.limit_notice)
        if not text.strip():
            loading = [n.text for n in answer.notices if n.code == "loading"]
            return f"*{loading[-1]}*" if loading else "…"  # shown only until the answer starts
        return text

    def feed(self, event: ev.Event) -> None:
        self.answer.feed(event)
        self._draw(force=not isinstance(event, ev.Token))

    def _draw(self, force: bool = False) -> None:
        from IPython.display import Markdown, display

        now = time.monotonic()
        if not force and now - self._last < UPDATE_INTERVAL:
            return
        self._last = now
        if self._handle is None:
            self._handle = display(Markdown(self.markdown()), display_id=True)
        else:
            self._handle.update(Markdown(self.markdown()))


class TextStream(_View):
    """Render a stream of events as plain text printed as it comes (``%%ancia --format text``, the
    ``ancia chat`` command)."""

    def __init__(self) -> None:
        super().__init__()
        self._at_line_start = True

    def _write(self, text: str, file: Any = None) -> None:
        file = file or sys.stdout
        file.write(text)
        file.flush()
        if text:
            self._at_line_start = text.endswith("\n")

    def _line(self, text: str, file: Any = None) -> None:
        if not self._at_line_start:
            self._write("\n")
        self._write(text + "\n", file)

    def feed(self, event: ev.Event) -> None:
        self.answer.feed(event)
        if isinstance(event, ev.Token):
            self._write(event.text)
        elif isinstance(event, ev.ToolCall):
            self._line(f"[tool {event.name}({json.dumps(event.arguments, ensure_ascii=False)})]")
        elif isinstance(event, ev.ToolResult):
            result = tool_result({"output": event.output, "error": event.error})
            self._line(f"[→ {' '.join(result.split())}]")
        elif isinstance(event, ev.Notice) and event.code != "loading":
            self._line(f"({event.text})")
        elif isinstance(event, ev.Error):
            self._line(f"Error: {event.message}", sys.stderr)
        elif isinstance(event, ev.Done):
            if event.status == "stopped":
                self._line("(stopped)")
            elif not self._at_line_start:
                self._write("\n")


def consume(events: Iterable[ev.Event], feed: Callable[[ev.Event], None]) -> None:
    """Feed every event to a view. An ``Answer`` takes Ctrl-C itself (``Answer.drain``): it stops, and its end
    still comes, so what was said and how it ended are shown and the cell finishes without a traceback."""
    drain = getattr(events, "drain", None)
    if drain is not None:
        drain(feed)
        return
    for event in events:
        feed(event)


def show_stream(events: Iterable[ev.Event]) -> MarkdownStream:
    view = MarkdownStream()
    consume(events, view.feed)
    return view


def show_text(events: Iterable[ev.Event]) -> TextStream:
    view = TextStream()
    consume(events, view.feed)
    return view
