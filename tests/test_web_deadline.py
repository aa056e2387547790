"""``web.visit.website`` has one deadline for the whole fetch, and stops for real when its time is up.

The servers here answer one byte at a time, which never trips a per-read timeout: the fetch must still give
up on time, and the server must see the connection closed (the fetching thread really stopped).
"""

from __future__ import annotations

import select
import socket
import threading
import time

import pytest

import ancia_jupyter as ancia
from ancia_jupyter.errors import ToolError
from ancia_jupyter.tools import web_visit

SLOW_HEADERS = (b"", b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nX-Padding: " + b"a" * 500)
SLOW_BODY = (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5000\r\n\r\n", b"x" * 5000)

@pytest.fixture(autouse=True)
def trusted():
    """These tests are about what the tool does once it runs: it is trusted, so no call waits for a yes
    (tests/test_tools_privacy.py is about the asking)."""
    ancia.tools.trust("web.visit.website")



class Dribbler:
    """A raw HTTP server on 127.0.0.1: sends ``first`` after ``pause`` seconds, then ``rest`` one byte
    every ``every`` seconds (for at most ``cap`` seconds), and notes when the client hangs up."""

    def __init__(self, first: bytes, rest: bytes, pause: float = 0.0, every: float = 0.2, cap: float = 20.0):
        self.first, self.rest, self.pause, self.every, self.cap = first, rest, pause, every, cap
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(30)
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}/page"
        self.hung_up_at: float | None = None
        self.done = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        try:
            conn, _ = self.listener.accept()
        except OSError:
            return
        with conn:
            request = b""
            while b"\r\n\r\n" not in request:
                chunk = conn.recv(4096)
                if not chunk:
                    break
                request += chunk
            time.sleep(self.pause)
            started = time.monotonic()
            try:
                conn.sendall(self.first)
                for byte in self.rest:
                    if time.monotonic() - started > self.cap:
                        break
                    conn.sendall(bytes([byte]))
                    if select.select([conn], [], [], self.every)[0] and not conn.recv(1):
                        self.hung_up_at = time.monotonic()  # the client closed its end
                        break
            except OSError:
                self.hung_up_at = time.monotonic()
        self.done.set()

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def dribbler():
    servers: list[Dribbler] = []

    def make(first: bytes, rest: bytes, pause: float = 0.0) -> Dribbler:
        servers.append(Dribbler(first, rest, pause))
        return servers[-1]

    yield make
    for server in servers:
        server.close()


def gone(thread_name: str, within: float = 2.0) -> bool:
    """Whether every thread of that name has finished (waiting up to ``within`` seconds)."""
    deadline = time.monotonic() + within
    while any(t.name == thread_name and t.is_alive() for t in threading.enumerate()):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


@pytest.mark.parametrize("first, rest", [SLOW_HEADERS, SLOW_BODY], ids=["slow headers", "slow body"])
def test_a_server_that_answers_a_byte_at_a_time_is_cut_off_at_the_deadline(dribbler, monkeypatch, first, rest):
    ancia.settings.update(allow_private_network=True)
    monkeypatch.setattr(web_visit, "TIMEOUT", 1.5)
    server = dribbler(first, rest)
    started = time.monotonic()
    with pytest.raises(ToolError, match=r"timed out after 1\.5 s fetching http://127\.0\.0\.1"):
        ancia.tools.call("web.visit.website", url=server.url)
    assert 1.4 <= time.monotonic() - started < 2.5
    assert server.done.wait(2) and server.hung_up_at is not None
    assert server.hung_up_at - started < 2.5
    assert gone("ancia-fetch-watchdog")


def test_the_deadline_covers_every_redirect_hop(dribbler):
    """A redirect does not start a new budget: the time the first hop took is gone for the second."""
    slow = dribbler(*SLOW_HEADERS)
    redirect = dribbler(b"HTTP/1.1 302 Found\r\nLocation: " + slow.url.encode() + b"\r\nContent-Length: 0\r\n\r\n",
                        b"", pause=0.6)
    started = time.monotonic()
    with pytest.raises(ToolError, match=r"timed out after 1 s fetching " + slow.url):
        web_visit.fetch(redirect.url, allow_private=True, timeout=1)
    assert time.monotonic() - started < 1.4  # a budget per hop would have taken 1.6 s
    assert slow.done.wait(2) and slow.hung_up_at - started < 1.5


def test_cancelling_a_fetch_closes_its_connection_at_once(dribbler):
    server = dribbler(*SLOW_HEADERS)
    cancel = threading.Event()
    threading.Timer(0.5, cancel.set).start()
    started = time.monotonic()
    with pytest.raises(ToolError, match="the tool call was cancelled"):
        web_visit.fetch(server.url, allow_private=True, timeout=30, cancel=cancel)
    assert time.monotonic() - started < 1.5
    assert server.done.wait(2) and server.hung_up_at - started < 1.5


def test_the_fetch_ends_when_the_tool_call_times_out(dribbler):
    ancia.settings.update(tool_timeout=1, allow_private_network=True)
    server = dribbler(*SLOW_HEADERS)
    started = time.monotonic()
    with pytest.raises(ToolError, match=r"timed out after 1 s"):
        ancia.tools.call("web.visit.website", url=server.url)
    assert time.monotonic() - started < 2
    assert server.done.wait(3) and server.hung_up_at - started < 2.5
    assert gone("ancia-tool-web.visit.website")


def test_a_tool_that_fetches_is_stopped_by_its_cancelled_context(dribbler):
    """A tool's own fetch with a long timeout still stops when the call times out: ``run_tool`` cancels
    the context of a call it gives up on."""
    ancia.settings.update(tool_timeout=1)
    server = dribbler(*SLOW_HEADERS)

    @ancia.tool
    def slow_fetch(url: str) -> str:
        """Fetch a page, patiently."""
        context = ancia.tools.current()
        return web_visit.fetch(url, allow_private=True, timeout=60, cancel=context.cancelled).url

    try:
        started = time.monotonic()
        with pytest.raises(ToolError, match=r"timed out after 1 s \(the setting tool_timeout\)"):
            ancia.tools.call("slow_fetch", url=server.url)
        assert server.done.wait(3) and server.hung_up_at - started < 2
    finally:
        ancia.tools.unregister("slow_fetch")
