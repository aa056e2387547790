"""How answers look in a notebook: Markdown that grows in place while it streams, or plain text.

Tool calls show as compact quoted blocks, in the order they happened between the model's words.
"""

from __future__ import annotations

import json
import re
import sys
import time
from collections.abc import Callable, Iterable
from typing import Any

from .. import events as ev
from ..response import Collector, Response

UPDATE_INTERVAL = 0.05  # seconds between redraws of a streaming answer
RESULT_CHARS = 300  # how much of a tool's result a block shows
CODE_BLOCK = re.compile(r"```[ \t]*([\w+#.-]*)[^\n]*\n(.*?)(?:```|\Z)", re.DOTALL)


def _tool_result(call: dict) -> str:
    if call.get("error"):
        return f"error: {call['error']}"
    if "output" not in call:
        return "…"
    return (call.get("output") or "")[:RESULT_CHARS]


def tool_block(call: dict) -> str:
    args = json.dumps(call.get("arguments", {}), ensure_ascii=False)
    result = " ".join(_tool_result(call).split())
    return f"> 🔧 **{call.get('name') or 'tool'}**(`{args}`) → {result}\n\n"


def response_markdown(response: Response) -> str:
    parts = [tool_block(c) for c in response.tool_calls]
    parts.append(response.text)
    if response.status == "stopped":
        parts.append("\n\n*(stopped)*")
    if response.error:
        parts.append(f"\n\n**Error:** {response.error}")
    return "".join(parts)


class MarkdownStream:
    """Render a stream of events as one Markdown output, updated in place at most ~20 times a second.

    ``text`` is the answer's last message: the words after the last tool call, which views that act on
    the answer (insert its code, parse its JSON) want.
    """

    def __init__(self) -> None:
        self.answer = Collector()
        self._handle: Any = None
        self._last = 0.0

    @property
    def text(self) -> str:
        return self.answer.text

    @property
    def done(self) -> ev.Done | None:
        return self.answer.done

    def markdown(self) -> str:
        answer = self.answer
        body = "".join(f"*{n.text}*\n\n" for n in answer.notices if n.code != "loading")
        for part in answer.parts:
            if "tool" in part:
                if body and not body.endswith("\n\n"):
                    body += "\n\n"
                body += tool_block(part["tool"])
            else:
                body += part["text"]
        footer = "".join(f"\n\n**Error:** {message}" for message in answer.errors)
        if answer.done is not None and answer.done.status == "stopped":
            footer += "\n\n*(stopped)*"
        if not body.strip() and not footer:
            loading = [n.text for n in answer.notices if n.code == "loading"]
            return f"*{loading[-1]}*" if loading else "…"  # shown only until the answer starts
        return body + footer

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


class TextStream:
    """Render a stream of events as plain text printed as it comes (``%%ancia --format text``, the
    ``ancia chat`` command)."""

    def __init__(self) -> None:
        self.answer = Collector()
        self._at_line_start = True

    @property
    def text(self) -> str:
        return self.answer.text

    @property
    def done(self) -> ev.Done | None:
        return self.answer.done

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
            result = _tool_result({"output": event.output, "error": event.error})
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
    """Feed every event to a view. Ctrl-C stops the answer; what was said so far, and the end of the
    answer, are still shown, and the cell finishes without a traceback."""
    iterator = iter(events)
    while True:
        try:
            for event in iterator:
                feed(event)
            return
        except KeyboardInterrupt:
            stop = getattr(events, "stop", None)
            if stop is None:
                raise
            stop()
            iterator = iter(events)  # the answer keeps its place: carry on to its ``done``


def show_stream(events: Iterable[ev.Event]) -> MarkdownStream:
    view = MarkdownStream()
    consume(events, view.feed)
    return view


def show_text(events: Iterable[ev.Event]) -> TextStream:
    view = TextStream()
    consume(events, view.feed)
    return view


# -- acting on an answer, and tables --------------------------------------------------------------

def first_code_block(text: str, language: str | None = None) -> str | None:
    """The body of the first fenced code block (in ``language`` if given); an unclosed one runs to the end."""
    for match in CODE_BLOCK.finditer(text):
        if language is None or match[1].lower() == language:
            return match[2]
    return None


def first_json(text: str) -> Any:
    """The answer's JSON: its first ``json`` block, else its first block, else the answer itself."""
    block = first_code_block(text, "json")
    candidate = block if block is not None else first_code_block(text)
    candidate = (candidate if candidate is not None else text).strip()
    try:
        return json.loads(candidate)
    except ValueError as exc:
        start = min((i for i in (candidate.find("{"), candidate.find("[")) if i >= 0), default=-1)
        if start > 0:  # "Here it is: {...}"
            try:
                return json.JSONDecoder().raw_decode(candidate, start)[0]
            except ValueError:
                pass
        raise ValueError(str(exc)) from None


def show_markdown(text: str) -> None:
    """Markdown for notebooks, the same text for terminals."""
    from IPython.display import display

    display({"text/markdown": text, "text/plain": text}, raw=True)


def table(rows: list[dict], columns: list[tuple[str, str]]) -> str:
    def cell(value: Any) -> str:
        if isinstance(value, (list, tuple)):
            value = ", ".join(map(str, value))
        text = "✓" if value is True else "" if value is None or value is False else str(value)
        return " ".join(text.split()).replace("|", "\\|")

    lines = ["| " + " | ".join(title for _, title in columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(row.get(key)) for key, _ in columns) + " |" for row in rows]
    return "\n".join(lines)
