"""Models behind a server that speaks OpenAI's chat-completions API (mlx_lm.server, llama.cpp, vLLM, a cloud).

The server renders the chat template and counts tokens, so this runtime is not ``local``: the engine hands it
the fitted messages and fits the context window with the estimates here. Answers stream as server-sent
events (their format is `openai_wire`); a stop closes the connection, which is how such servers learn to stop
generating. Every failure is one line naming the URL, because the user has to go and look at that server. An
API key is read from the environment at each request and never kept, so it cannot end up in a log, a
traceback or the store.
"""

from __future__ import annotations

import ipaddress
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from ..errors import ModelError
from .base import Chunk, PromptCache, Runtime
from .openai_wire import CHARS_PER_TOKEN, StreamedReply, parse_event, sse_data, status_error, to_openai_messages

CONNECT_TIMEOUT = 10.0  # seconds to open a connection
READ_TIMEOUT = 300.0  # seconds between bytes: a server may read a long prompt before it sends anything
WRITE_TIMEOUT = 60.0
LOAD_TIMEOUT = 5.0  # the check at load time: a server that is up lists its models at once
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


def _base_url(url: str) -> str:
    try:
        parts = urlsplit(url.strip())
        ok = parts.scheme in ("http", "https") and bool(parts.hostname) and (parts.port or 0) >= 0
    except (AttributeError, ValueError):  # not a string, an unclosed [ipv6], a port that is not a number
        ok = False
    if not ok:
        raise ModelError(f"{url!r} is not a server URL: give the API base, such as http://127.0.0.1:8080/v1.")
    return url.strip().rstrip("/")


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
            raise status_error(response, f"{url}/models", secret, hint)
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
        reply = StreamedReply(self.count_tokens(messages, tools))
        if should_stop():
            yield reply.final(stopped=True)
            return
        answering = done = stopped = False
        try:
            with self._client.stream("POST", url, json=body, headers=headers) as response:
                answering = True
                if response.status_code >= 400:
                    response.read()
                    raise status_error(response, url, secret)
                for data in sse_data(response.iter_lines()):
                    if should_stop():  # on every line, keep-alives too; leaving the block hangs up
                        stopped = True
                        break
                    if data is None:
                        continue
                    if data.strip() == "[DONE]":
                        done = True
                        break
                    text = reply.take(parse_event(data, url, secret))
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
