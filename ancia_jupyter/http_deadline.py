"""An httpx client whose every socket operation shares one deadline, and which can be cancelled.

httpx's timeouts are per operation, so a server that dribbles a byte at a time never trips them and a
download can last for ever. Here a ``Deadline`` covers a whole exchange (connect, TLS, headers, body,
redirects): each socket operation gets at most the time left, and a watchdog shuts the open sockets when
time is up, when ``cancel`` is set or when ``stop()`` turns true, which wakes a blocked read at once and tells
the server the client has gone. That matters in a tool call, whose thread cannot be killed, and in a server
model's answer, which a person stops while the server sends nothing. A second, shorter limit can bound the
wait for the first byte of the response.

Every client the package makes goes through ``client``, which also checks the proxy settings it would take
from the environment, so a bad ``HTTPS_PROXY`` is one line naming the variable instead of httpx's raw
``ValueError`` or ``ImportError``.

Name lookup (``getaddrinfo``) cannot be interrupted and is not bounded; a caller that connects to an
address it has already resolved does none.

    with Deadline(10.0, cancel) as deadline, client(deadline) as http:
        response = http.get(url)            # httpx.TimeoutException once the 10 s are spent
"""

from __future__ import annotations

import contextlib
import importlib
import os
import selectors
import socket
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Literal, TypeVar

if TYPE_CHECKING:
    import ssl

    import httpx

_Socket = TypeVar("_Socket", bound=socket.socket)  # a plain socket, or the SSLSocket wrapping one
Expiry = Literal["cancelled", "first_byte", "whole"]
PROXY_SCHEMES = ("http", "https", "socks5", "socks5h")  # what httpx can use


class ProxySettingError(ValueError):
    """A proxy from the environment that httpx cannot use; the message names the variable and the fix."""


class Deadline:
    """One deadline for an exchange, and the sockets to shut when it passes or ``cancel`` is set.

    ``first_byte``: seconds (from the start) within which the response's first byte must arrive, for a server
    that may take long to answer but must say something sooner. ``stop``: polled by the watchdog every 50 ms;
    when it turns true, ``cancel`` is set. Use it as a context manager: entering starts the watchdog, leaving
    closes whatever is still open and ends the watchdog.
    """

    def __init__(self, timeout: float, cancel: threading.Event | None = None, *, first_byte: float | None = None,
                 stop: Callable[[], bool] | None = None) -> None:
        started = time.monotonic()
        self.timeout = timeout
        self.at = started + timeout  # time.monotonic() at which the exchange is given up
        self.first_byte_at = None if first_byte is None else started + first_byte
        self.cancel = cancel or threading.Event()
        self.stop = stop
        self.over = threading.Event()  # the deadline passed or the exchange was cancelled
        self.received = False  # a byte of the response came: the first-byte limit no longer applies
        self._expired: Expiry | None = None
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()

    def __enter__(self) -> Deadline:
        threading.Thread(target=self._watch, name="ancia-fetch-watchdog", daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        for sock in list(self._sockets):
            self._close(sock)

    def _limit(self) -> float:
        if self.received or self.first_byte_at is None:
            return self.at
        return min(self.at, self.first_byte_at)

    def _stopped(self) -> bool:
        if self.stop is not None and not self.cancel.is_set():
            try:
                if self.stop():
                    self.cancel.set()
            except Exception:  # a broken stop check must not kill the watchdog: the deadline still holds
                self.stop = None
        return self.cancel.is_set()

    def _watch(self) -> None:
        while not self._done.wait(max(0.0, min(0.05, self._limit() - time.monotonic()))):
            if self._stopped() or self.expired():
                with self._lock:
                    self.over.set()
                    for sock in self._sockets:
                        with contextlib.suppress(OSError):
                            socket.socket.shutdown(sock, socket.SHUT_RDWR)  # not SSLSocket's: no TLS state
                return

    def expired(self) -> Expiry | None:
        """Why the exchange was given up: cancelled, no first byte in time, or the whole time spent; None while
        it may go on. The first reason found is kept."""
        if self._expired is None:
            now = time.monotonic()
            if self.cancel.is_set():
                self._expired = "cancelled"
            elif now >= self.at:
                self._expired = "whole"
            elif not self.received and self.first_byte_at is not None and now >= self.first_byte_at:
                self._expired = "first_byte"
        return self._expired

    def left(self, timeout: float | None = None) -> float:
        """Seconds the next operation may take (at most ``timeout``); ``TimeoutError`` once time is up.

        Call it between chunks of a body too, so a loop that keeps receiving stops on time.
        """
        remaining = self._limit() - time.monotonic()
        if self.over.is_set() or self.expired() or remaining <= 0:
            self.expired()
            raise TimeoutError("the fetch ran out of time")
        return remaining if timeout is None else min(timeout, remaining)

    def ran_out(self, exc: BaseException) -> bool:
        """Whether ``exc``, raised by the client or by ``left``, means time ran out (or was cancelled)."""
        import httpx

        return isinstance(exc, (httpx.TimeoutException, TimeoutError)) or self.over.is_set()

    def _track(self, sock: _Socket) -> _Socket:
        with self._lock:
            self._sockets.add(sock)
        return sock

    def _close(self, sock: socket.socket) -> None:
        with self._lock:  # never shut a socket whose file descriptor was closed (and maybe reused)
            self._sockets.discard(sock)
            sock.close()

    @contextlib.contextmanager
    def _io(self, kind: str) -> Iterator[None]:
        """Socket errors as httpcore's, so httpx reports them; anything after time is up is a timeout."""
        import httpcore

        try:
            yield
        except OSError as exc:
            timed_out = isinstance(exc, TimeoutError) or self.over.is_set()
            raise getattr(httpcore, f"{kind}{'Timeout' if timed_out else 'Error'}")(str(exc)) from exc


class _Stream:
    """An httpcore network stream over a socket whose every operation obeys the deadline."""

    def __init__(self, sock: socket.socket, deadline: Deadline) -> None:
        self.sock, self.deadline = sock, deadline

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        with self.deadline._io("Read"):
            self.sock.settimeout(self.deadline.left(timeout))
            data = self.sock.recv(max_bytes)
            if not data and self.deadline.over.is_set():  # the watchdog shut it: not the body's end
                raise TimeoutError("the fetch ran out of time")
            self.deadline.received = self.deadline.received or bool(data)
            return data

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        with self.deadline._io("Write"):
            while buffer:
                self.sock.settimeout(self.deadline.left(timeout))
                buffer = buffer[self.sock.send(buffer):]

    def close(self) -> None:
        self.deadline._close(self.sock)

    def start_tls(self, ssl_context: ssl.SSLContext, server_hostname: str | None = None,
                  timeout: float | None = None) -> _Stream:
        tls = None
        with self.deadline._io("Connect"):
            try:
                tls = self.deadline._track(ssl_context.wrap_socket(
                    self.sock, server_hostname=server_hostname, do_handshake_on_connect=False))
                tls.settimeout(self.deadline.left(timeout))
                tls.do_handshake()  # after _track: the watchdog can cut a handshake that dribbles too
            except BaseException:
                self.close()
                if tls is not None:
                    self.deadline._close(tls)
                raise
        self.deadline._close(self.sock)  # detached by the wrap: only the bookkeeping goes
        return _Stream(tls, self.deadline)

    def get_extra_info(self, info: str) -> Any:
        if info in ("socket", "ssl_object"):  # an SSLSocket answers what httpcore asks its ssl_object
            return self.sock if info == "socket" or hasattr(self.sock, "selected_alpn_protocol") else None
        if info in ("client_addr", "server_addr"):
            return self.sock.getsockname() if info == "client_addr" else self.sock.getpeername()
        if info == "is_readable":  # an idle kept-alive connection that reads as ready was closed by the server
            with selectors.DefaultSelector() as selector:
                selector.register(self.sock, selectors.EVENT_READ)
                return bool(selector.select(0))
        return None


class _Backend:
    """httpcore's network backend: TCP connections that obey the deadline."""

    def __init__(self, deadline: Deadline) -> None:
        self.deadline = deadline

    def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                    socket_options: Any = None) -> _Stream:
        with self.deadline._io("Connect"):
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)  # an IP literal: no lookup
            for index, (family, kind, proto, _, address) in enumerate(infos):
                sock = self.deadline._track(socket.socket(family, kind, proto))
                try:
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    sock.settimeout(self.deadline.left(timeout))
                    sock.connect(address)
                except BaseException as exc:
                    self.deadline._close(sock)
                    if index + 1 == len(infos) or not isinstance(exc, OSError) or self.deadline.over.is_set():
                        raise
                    continue  # the name's next address, as socket.create_connection does
                return _Stream(sock, self.deadline)
        raise AssertionError("getaddrinfo returns at least one address or raises")

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


def proxy_problem() -> str | None:
    """What is wrong with the proxies httpx would take from the environment (``urllib``'s reading of
    ``HTTP_PROXY``, ``HTTPS_PROXY``, ``ALL_PROXY`` and ``NO_PROXY``), in one line naming the variable; None when
    they are usable. The proxy's URL is never shown: it may hold a password."""
    import httpx

    proxies = urllib.request.getproxies()
    if "*" in (host.strip() for host in proxies.get("no", "").split(",")):
        return None  # httpx uses no proxy at all
    for key, value in proxies.items():
        if key not in ("http", "https", "all") or not value:
            continue
        names = [n for n, v in os.environ.items() if n.lower() == f"{key}_proxy" and v == value]
        name = min(names, key=lambda n: n != n.lower(), default="the system's proxy settings")  # lowercase wins
        scheme = value.split("://", 1)[0].lower() if "://" in value else "http"
        if scheme not in PROXY_SCHEMES:
            return (f"The proxy in {name} uses the scheme {scheme[:20]!r}, which cannot be used (only "
                    f"{', '.join(PROXY_SCHEMES)}): fix {name} or unset it.")
        if scheme.startswith("socks") and not _has_socksio():
            return (f"The proxy in {name} is a SOCKS proxy, which needs the socksio package: install it with "
                    f"`pip install \"httpx[socks]\"`, or unset {name}.")
        try:
            httpx.URL(value if "://" in value else f"http://{value}")
        except Exception:  # httpx.InvalidURL, or a ValueError from a bad port
            return f"The proxy in {name} is not a valid URL: fix {name} or unset it."
    return None


def _has_socksio() -> bool:
    try:
        importlib.import_module("socksio")  # what httpx imports for a SOCKS proxy
    except ImportError:
        return False
    return True


def client(deadline: Deadline, **options: Any) -> httpx.Client:
    """An ``httpx.Client`` (``options`` as httpx takes them) whose connections, proxied ones included,
    all obey ``deadline``; its per-operation timeout defaults to the deadline's whole length. With
    ``trust_env`` (the default) a proxy from the environment that cannot be used raises
    ``ProxySettingError``, before anything is sent."""
    import httpx

    options.setdefault("timeout", httpx.Timeout(deadline.timeout))
    if options.get("trust_env", True):
        problem = proxy_problem()
        if problem:
            raise ProxySettingError(problem)
    try:
        http = httpx.Client(**options)
    except (ImportError, ValueError) as exc:  # what proxy_problem did not foresee; still one line
        if not options.get("trust_env", True):
            raise
        raise ProxySettingError(f"The proxy settings in the environment cannot be used ({type(exc).__name__}): "
                                "check HTTP_PROXY, HTTPS_PROXY and ALL_PROXY, or unset them.") from None
    backend = _Backend(deadline)
    # httpx has no argument for httpcore's network backend: each of its connection pools gets ours
    for transport in (http._transport, *http._mounts.values()):
        if transport is None:
            continue
        pool: Any = getattr(transport, "_pool", None)
        if not hasattr(pool, "_network_backend"):
            http.close()
            raise TypeError(f"{type(transport).__name__} is not an httpx.HTTPTransport: "
                            "its connections could not be bounded by the deadline")
        pool._network_backend = backend
    return http
