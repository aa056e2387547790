"""A proxy from the environment that cannot be used is one line naming the variable and the fix, wherever
the package goes online with the environment's settings: the plugin registry, loading a server model and a
chat with one. Nothing is sent, and the proxy's URL (which may hold a password) is never shown."""

from __future__ import annotations

import socket
import sys

import pytest
from openai_servers import FakeServer

import ancia_jupyter as ancia
from ancia_jupyter.errors import ModelError, PluginError
from ancia_jupyter.http_deadline import proxy_problem
from ancia_jupyter.runtimes.openai_compat import Endpoint, OpenAIRuntime

ELSEWHERE = "http://192.0.2.1:8000"  # TEST-NET: never reached, nothing may even try
PROXIES = {
    "a SOCKS proxy without socksio": ("ALL_PROXY", "socks5://bob:hunter2@127.0.0.1:1080", 'pip install "httpx[socks]"'),
    "a scheme no proxy has": ("HTTPS_PROXY", "ftp://bob:hunter2@proxy.invalid:21", "fix HTTPS_PROXY or unset it"),
    "lower case, a scheme no proxy has": ("http_proxy", "gopher://bob:hunter2@proxy.invalid", "fix http_proxy"),
    "not a URL": ("HTTP_PROXY", "http://bob:hunter2@proxy.invalid:port", "not a valid URL"),
}


@pytest.fixture
def no_sockets(monkeypatch):
    attempts: list = []

    def connect(self, address):
        attempts.append(address)
        raise OSError("a connection was attempted")

    monkeypatch.setattr(socket.socket, "connect", connect)
    return attempts


@pytest.fixture(params=list(PROXIES))
def bad_proxy(request, monkeypatch) -> tuple[str, str]:
    for name in ("ALL_PROXY", "HTTPS_PROXY", "HTTP_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    monkeypatch.setitem(sys.modules, "socksio", None)  # not installed, even where it is
    name, value, fix = PROXIES[request.param]
    monkeypatch.setenv(name, value)
    return name, fix


def check(message: str, bad_proxy: tuple[str, str]) -> None:
    name, fix = bad_proxy
    assert name in message and fix in message and "\n" not in message
    assert "hunter2" not in message and "ImportError" not in message and "ValueError" not in message


def test_the_registry_names_the_variable(bad_proxy, no_sockets):
    ancia.plugins.set_registry_url(f"{ELSEWHERE}/registry.json")
    with pytest.raises(PluginError) as raised:
        ancia.plugins.registry()
    check(str(raised.value), bad_proxy)
    assert "registry" in str(raised.value) and no_sockets == []


def test_loading_and_asking_a_server_model_name_the_variable(bad_proxy, no_sockets):
    ancia.models.register("remote", f"{ELSEWHERE}/v1", remote_model="m")
    with pytest.raises(ModelError) as raised:
        ancia.models.load("remote")
    check(str(raised.value), bad_proxy)
    assert ELSEWHERE in str(raised.value)
    response = ancia.chat("hi", model="remote", tools=False)
    assert response.status == "error"
    check(response.error, bad_proxy)
    assert no_sockets == []


def test_a_server_on_this_machine_ignores_the_proxies_and_a_usable_setting_is_no_problem(monkeypatch):
    monkeypatch.setitem(sys.modules, "socksio", None)
    monkeypatch.setenv("ALL_PROXY", "socks5://127.0.0.1:1080")
    assert "ALL_PROXY" in (proxy_problem() or "")
    server = FakeServer(stream=['data: {"choices": [{"delta": {"content": "Hi"}, "finish_reason": "stop"}]}\n\n'])
    try:
        runtime = OpenAIRuntime()
        runtime.load(Endpoint(server.url, "m"))  # loopback: the environment's proxies are not used
        assert [c.text for c in runtime.stream([], {}, messages=[{"role": "user", "content": "hi"}])] == ["Hi", ""]
    finally:
        server.close()
    monkeypatch.setenv("NO_PROXY", "*")  # httpx then uses no proxy at all
    assert proxy_problem() is None
    monkeypatch.delenv("NO_PROXY")
    monkeypatch.setenv("ALL_PROXY", "http://proxy.example:3128")
    assert proxy_problem() is None
