"""One request to an OpenAI-compatible server: bounded in time, cut short by a stop, every failure one line.

httpx's timeouts are per socket operation, so a server that trickles a byte at a time, or says nothing
before its headers, never trips them. Here each request runs under an ``http_deadline.Deadline``: one limit for
the whole request, a shorter one for the response's first byte, and a watchdog that polls the answer's stop
and shuts the sockets when it turns true, which wakes whatever read is blocked. Redirects are not followed
(the API key must not go to another host), and a proxy from the environment that cannot be used is named.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit

import httpx

from ..errors import ModelError
from ..http_deadline import Deadline, ProxySettingError, client
from .openai_sse import Event, EventReader, WireError, inflate, setting_hint
from .openai_wire import quote, status_error
from .server_url import is_loopback_url

CONNECT_TIMEOUT = 10.0  # seconds to open a connection
ERROR_BODY_BYTES = 64 * 1024  # what is read of an error's body
HEADERS = {"Accept": "text/event-stream, application/json", "Accept-Encoding": "gzip, deflate"}


@dataclass(frozen=True)
class Limits:
    """How long a request may take and how much it may send: the ``server_*`` settings, or a load's check."""

    whole: float  # seconds for the whole request
    first_byte: float | None = None  # seconds until the response's first byte
    max_event_bytes: int = 4 * 1024 * 1024
    max_answer_chars: int = 2_000_000
    answering: bool = True  # a chat answer (its messages name the settings), or the check at load


def _without_userinfo(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


class Exchange:
    """One request and its response, as a context manager: leaving it closes the response, the client and
    the sockets, and ends the watchdog, whatever state the request is in. ``stopped`` turns true when
    ``should_stop`` cut it short; the methods then return quietly instead of raising."""

    def __init__(self, url: str, secret: str | None, limits: Limits,
                 should_stop: Callable[[], bool] | None = None) -> None:
        self.url, self.secret, self.limits, self.stopped = url, secret, limits, False
        self.deadline = Deadline(limits.whole, first_byte=limits.first_byte, stop=should_stop)
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> Exchange:
        self._stack.enter_context(self.deadline)
        try:
            self.http = self._stack.enter_context(client(
                self.deadline, trust_env=not is_loopback_url(self.url), follow_redirects=False,
                timeout=httpx.Timeout(None, connect=CONNECT_TIMEOUT)))  # no proxy for this machine
        except ProxySettingError as exc:
            self._stack.close()
            raise ModelError(f"Could not reach the server at {self.url}: {exc}") from None
        except BaseException:
            self._stack.close()  # the watchdog ends with it
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def send(self, method: str, headers: dict[str, str], body: dict[str, Any] | None = None,
             hints: dict[int, str] | None = None) -> httpx.Response | None:
        """The response once its headers are in (None if stopped first); a redirect or an error status raises
        its one line (``hints`` adds advice per status)."""
        request = self.http.build_request(method, self.url, headers={**HEADERS, **headers}, json=body)
        try:
            response = self.http.send(request, stream=True)
        except (httpx.HTTPError, OSError, TimeoutError) as exc:
            self._failed(exc, answering=False)
            return None
        self._stack.callback(response.close)
        if 300 <= response.status_code < 400:
            target = _without_userinfo(urljoin(self.url, response.headers.get("location", "")))
            raise ModelError(f"The server at {self.url} redirects to {quote(target, self.secret)}; redirects are "
                             "not followed, so the key never goes elsewhere: register the URL it points to.")
        if response.status_code >= 400:
            data = bytearray()
            try:
                for piece in inflate(response.iter_raw(), response.headers.get("content-encoding", "")):
                    data += piece
                    if len(data) >= ERROR_BODY_BYTES:
                        break
            except WireError:
                pass  # a body that does not inflate: the status says enough
            except (httpx.HTTPError, OSError, TimeoutError):
                if self.deadline.expired() == "cancelled":
                    self.stopped = True
                    return None  # else a body cut short: the status says enough
            raise status_error(response.status_code, response.reason_phrase, bytes(data[:ERROR_BODY_BYTES]),
                               self.url, self.secret, (hints or {}).get(response.status_code, ""))
        return response

    def events(self, response: httpx.Response) -> Iterator[Event]:
        """The answer's events, read with the caps on a line and an event; a body that is not an event
        stream (HTML, one JSON document, nothing) says what it is."""
        content_type = response.headers.get("content-type", "")
        reader = EventReader(response.iter_raw(), response.headers.get("content-encoding", ""),
                             self.limits.max_event_bytes)
        try:
            if "html" in content_type.lower() or "json" in content_type.lower():
                raise WireError(*reader.describe(response.status_code, content_type))
            yield from reader.events()
            if reader.size == 0:
                raise WireError(*reader.describe(response.status_code, content_type))
        except WireError as exc:
            shown = f": {quote(exc.shown, self.secret)}" if exc.shown else ""
            raise ModelError(f"The server at {self.url} {exc.what}{shown}") from None
        except (httpx.HTTPError, OSError, TimeoutError) as exc:
            self._failed(exc, answering=True)

    def _failed(self, exc: BaseException, answering: bool) -> None:
        """Raise the one line for a transport failure; return (``stopped`` set) when it was the stop."""
        why = self.deadline.expired()
        if why == "cancelled":
            self.stopped = True
            return
        raise (self._timeout_error(why) if why else _transport_error(exc, self.url, answering)) from None

    def _timeout_error(self, why: str) -> ModelError:
        url, limits = self.url, self.limits
        if not limits.answering:
            return ModelError(f"The server at {url} did not answer within {limits.whole:g} s: it may be "
                              "overloaded or stuck; check it and try again.")
        if why == "first_byte":
            return ModelError(f"The server at {url} sent nothing for {limits.first_byte:g} s, the longest wait for "
                              f"its first byte ({setting_hint('server_first_byte_timeout')}).")
        return ModelError(f"The server at {url} did not finish within {limits.whole:g} s, the longest a server "
                          f"answer may take ({setting_hint('server_answer_timeout')}); what it wrote so far is kept.")


def _transport_error(exc: BaseException, url: str, answering: bool) -> ModelError:
    detail = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, httpx.ConnectTimeout):
        return ModelError(f"Could not connect to the server at {url} within {CONNECT_TIMEOUT:g} s: check that "
                          "it runs and that the URL is right.")
    if isinstance(exc, httpx.ConnectError):
        return ModelError(f"The server at {url} does not answer ({detail}): start it, or check the URL.")
    if answering:
        return ModelError(f"The server at {url} closed the connection in the middle of the answer ({detail}): "
                          "what it wrote so far is kept; check the server and ask again.")
    return ModelError(f"The server at {url} closed the connection without answering ({detail}).")
