"""Models behind a server that speaks OpenAI's chat-completions API (mlx_lm.server, llama.cpp, vLLM, a cloud).

The server renders the chat template and counts tokens, so this runtime is not ``local``: the engine hands it
the fitted messages and fits the context window with the estimates here. Answers stream as server-sent
events; a stop closes the connection, which is how such servers learn to stop generating. Every failure is
one line naming the URL, because the user has to go and look at that server. An API key is read from the
environment at each request and never kept, so it cannot end up in a log, a traceback or the store.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import mimetypes
import os
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from ..errors import ModelError
from .base import Chunk, PromptCache, Runtime, ToolCallRequest

CONNECT_TIMEOUT = 10.0  # seconds to open a connection
READ_TIMEOUT = 300.0  # seconds between bytes: a server may read a long prompt before it sends anything
WRITE_TIMEOUT = 60.0
LOAD_TIMEOUT = 5.0  # the check at load time: a server that is up lists its models at once
CHARS_PER_TOKEN = 4  # the estimate that fits the context window; the server counts exactly
MESSAGE_TOKENS = 4  # role and separators, per message
IMAGE_TOKENS = 512  # what an image costs a typical vision model
STRICT_HOSTS = frozenset({"api.openai.com"})  # refuse fields outside OpenAI's own, such as top_k


@dataclass(frozen=True)
class Endpoint:
    """Where a model is served: the API base (often ending in /v1), the model name the server expects, and
    the name of the environment variable that holds the API key, for a server that wants one."""

    url: str
    model: str
    api_key_env: str | None = None


def is_loopback_url(url: str) -> bool:
    """Whether ``url`` points at this machine (127.0.0.0/8, ::1, localhost): what offline mode allows."""
    try:
        host = urlsplit(url).hostname or ""
    except (TypeError, ValueError):
        return False
    if host.lower() == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return address.is_loopback or bool(mapped and mapped.is_loopback)


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


def _base_url(url: str) -> str:
    try:
        parts = urlsplit(url.strip())
        ok = parts.scheme in ("http", "https") and bool(parts.hostname) and (parts.port or 0) >= 0
    except (AttributeError, ValueError):  # not a string, an unclosed [ipv6], a port that is not a number
        ok = False
    if not ok:
        raise ModelError(f"{url!r} is not a server URL: give the API base, such as http://127.0.0.1:8080/v1.")
    return url.strip().rstrip("/")


def _status_error(response: httpx.Response, url: str, secret: str | None, hint: str = "") -> ModelError:
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


def _tool_call(call: dict) -> ToolCallRequest:
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


class _Reply:
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
        calls = [] if stopped else [_tool_call(c) for _, c in sorted(self.calls.items())]
        finish = "stopped" if stopped else "tool_calls" if calls else "length" if self.finish == "length" else "stop"
        prompt = int(self.usage.get("prompt_tokens") or self.prompt_estimate)
        generated = int(self.usage.get("completion_tokens") or -(-self.written // CHARS_PER_TOKEN))
        cached = int((self.usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0)
        end, first = time.perf_counter(), self.first
        return Chunk(tool_calls=calls, finish_reason=finish, prompt_tokens=prompt, cached_tokens=cached,
                     generation_tokens=generated,
                     prompt_tps=(prompt - cached) / (first - self.started) if first > self.started else 0.0,
                     generation_tps=(generated - 1) / (end - first) if generated > 1 and end > first else 0.0)


def _event(data: str, url: str, secret: str | None) -> dict:
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


def _transport_error(exc: httpx.HTTPError, url: str, answering: bool) -> ModelError:
    if isinstance(exc, httpx.ConnectTimeout):
        return ModelError(f"Could not connect to the server at {url} within {CONNECT_TIMEOUT:g} s: check that "
                          "it runs and that the URL is right.")
    if isinstance(exc, httpx.ConnectError):
        return ModelError(f"The server at {url} does not answer ({exc}): start it, or check the URL.")
    if isinstance(exc, httpx.TimeoutException):
        return ModelError(f"The server at {url} sent nothing for {READ_TIMEOUT:g} s (the read timeout): it may "
                          "be overloaded or stuck; try again, or raise openai_compat.READ_TIMEOUT.")
    if answering:
        return ModelError(f"The server at {url} closed the connection in the middle of the answer ({exc}): what "
                          "it wrote so far is kept; check the server and ask again.")
    return ModelError(f"The server at {url} closed the connection without answering ({exc}).")


class OpenAIRuntime(Runtime):
    name = "openai"
    local = False

    def __init__(self) -> None:
        self.endpoint: Endpoint | None = None
        self._client: httpx.Client | None = None

    @property
    def supports_tools(self) -> bool:
        return True

    def load(self, endpoint: Endpoint) -> None:  # type: ignore[override]  # an endpoint, not a folder
        """Keep the endpoint once its server answers, so a wrong URL or key shows at load, not mid-chat."""
        url = _base_url(endpoint.url)
        endpoint = Endpoint(url, endpoint.model, endpoint.api_key_env)
        headers, secret = self._headers(endpoint)
        timeout = httpx.Timeout(READ_TIMEOUT, connect=CONNECT_TIMEOUT, write=WRITE_TIMEOUT, pool=CONNECT_TIMEOUT)
        client = httpx.Client(timeout=timeout, trust_env=not is_loopback_url(url))  # no proxy for this machine
        try:
            response = client.get(f"{url}/models", headers=headers, timeout=LOAD_TIMEOUT)
        except httpx.HTTPError as exc:
            client.close()
            raise _transport_error(exc, f"{url}/models", answering=False) from None
        if response.status_code >= 400:
            client.close()
            hint = (". Is the URL the API base (often ending in /v1)?" if response.status_code == 404 else
                    ". Check the API key." if response.status_code in (401, 403) else "")
            raise _status_error(response, f"{url}/models", secret, hint)
        self.unload()
        self.endpoint, self._client = endpoint, client

    def unload(self) -> None:
        if self._client is not None:
            self._client.close()
        self.endpoint, self._client = None, None

    def prompt_tokens(self, messages: list[dict], tools: list[dict] | None = None) -> list[int]:
        raise ModelError("A model on a server is tokenized by the server; only estimates are available here.")

    def message_tokens(self, message: dict) -> int:
        content = message.get("content")
        chars = len(content) if isinstance(content, str) else 0
        if message.get("tool_calls"):
            chars += len(json.dumps([c.get("function") for c in message["tool_calls"]], default=str))
        return -(-chars // CHARS_PER_TOKEN) + MESSAGE_TOKENS + IMAGE_TOKENS * len(message.get("images") or ())

    def count_tokens(self, messages: list[dict], tools: list[dict] | None = None) -> int:
        schemas = -(-len(json.dumps(tools)) // CHARS_PER_TOKEN) if tools else 0
        return sum(self.message_tokens(m) for m in messages) + schemas + MESSAGE_TOKENS  # + the reply's header

    def _headers(self, endpoint: Endpoint) -> tuple[dict[str, str], str | None]:
        if not endpoint.api_key_env:
            return {}, None
        key = os.environ.get(endpoint.api_key_env)
        if not key:
            raise ModelError(f"The environment variable {endpoint.api_key_env} should hold the API key for "
                             f"{endpoint.url} but is not set: set it and try again.")
        return {"Authorization": f"Bearer {key}"}, key

    def _body(self, endpoint: Endpoint, messages: list[dict], params: dict[str, Any], tools: list[dict] | None,
              images: list[Any] | None) -> dict[str, Any]:
        temperature = float(params.get("temperature", 0.0))
        body: dict[str, Any] = {
            "model": endpoint.model, "messages": to_openai_messages(messages, images), "stream": True,
            "stream_options": {"include_usage": True}, "max_tokens": int(params.get("max_tokens", 256)),
            "temperature": temperature}
        if "top_p" in params:
            body["top_p"] = float(params["top_p"])
        if temperature and params.get("top_k") and urlsplit(endpoint.url).hostname not in STRICT_HOSTS:
            body["top_k"] = int(params["top_k"])  # vLLM, llama.cpp and mlx_lm.server read it
        if tools:
            body["tools"] = tools
        return body

    def stream(self, prompt: list[int], params: dict[str, Any], *, cache: PromptCache | None = None,
               tools: list[dict] | None = None, images: list[Any] | None = None,
               should_stop: Callable[[], bool] = lambda: False,
               messages: list[dict] | None = None) -> Iterator[Chunk]:
        if self.endpoint is None or self._client is None:
            raise ModelError("No server is loaded: load an endpoint first.")
        endpoint, messages = self.endpoint, messages or []
        url = f"{endpoint.url}/chat/completions"
        headers, secret = self._headers(endpoint)
        body = self._body(endpoint, messages, params, tools, images)
        reply = _Reply(self.count_tokens(messages, tools))
        if should_stop():
            yield reply.final(stopped=True)
            return
        answering = done = stopped = False
        try:
            with self._client.stream("POST", url, json=body, headers=headers) as response:
                answering = True
                if response.status_code >= 400:
                    response.read()
                    raise _status_error(response, url, secret)
                for data in sse_data(response.iter_lines()):
                    if should_stop():  # on every line, keep-alives too; leaving the block hangs up
                        stopped = True
                        break
                    if data is None:
                        continue
                    if data.strip() == "[DONE]":
                        done = True
                        break
                    text = reply.take(_event(data, url, secret))
                    if text:
                        yield Chunk(text=text)
                        if should_stop():
                            stopped = True
                            break
        except httpx.HTTPError as exc:
            raise _transport_error(exc, url, answering) from None
        if not (stopped or done or reply.finish):
            raise ModelError(f"The server at {url} closed the connection in the middle of the answer: what it "
                             "wrote so far is kept; check the server and ask again.")
        yield reply.final(stopped)


__all__ = ["Endpoint", "OpenAIRuntime", "is_loopback_url", "sse_data", "to_openai_messages"]
