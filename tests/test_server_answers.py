"""A model on a server is network I/O: it never takes the model worker, stops within a second whatever the
server does, and offline mode reaches it at every question, loaded or not."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from scripted import says, scripted

import ancia_jupyter as ancia
import ancia_jupyter.runtimes.openai_compat as openai_compat


class SilentServer:
    """Lists its model, then takes every chat request and never answers it (until closed)."""

    def __init__(self) -> None:
        closing = self.closing = threading.Event()
        self.posts: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                body = b'{"object": "list", "data": [{"id": "silent"}]}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                server.posts.append(self.path)
                closing.wait(120)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.closing.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def silent():
    server = SilentServer()
    yield server
    server.close()


def test_a_local_question_answers_while_a_server_model_waits_on_a_silent_server(tiny, silent):
    ancia.models.register("silent", silent.url, remote_model="silent")
    ancia.models.load("tiny")
    waiting = [ancia.chat("Are you there?", model="silent", stream=True, tools=False) for _ in range(3)]
    time.sleep(0.5)  # the three requests are sent and unanswered
    started = time.monotonic()
    with scripted(says("Here.")):
        local = ancia.chat("And you?", model="tiny", tools=False)
    assert local.text == "Here." and time.monotonic() - started < 5.0
    assert not any(a.finished for a in waiting)
    started = time.monotonic()
    ancia.stop()
    for answer in waiting:
        assert answer.response().status == "stopped"
    assert time.monotonic() - started < 1.5


def test_offline_mode_reaches_a_server_model_that_is_already_loaded(tiny, silent, monkeypatch):
    ancia.models.register("elsewhere", silent.url, remote_model="silent")
    ancia.models.load("elsewhere")  # connected while online
    monkeypatch.setattr(openai_compat, "is_loopback_url", lambda url: False)  # as if on another machine
    ancia.settings.update(offline=True)
    response = ancia.chat("Still there?", model="elsewhere", tools=False)
    assert response.status == "error" and "offline" in (response.error or "").lower()
    assert not any(path == "/v1/chat/completions" for path in silent.posts)
