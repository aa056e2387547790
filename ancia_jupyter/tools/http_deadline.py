"""An httpx client whose every socket operation shares one deadline, and which can be cancelled.

httpx's timeouts are per operation, so a server that dribbles a byte at a time never trips them and a
download can last for ever. Here a ``Deadline`` covers a whole exchange (connect, TLS, headers, body,
redirects): each socket operation gets at most the time left, and a watchdog shuts the open sockets when
time is up or ``cancel`` is set, which wakes a blocked read at once and tells the server the client has
gone. That matters in a tool call, whose thread cannot be killed.

Name lookup (``getaddrinfo``) cannot be interrupted and is not bounded; a caller that connects to an
address it has already resolved does none.

    with Deadline(10.0, cancel) as deadline, client(deadline) as http:
        response = http.get(url)            # httpx.TimeoutException once the 10 s are spent
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    import ssl

    import httpx

_Socket = TypeVar("_Socket", bound=socket.socket)  # a plain socket, or the SSLSocket wrapping one


class Deadline:
    """One deadline for an exchange, and the sockets to shut when it passes or ``cancel`` is set.

    Use it as a context manager: entering starts the watchdog, leaving closes whatever is still open.
    """

    def __init__(self, timeout: float, cancel: threading.Event | None = None) -> None:
        self.timeout = timeout
        self.at = time.monotonic() + timeout  # time.monotonic() at which the exchange is given up
        self.cancel = cancel or threading.Event()
        self.over = threading.Event()  # the deadline passed or the exchange was cancelled
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

    def _watch(self) -> None:
        while not self._done.wait(max(0.0, min(0.05, self.at - time.monotonic()))):
            if self.cancel.is_set() or time.monotonic() >= self.at:
                with self._lock:
                    self.over.set()
                    for sock in self._sockets:
                        with contextlib.suppress(OSError):
                            socket.socket.shutdown(sock, socket.SHUT_RDWR)  # not SSLSocket's: no TLS state
                return

    def left(self, timeout: float | None = None) -> float:
        """Seconds the next operation may take (at most ``timeout``); ``TimeoutError`` once time is up.

        Call it between chunks of a body too, so a loop that keeps receiving stops on time.
        """
        remaining = self.at - time.monotonic()
        if self.over.is_set() or self.cancel.is_set() or remaining <= 0:
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


def client(deadline: Deadline, **options: Any) -> httpx.Client:
    """An ``httpx.Client`` (``options`` as httpx takes them) whose connections, proxied ones included,
    all obey ``deadline``; its per-operation timeout defaults to the deadline's whole length."""
    import httpx

    options.setdefault("timeout", httpx.Timeout(deadline.timeout))
    http = httpx.Client(**options)
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
