"""Servers for the OpenAI-compatible runtime's tests, all on 127.0.0.1: the real ``mlx_lm.server`` (as is, or
with a model slowed down and unable to end its answer, so a stop or a crash lands mid-answer), and a stdlib
fake that replays a scripted stream and records what it was sent.

Run as a script, this module is that slowed ``mlx_lm.server``: ``python openai_servers.py DELAY --model ...``.
"""

from __future__ import annotations

import json
import select
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import psutil

START_TIMEOUT = 90.0  # seconds for a server to load the tiny model and answer, on a busy 2-core machine


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class MLXServer:
    """A running ``mlx_lm.server``; ``url`` is its API base."""

    process: subprocess.Popen
    url: str
    log: Path

    @classmethod
    def start(cls, model_dir: Path, log: Path, delay: float = 0.0) -> MLXServer:
        """Start it and wait until it lists its models. ``delay``: seconds per model step, with the end of
        the answer forbidden, so a long answer lasts ``max_tokens * delay``."""
        port = free_port()
        serve = [__file__, str(delay)] if delay else ["-m", "mlx_lm.server"]
        args = [sys.executable, *serve, "--model", str(model_dir), "--host", "127.0.0.1", "--port", str(port)]
        process = subprocess.Popen(args, stdout=log.open("wb"), stderr=subprocess.STDOUT)
        server = cls(process, f"http://127.0.0.1:{port}/v1", log)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"mlx_lm.server exited with {process.returncode}: {log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{server.url}/models", timeout=1.0, trust_env=False).status_code == 200:
                    return server
            except httpx.HTTPError:
                time.sleep(0.1)
        server.kill()
        raise RuntimeError(f"mlx_lm.server did not answer within {START_TIMEOUT} s: {log.read_text()[-2000:]}")

    def kill(self) -> None:
        """SIGKILL: the server gets no chance to end its answers."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)

    def connections(self) -> list:
        """The server's TCP connections other than its listening socket."""
        return [c for c in psutil.Process(self.process.pid).net_connections(kind="tcp")
                if c.status != psutil.CONN_LISTEN]


@dataclass
class FakeServer:
    """An OpenAI-shaped server that answers ``/models`` and replays ``stream`` (raw SSE pieces, text or bytes,
    written and flushed one by one, sent as ``content_type`` with the Content-Encoding ``encoding``) or
    ``status`` with ``error_body`` (and a Location header when ``location`` is set); ``cut`` hangs up after the
    pieces instead of ending the chunked body. Each request is recorded as (method, path, headers in lower
    case, json body)."""

    stream: list[str | bytes] = field(default_factory=list)
    status: int = 200
    error_body: str = ""
    cut: bool = False
    content_type: str = "text/event-stream"
    encoding: str | None = None
    location: str | None = None
    requests: list[tuple[str, str, dict, dict]] = field(default_factory=list)

    def __post_init__(self) -> None:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _record(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else {}
                fake.requests.append((self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body))

            def _send(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                if fake.location is not None:
                    self.send_header("Location", fake.location)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                self._record()
                if fake.status != 200:
                    return self._send(fake.status, fake.error_body.encode())
                self._send(200, json.dumps({"object": "list", "data": [{"id": "fake-model"}]}).encode())

            def do_POST(self) -> None:
                self._record()
                if fake.status != 200:
                    return self._send(fake.status, fake.error_body.encode())
                self.send_response(200)
                self.send_header("Content-Type", fake.content_type)
                if fake.encoding:
                    self.send_header("Content-Encoding", fake.encoding)
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for piece in fake.stream:
                    data = piece.encode() if isinstance(piece, str) else piece
                    if not data:
                        continue  # an empty chunk would end the body
                    try:
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                        self.wfile.flush()
                    except OSError:  # the client hung up: it refused what came so far
                        return
                if fake.cut:
                    self.connection.shutdown(socket.SHUT_RDWR)
                else:
                    self.wfile.write(b"0\r\n\r\n")
                self.close_connection = True

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.handle_error = lambda request, address: None  # a client that hung up: what tests expect
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


STALL_HEAD = (b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
              b"Connection: close\r\n")
STALL_EVENT = b'data: {"choices": [{"index": 0, "delta": {"content": "Hi"}, "finish_reason": null}]}\n\n'


class StallServer:
    """A raw HTTP server on 127.0.0.1 that lists its models at once, then stalls every chat request in the way
    ``how`` says, for at most ``cap`` seconds:

    - ``silent``: reads the request and sends nothing;
    - ``headers``: sends its response headers one byte every ``every`` seconds (padded so they never end);
    - ``event``: sends its headers and one whole event ("Hi"), then the next event one byte at a time;
    - ``keepalive``: sends its headers, then a keep-alive comment every ``every`` seconds.

    ``hung_up`` is set (and ``hung_up_at`` noted) when the client closes a chat connection.
    """

    def __init__(self, how: str, every: float = 0.05, cap: float = 60.0) -> None:
        self.how, self.every, self.cap = how, every, cap
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}/v1"
        self.hung_up = threading.Event()
        self.hung_up_at = 0.0
        self.requests: list[str] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self.listener.close()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    @staticmethod
    def _read_request(conn: socket.socket) -> str:
        data = b""
        while b"\r\n\r\n" not in data:
            more = conn.recv(65536)
            if not more:
                return ""
            data += more
        head, _, body = data.partition(b"\r\n\r\n")
        length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                       if line.lower().startswith(b"content-length:")), 0)
        while len(body) < length:
            more = conn.recv(65536)
            if not more:
                break
            body += more
        return head.split(b"\r\n", 1)[0].decode()

    def _gone(self, conn: socket.socket) -> bool:
        """Whether the client has closed its end (it sends nothing more after its request)."""
        readable, _, _ = select.select([conn], [], [], 0)
        if readable:
            try:
                return conn.recv(1) == b""
            except OSError:
                return True
        return False

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            line = self._read_request(conn)
            self.requests.append(line)
            if line.startswith("GET"):
                body = json.dumps({"object": "list", "data": [{"id": "stalled"}]}).encode()
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
                             b"Connection: close\r\n\r\n%s" % (len(body), body))
                return
            trickle = {"silent": b"", "headers": STALL_HEAD + b"X-Padding: " + b"a" * 100_000,
                       "event": b'data: {"choices": [{"delta": {"content": "' + b"x" * 100_000,
                       "keepalive": b": keep-alive\n\n" * 100_000}[self.how]
            gone, ends = False, time.monotonic() + self.cap
            step = len(b": keep-alive\n\n") if self.how == "keepalive" else 1
            try:
                if self.how in ("event", "keepalive"):
                    conn.sendall(STALL_HEAD + b"\r\n" + (STALL_EVENT if self.how == "event" else b""))
                at = 0
                while not (gone := self._gone(conn)) and time.monotonic() < ends:
                    if trickle:
                        conn.sendall(trickle[at:at + step])
                        at = (at + step) % len(trickle)
                    time.sleep(self.every)
            except OSError:
                gone = True
            if gone and not self.hung_up.is_set():
                self.hung_up_at = time.monotonic()
                self.hung_up.set()


def _serve_slowly(delay: float) -> None:
    """``mlx_lm.server`` whose model sleeps ``delay`` per step and never picks an end-of-answer token."""
    import mlx_lm.server as server

    real_load = server.load

    class Slow:
        def __init__(self, model: object, eos: list[int]) -> None:
            self.__dict__.update(_model=model, _eos=eos)

        def __getattr__(self, name: str) -> object:
            return getattr(self._model, name)

        def __call__(self, *args: object, **kwargs: object) -> object:
            time.sleep(delay)
            logits = self._model(*args, **kwargs)
            logits[..., self._eos] = -1e9
            return logits

    def load(*args: object, **kwargs: object) -> tuple:
        model, tokenizer, *rest = real_load(*args, **kwargs)
        return (Slow(model, sorted(tokenizer.eos_token_ids)), tokenizer, *rest)

    server.load = load
    server.main()


if __name__ == "__main__":
    seconds = float(sys.argv.pop(1))
    _serve_slowly(seconds)
