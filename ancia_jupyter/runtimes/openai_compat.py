"""Models behind a server that speaks OpenAI's chat-completions API (mlx_lm.server, llama.cpp, vLLM, a cloud).

The server renders the chat template and counts tokens, so this runtime is not ``local``: the engine hands it
the fitted messages and fits the context window with the estimates here. Answers stream as server-sent
events (read with bounded memory by `openai_sse`, checked against the API's shape by `openai_wire`), each
request bounded in time and cut short by a stop (`openai_http`): a stop closes the connection, which is how
such servers learn to stop generating. Every failure is one line naming the URL, because the user has to go
and look at that server. An API key is read from the environment at each request and never kept, so it
cannot end up in a log, a traceback or the store; a URL holding a password is refused for the same reason.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from .. import config
from ..errors import ModelError, OfflineError
from .base import Chunk, PromptCache, Runtime
from .openai_http import Exchange, Limits
from .openai_sse import setting_hint
from .openai_wire import CHARS_PER_TOKEN, Malformed, StreamedReply, parse_event, quote, to_openai_messages
from .server_url import base_url, credentials_error, is_loopback_url

LOAD_TIMEOUT = 5.0  # the check at load time: a server that is up lists its models at once
MESSAGE_TOKENS = 4  # role and separators, per message
IMAGE_TOKENS = 512  # what an image costs a typical vision model
STRICT_HOSTS = frozenset({"api.openai.com"})  # refuse fields outside OpenAI's own, such as top_k
SETTINGS = ("offline", "server_first_byte_timeout", "server_answer_timeout", "server_max_event_bytes",
            "server_max_answer_chars")


@dataclass(frozen=True)
class Endpoint:
    """Where a model is served: the API base (often ending in /v1), the model name the server expects, and
    the name of the environment variable that holds the API key, for a server that wants one."""

    url: str
    model: str
    api_key_env: str | None = None


class OpenAIRuntime(Runtime):
    name = "openai"
    local = False

    def __init__(self) -> None:
        self.endpoint: Endpoint | None = None
        self.settings: dict[str, Any] = {}
        self.configure(config.resolve({}))

    @property
    def supports_tools(self) -> bool:
        return True

    def configure(self, settings: Mapping[str, Any]) -> None:
        """Take offline mode and the ``server_*`` limits; the next ``stream`` uses them."""
        defaults = config.resolve({})
        self.settings = {name: settings.get(name, defaults[name]) for name in SETTINGS}

    def load(self, endpoint: Endpoint) -> None:  # type: ignore[override]  # an endpoint, not a folder
        """Keep the endpoint once its server answers, so a wrong URL or key shows at load, not mid-chat."""
        try:
            url = base_url(endpoint.url)
        except ValueError as exc:
            raise ModelError(str(exc)) from None
        endpoint = Endpoint(url, endpoint.model, endpoint.api_key_env)
        headers, secret = self._headers(endpoint)
        hints = {404: ". Is the URL the API base (often ending in /v1)?", 401: ". Check the API key.",
                 403: ". Check the API key."}
        with Exchange(f"{url}/models", secret, Limits(LOAD_TIMEOUT, answering=False)) as exchange:
            response = exchange.send("GET", headers, hints=hints)
            if response is not None and "html" in response.headers.get("content-type", "").lower():
                raise ModelError(f"The server at {url}/models answered with an HTML page, not its list of models: "
                                 "is the URL the API base (often ending in /v1)?")
        self.endpoint = endpoint

    def unload(self) -> None:
        self.endpoint = None

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

    def _limits(self) -> Limits:
        s = self.settings
        return Limits(float(s["server_answer_timeout"]), float(s["server_first_byte_timeout"]),
                      int(s["server_max_event_bytes"]), int(s["server_max_answer_chars"]))

    def stream(self, prompt: list[int], params: dict[str, Any], *, cache: PromptCache | None = None,
               tools: list[dict] | None = None, images: list[Any] | None = None,
               should_stop: Callable[[], bool] = lambda: False,
               messages: list[dict] | None = None) -> Iterator[Chunk]:
        """The answer's chunks, then a last one with the usage. ``should_stop`` is polled every 50 ms while
        the server is silent or trickling, and the connection is closed within a second of it turning true;
        every failure is one ``ModelError`` line, after which the text already given stays given."""
        if self.endpoint is None:
            raise ModelError("No server is loaded: load an endpoint first.")
        endpoint, messages, limits = self.endpoint, messages or [], self._limits()
        url = f"{endpoint.url}/chat/completions"
        if self.settings["offline"] and not is_loopback_url(url):
            raise OfflineError(f"The server at {endpoint.url} is not on this machine and offline mode is on, so "
                               f"nothing was sent. {config.how_to_go_online()}, or use a server on this machine "
                               "(localhost).")
        headers, secret = self._headers(endpoint)
        body = self._body(endpoint, messages, params, tools, images)
        reply = StreamedReply(self.count_tokens(messages, tools))
        if should_stop():
            yield reply.final(stopped=True)
            return
        done = stopped = False
        with Exchange(url, secret, limits, should_stop) as exchange:
            response = exchange.send("POST", headers, body)
            for event in exchange.events(response) if response is not None else ():
                if should_stop():  # on every event, keep-alives too; leaving the block hangs up
                    stopped = True
                    break
                if event.data is None:
                    continue
                if event.data.strip() == "[DONE]":
                    done = True
                    break
                text = self._take(reply, event.data, event.complete, url, secret)
                if reply.size > limits.max_answer_chars:
                    raise ModelError(f"The server at {url} sent more than {limits.max_answer_chars} characters in one "
                                     f"answer ({setting_hint('server_max_answer_chars')}); what it wrote so far is "
                                     "kept.")
                if text:
                    yield Chunk(text=text)
                    if should_stop():
                        stopped = True
                        break
            stopped = stopped or exchange.stopped
        if not (stopped or done or reply.finish):
            raise ModelError(f"The server at {url} closed the connection in the middle of the answer: what it "
                             "wrote so far is kept; check the server and ask again.")
        yield reply.final(stopped)

    @staticmethod
    def _take(reply: StreamedReply, data: str, complete: bool, url: str, secret: str | None) -> str:
        event = parse_event(data, complete, url, secret)
        try:
            return reply.take(event)
        except Malformed as exc:
            raise ModelError(f"The server at {url} sent an event of the wrong shape ({exc}): "
                             f"{quote(data, secret, 200)}") from None


__all__ = ["Endpoint", "OpenAIRuntime", "credentials_error", "is_loopback_url", "to_openai_messages"]
