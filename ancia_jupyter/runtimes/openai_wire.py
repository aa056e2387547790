"""OpenAI's chat-completions wire format: messages out, server-sent events in.

The engine's messages become the API's (images as data URLs, tool-call arguments as JSON text); the stream
that comes back is split into events, and the pieces of each tool call, sent across many events, are put
back together with the usage and the timings into the answer's last chunk. Any API key that an error would
show is blanked out.
"""

from __future__ import annotations

import base64
import json
import mimetypes
import time
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import httpx

from ..errors import ModelError
from .base import Chunk, ToolCallRequest

CHARS_PER_TOKEN = 4  # the estimate that fits the context window; the server counts exactly


def sse_data(lines: Iterable[str]) -> Iterator[str | None]:
    """The data of each server-sent event, its data lines joined; None for a comment line (a keep-alive), so
    the caller can check for a stop while the server is still reading the prompt."""
    data: list[str] = []
    for line in lines:
        if not line:
            if data:
                yield "\n".join(data)
                data = []
        elif line.startswith(":"):
            yield None
        else:
            name, _, value = line.partition(":")
            if name == "data":
                data.append(value[1:] if value.startswith(" ") else value)
    if data:  # a last event without its blank line; a cut-off one fails to parse and says so
        yield "\n".join(data)


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


class StreamedReply:
    """What one answer's events add up to: tool calls merged from their pieces, usage, finish and timings."""

    def __init__(self, prompt_estimate: int) -> None:
        self.prompt_estimate, self.started, self.first, self.written = prompt_estimate, time.perf_counter(), 0.0, 0
        self.calls: dict[int, dict] = {}
        self.usage: dict[str, Any] = {}
        self.finish: str | None = None

    def take(self, event: dict) -> str:
        """Merge one event and return its text. A streamed tool call is named once; its arguments come in
        pieces, matched by index."""
        self.usage = event.get("usage") or self.usage
        text = ""
        for choice in event.get("choices") or ():
            delta = choice.get("delta") or {}
            self.finish = choice.get("finish_reason") or self.finish
            for piece in delta.get("tool_calls") or ():
                index = piece.get("index")
                if not isinstance(index, int):  # servers that send whole calls without an index
                    index = len(self.calls) if piece.get("id") or not self.calls else max(self.calls)
                call = self.calls.setdefault(index, {"id": "", "name": "", "arguments": ""})
                function = piece.get("function") or {}
                call["id"], call["name"] = piece.get("id") or call["id"], function.get("name") or call["name"]
                arguments = function.get("arguments") or ""
                call["arguments"] += arguments if isinstance(arguments, str) else json.dumps(arguments)
            text += delta.get("content") or ""
        if text or self.calls:
            self.first = self.first or time.perf_counter()
        self.written += len(text)
        return text

    def final(self, stopped: bool = False) -> Chunk:
        """The last chunk: why it ended and the usage the server reported (estimated where it sent none)."""
        calls = [] if stopped else [tool_call_request(c) for _, c in sorted(self.calls.items())]
        finish = "stopped" if stopped else "tool_calls" if calls else "length" if self.finish == "length" else "stop"
        prompt = int(self.usage.get("prompt_tokens") or self.prompt_estimate)
        generated = int(self.usage.get("completion_tokens") or -(-self.written // CHARS_PER_TOKEN))
        cached = int((self.usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0)
        end, first = time.perf_counter(), self.first
        return Chunk(tool_calls=calls, finish_reason=finish, prompt_tokens=prompt, cached_tokens=cached,
                     generation_tokens=generated,
                     prompt_tps=(prompt - cached) / (first - self.started) if first > self.started else 0.0,
                     generation_tps=(generated - 1) / (end - first) if generated > 1 and end > first else 0.0)


def parse_event(data: str, url: str, secret: str | None) -> dict:
    """One event's JSON; a cut-off event means the connection broke, an error event is the server's word."""
    try:
        event = json.loads(data)
    except ValueError:
        raise ModelError(f"The server at {url} closed the connection in the middle of the answer (its last event "
                         "is cut off): check the server and ask again.") from None
    error = event.get("error") if isinstance(event, dict) else None
    if error:
        text = error.get("message", error) if isinstance(error, dict) else error
        message = f"The server at {url} stopped with an error: {text}"
        raise ModelError(message.replace(secret, "***") if secret else message)
    return event if isinstance(event, dict) else {}


def status_error(response: httpx.Response, url: str, secret: str | None, hint: str = "") -> ModelError:
    """One line: the status, the error the server put in its body (OpenAI's ``{"error": {"message"}}``, a
    plain ``{"error"}`` or ``{"detail"}``, else the text) and the URL, with any API key blanked out."""
    try:
        body = response.json()
    except ValueError:
        body = response.text
    if isinstance(body, dict):
        error = body.get("error", body.get("detail", body.get("message")))
        body = error.get("message", error) if isinstance(error, dict) else error
    text = " ".join(str(body or "").split())
    text = text[:300] + ("…" if len(text) > 300 else "")
    line = f"The server at {url} answered {response.status_code} {response.reason_phrase}: {text}{hint}"
    return ModelError(line.replace(secret, "***") if secret else line)
