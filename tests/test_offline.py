"""Offline mode: network tools and plugin downloads are refused before any socket is opened."""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from scripted import says, scripted

import ancia_jupyter as ancia
from ancia_jupyter import events as ev
from ancia_jupyter.app import get_app
from ancia_jupyter.config import how_to_go_online
from ancia_jupyter.errors import OfflineError, ToolError


@pytest.fixture
def listener():
    """A loopback server that answers anything and records every request it gets."""
    requests: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            requests.append(self.path)
            body = json.dumps({"plugins": []}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True).start()
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.requests = requests
    yield httpd
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def no_sockets(monkeypatch):
    """Record (and refuse) every outgoing connection attempt made while it is active."""
    attempts: list = []
    real_connect = socket.socket.connect

    def connect(self, address):
        attempts.append(address)
        raise OSError("a connection was attempted in offline mode")

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect)
    yield attempts
    monkeypatch.setattr(socket.socket, "connect", real_connect)


def check_everything_refused(listener, no_sockets):
    with pytest.raises(ToolError, match="blocked: offline mode"):
        ancia.tools.call("web.visit.website", url=f"{listener.url}/page")
    with pytest.raises(ToolError, match="blocked: offline mode"):
        ancia.tools.call("web.search.duckduckgo", query="otters")
    with pytest.raises(OfflineError, match="Offline mode is on.*plugin registry") as refused:
        ancia.plugins.registry()
    assert how_to_go_online() in str(refused.value)  # advice that works: not offline=False under ANCIA_OFFLINE
    with pytest.raises(OfflineError, match="Offline mode is on"):
        ancia.plugins.install("anything")
    with pytest.raises(OfflineError, match="Offline mode is on"):
        ancia.plugins.update()
    assert ancia.tools.call("system.time")  # tools that stay on the machine still work
    assert listener.requests == [] and no_sockets == []


def test_the_setting_refuses_network_tools_and_plugin_downloads(listener, no_sockets):
    ancia.settings.update(allow_private_network=True)
    ancia.plugins.set_registry_url(f"{listener.url}/registry.json")
    ancia.settings.update(offline=True)
    check_everything_refused(listener, no_sockets)


def test_the_environment_variable_does_the_same(listener, no_sockets, monkeypatch):
    monkeypatch.setenv("ANCIA_OFFLINE", "1")
    monkeypatch.setenv("ANCIA_PLUGIN_REGISTRY_URL", f"{listener.url}/registry.json")
    ancia.settings.update(allow_private_network=True)
    check_everything_refused(listener, no_sockets)
    with pytest.raises(OfflineError) as refused:
        ancia.plugins.registry()
    assert "ANCIA_OFFLINE" in str(refused.value) and "offline=False" not in str(refused.value)


def test_online_the_same_calls_do_reach_the_server(listener):
    """The control: with offline mode off, the listener does get the requests (so the test above can fail)."""
    ancia.settings.update(allow_private_network=True)
    ancia.plugins.set_registry_url(f"{listener.url}/registry.json")
    assert ancia.plugins.registry() == []
    assert "URL: " in ancia.tools.call("web.visit.website", url=f"{listener.url}/page", approve=lambda call: True)
    assert listener.requests == ["/registry.json", "/page"]


def test_a_model_asking_for_a_network_tool_offline_gets_an_error(tiny, listener, no_sockets):
    ancia.settings.update(offline=True, allow_private_network=True)
    call = '<tool_call>{"name": "web_visit_website", "arguments": {"url": "URL/x"}}</tool_call>'
    ancia.models.load()
    with scripted(says(call.replace("URL", listener.url), "I cannot.")):
        events = list(ancia.chat("Read that page", stream=True, tools=["web.visit.website"], max_tokens=120))
    result = next(e for e in events if isinstance(e, ev.ToolResult))
    assert (result.output, result.error) == (None, "blocked: offline mode")
    tool_message = next(m for m in get_app().store.history(events[-1].chat_id) if m["role"] == "tool")
    assert tool_message["content"] == "error: blocked: offline mode"
    assert listener.requests == [] and no_sockets == []


def test_every_offline_message_takes_its_advice_from_one_place():
    """`config.how_to_go_online` knows when `offline=False` would be refused (ANCIA_OFFLINE); no other
    module may give that advice itself."""
    package = Path(ancia.__file__).parent
    hard_coded = [str(path.relative_to(package)) for path in package.rglob("*.py")
                  if "offline=False" in path.read_text() and path.name != "config.py"]
    assert hard_coded == []
