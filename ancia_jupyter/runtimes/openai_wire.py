"""OpenAI's chat-completions wire format: messages out, events in.

The engine's messages become the API's (images as data URLs, tool-call arguments as JSON text); each event
that comes back (read by ``openai_sse``) is checked for the API's shape, and the pieces of each tool call,
sent across many events, are put back together with the usage and the timings into the answer's last chunk.
Any text of the server's that an error shows is redacted first (no piece of the API key survives), then cut.
"""

from __future__ import annotations

import base64
import json
import mimetypes
import time
import uuid
from pathlib import Path
from typing import Any

from ..errors import ModelError
from .base import Chunk, ToolCallRequest
from .openai_sse import error_text

CHARS_PER_TOKEN = 4  # the estimate that fits the context window; the server counts exactly


def _image_part(attachment: dict) -> dict:
    """An attachment (``{"path"}`` or ``{"data", "mime"}``) as an ``image_url`` part holding a data URL."""
    data, mime = attachment.get("data"), attachment.get("mime")
    if data is None:
        data, mime = Path(attachment["path"]).read_bytes(), mime or mimetypes.guess_type(attachment["path"])[0]
    encoded = data if isinstance(data, str) else base64.b64encode(bytes(data)).decode()  # str: base64 already
    return {"type": "image_url", "image_url": {"url": f"data:{mime or 'image/png'};base64,{encoded}"}}


def to_openai_messages(messages: list[dict], images: list[Any] | None = None) -> list[dict]:
    """The engine's chat messages as the API wants them: only keys it knows, tool-call arguments as JSON text,
    images as content parts. ``images`` go on the last user message when it carries none; an older image
    that can no longer be read is left out, the latest ones must be readable."""
    last_user = max((i for i, m in enumerate(messages) if m.get("role") == "user"), default=-1)
    out = []
    for i, m in enumerate(messages):
        item: dict[str, Any] = {"role": m["role"], "content": m.get("content") or ""}
        pictures = list(m.get("images") or (images if i == last_user else None) or ())
        if pictures and m["role"] == "user":
            parts = [{"type": "text", "text": item["content"]}]
            for picture in pictures:
                try:
                    parts.append(_image_part(picture))
                except OSError as exc:
                    if i == last_user:
                        raise ModelError(f"Could not read the attached image: {exc}") from exc
            item["content"] = parts
        if m.get("tool_calls"):
            item["tool_calls"] = [{"id": c["id"], "type": "function", "function": {
                "name": c["function"]["name"], "arguments": a if isinstance(a := c["function"]["arguments"], str)
                else json.dumps(a)}} for c in m["tool_calls"]]
        if m["role"] == "tool":
            item["tool_call_id"] = m.get("tool_call_id") or ""
        out.append(item)
    return out


def tool_call_request(call: dict) -> ToolCallRequest:
    request = ToolCallRequest(id=call["id"] or uuid.uuid4().hex[:12], name=call["name"], raw=call["arguments"])
    try:
        arguments = json.loads(call["arguments"]) if call["arguments"].strip() else {}
    except ValueError as exc:
        request.error = f"The tool call's arguments are not valid JSON ({exc})."
        return request
    if not call["name"]:
        request.error = "The tool call has no function name."
    elif not isinstance(arguments, dict):
        request.error = "The tool call's arguments are not a JSON object."
    else:
        request.arguments = arguments
    return request


class Malformed(ValueError):
    """An event whose shape is not the API's; the message says which part is wrong."""


def _kind(value: object) -> str:
    kinds = {bool: "true or false", int: "a number", float: "a number", str: "text", list: "a list", dict: "an object"}
    return "null" if value is None else kinds.get(type(value), type(value).__name__)


def _expect(value: object, kind: type | tuple[type, ...], what: str, wanted: str) -> None:
    if value is not None and (not isinstance(value, kind) or isinstance(value, bool)):
        raise Malformed(f"{what} is {_kind(value)}, not {wanted}")


def _count(value: object, default: int) -> int:
    """A token count the server reported, or ``default`` where it sent none or something else."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value < 2**53:
        return int(value)
    return default


class StreamedReply:
    """What one answer's events add up to: tool calls merged from their pieces, usage, finish and timings."""

    def __init__(self, prompt_estimate: int) -> None:
        self.prompt_estimate, self.started, self.first, self.written = prompt_estimate, time.perf_counter(), 0.0, 0
        self.calls: dict[int, dict] = {}
        self.usage: dict[str, Any] = {}
        self.finish: str | None = None
        self.size = 0  # characters of text and tool calls, for the cap on an answer

    def take(self, event: dict) -> str:
        """Merge one event and return its text; ``Malformed`` for a part of the wrong shape. A streamed tool
        call is named once; its arguments come in pieces, matched by index."""
        _expect(event.get("usage"), dict, "its usage", "an object")
        _expect(event.get("choices"), list, "its choices", "a list")
        self.usage = event.get("usage") or self.usage
        text = ""
        for choice in event.get("choices") or ():
            _expect(choice, dict, "a choice", "an object")
            delta = choice.get("delta")
            _expect(delta, dict, "a choice's delta", "an object")
            delta = delta or {}
            _expect(choice.get("finish_reason"), str, "a choice's finish_reason", "text")
            _expect(delta.get("content"), str, "a delta's content", "text")
            _expect(delta.get("tool_calls"), list, "a delta's tool_calls", "a list")
            self.finish = choice.get("finish_reason") or self.finish
            for piece in delta.get("tool_calls") or ():
                self._take_call(piece)
            text += delta.get("content") or ""
        if text or self.calls:
            self.first = self.first or time.perf_counter()
        self.written += len(text)
        self.size += len(text)
        return text

    def _take_call(self, piece: object) -> None:
        _expect(piece, dict, "a tool call", "an object")
        assert isinstance(piece, dict)
        function = piece.get("function")
        _expect(function, dict, "a tool call's function", "an object")
        function = function or {}
        _expect(piece.get("id"), str, "a tool call's id", "text")
        _expect(function.get("name"), str, "a tool call's name", "text")
        index = piece.get("index")
        if not isinstance(index, int):  # servers that send whole calls without an index
            index = len(self.calls) if piece.get("id") or not self.calls else max(self.calls)
        call = self.calls.setdefault(index, {"id": "", "name": "", "arguments": ""})
        call["id"], call["name"] = piece.get("id") or call["id"], function.get("name") or call["name"]
        arguments = function.get("arguments")
        arguments = "" if arguments is None else arguments if isinstance(arguments, str) else json.dumps(arguments)
        call["arguments"] += arguments
        self.size += len(arguments) + len(function.get("name") or "")

    def final(self, stopped: bool = False) -> Chunk:
        """The last chunk: why it ended and the usage the server reported (estimated where it sent none)."""
        calls = [] if stopped else [tool_call_request(c) for _, c in sorted(self.calls.items())]
        finish = "stopped" if stopped else "tool_calls" if calls else "length" if self.finish == "length" else "stop"
        prompt = _count(self.usage.get("prompt_tokens"), self.prompt_estimate)
        generated = _count(self.usage.get("completion_tokens"), -(-self.written // CHARS_PER_TOKEN))
        details = self.usage.get("prompt_tokens_details")
        cached = _count(details.get("cached_tokens"), 0) if isinstance(details, dict) else 0
        end, first = time.perf_counter(), self.first
        return Chunk(tool_calls=calls, finish_reason=finish, prompt_tokens=prompt, cached_tokens=cached,
                     generation_tokens=generated,
                     prompt_tps=(prompt - cached) / (first - self.started) if first > self.started else 0.0,
                     generation_tps=(generated - 1) / (end - first) if generated > 1 and end > first else 0.0)


def redact(text: str, secret: str | None) -> str:
    """``text`` with the key blanked out: the whole key, and any piece of it of 4 or more characters (a key
    cut short, or only its end echoed). Done before any cutting, so a cut can never leave part of a key."""
    if not secret:
        return text
    if len(secret) < 4:
        return text.replace(secret, "***")
    grams = {secret[i:i + 4] for i in range(len(secret) - 3)}
    hidden = bytearray(len(text))
    for i in range(len(text) - 3):
        if text[i:i + 4] in grams:
            hidden[i:i + 4] = b"\x01\x01\x01\x01"
    if not any(hidden):
        return text
    out, i = [], 0
    while i < len(text):
        if hidden[i]:
            while i < len(text) and hidden[i]:
                i += 1
            out.append("***")
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def quote(text: str, secret: str | None, limit: int = 300) -> str:
    """The server's own text, safe to show in one line: put on one line, redacted, then cut to ``limit``.
    Only a generous start (twice what is shown, and twice the key) is redacted, to keep a 4 MB event cheap:
    what is shown comes from the redacted text, so no piece of the key of 4 characters or more can show."""
    text = " ".join(text.split())
    shown = redact(text[:2 * limit + 2 * len(secret or "")], secret)
    return shown[:limit] + ("…" if len(shown) > limit or len(text) > 2 * limit + 2 * len(secret or "") else "")


def parse_event(data: str, complete: bool, url: str, secret: str | None) -> dict:
    """One event's JSON object. An event cut off at the end of the body means the connection broke; an error
    event is the server's word; anything else that is not a JSON object is named as such."""
    try:
        event = json.loads(data)
    except (ValueError, RecursionError):
        if not complete:
            raise ModelError(f"The server at {url} closed the connection in the middle of the answer (its last "
                             "event is cut off): what it wrote so far is kept; check the server and ask "
                             "again.") from None
        raise ModelError(f"The server at {url} sent an event that is not JSON: {quote(data, secret)}") from None
    if not isinstance(event, dict):
        raise ModelError(f"The server at {url} sent an event that is not a JSON object: {quote(data, secret)}")
    if event.get("error"):
        raise ModelError(f"The server at {url} stopped with an error: {quote(error_text(event), secret)}")
    return event


def status_error(status: int, reason: str, body: bytes, url: str, secret: str | None, hint: str = "") -> ModelError:
    """One line: the status, the error the server put in its body (see ``error_text``; else the text) and the
    URL, with any piece of the API key blanked out before the text is cut."""
    text = body.decode("utf-8", errors="replace")
    try:
        text = error_text(json.loads(text))
    except (ValueError, RecursionError):
        pass
    return ModelError(f"The server at {url} answered {status} {reason}: {quote(text, secret)}{hint}")
