"""A server model's answer ends on time whatever the server does: a stop ends it within a second, and two
deadlines (the first byte, the whole answer) end a server that stalls, each in one line naming its setting.

The servers here are raw sockets on 127.0.0.1 that say nothing, or trickle their headers or an event one
byte at a time, or send only keep-alives (``StallServer``): none of that trips a per-read timeout. Each
answer is consumed on a thread of its own, so a test that would hang fails after a few seconds instead.
"""

from __future__ import annotations

import threading
import time

import pytest
from openai_servers import StallServer

from ancia_jupyter import config
from ancia_jupyter.errors import ModelError
from ancia_jupyter.runtimes.openai_compat import Endpoint, OpenAIRuntime

HELLO = [{"role": "user", "content": "hello"}]
STALLS = ["silent", "headers", "event", "keepalive"]
WATCHDOG = "ancia-fetch-watchdog"


@pytest.fixture
def stall():
    servers: list[StallServer] = []

    def make(how: str) -> StallServer:
        servers.append(StallServer(how))
        return servers[-1]

    yield make
    for s in servers:
        s.close()


def connect(url: str, **settings: object) -> OpenAIRuntime:
    runtime = OpenAIRuntime()
    runtime.load(Endpoint(url, "stalled"))
    runtime.configure({**config.resolve({}), **settings})
    return runtime


def consume(runtime: OpenAIRuntime, should_stop=lambda: False, wait: float = 10.0) -> dict:
    """Iterate an answer on its own thread: its texts, its last chunk or error, and when it ended."""
    outcome: dict = {"texts": []}

    def run() -> None:
        try:
            for chunk in runtime.stream([], {}, messages=HELLO, should_stop=should_stop):
                outcome["texts"].append(chunk.text)
                outcome["last"] = chunk
        except ModelError as exc:
            outcome["error"] = exc
        outcome["ended"] = time.monotonic()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(wait)
    assert not thread.is_alive(), f"the answer was still going after {wait} s"
    return outcome


def watchdogs_end() -> bool:
    deadline = time.monotonic() + 1.0
    while any(t.name == WATCHDOG for t in threading.enumerate()) and time.monotonic() < deadline:
        time.sleep(0.01)
    return not any(t.name == WATCHDOG for t in threading.enumerate())


@pytest.mark.parametrize("how", STALLS)
def test_a_stop_ends_a_stalled_answer_within_a_second_and_hangs_up(stall, how):
    server = stall(how)
    runtime = connect(server.url)
    stop_at = time.monotonic() + 1.0  # the stall is well under way by then
    outcome = consume(runtime, lambda: time.monotonic() >= stop_at)
    took = outcome["ended"] - stop_at
    print(f"{how}: the answer returned {took * 1000:.0f} ms after the stop")
    assert "error" not in outcome and outcome["last"].finish_reason == "stopped"
    assert took < 1.0
    assert "".join(outcome["texts"]) == ("Hi" if how == "event" else "")
    assert server.hung_up.wait(2.0) and server.hung_up_at - stop_at < 1.0  # the server saw the socket close
    assert watchdogs_end()


@pytest.mark.parametrize(("how", "hit"), [("silent", "server_first_byte_timeout"),
                                          ("headers", "server_answer_timeout"),
                                          ("event", "server_answer_timeout"),
                                          ("keepalive", "server_answer_timeout")])
def test_a_stalled_server_ends_at_the_deadline_it_hit_with_the_setting_that_raises_it(stall, how, hit):
    server = stall(how)
    runtime = connect(server.url, server_first_byte_timeout=0.5, server_answer_timeout=1.5)
    started = time.monotonic()
    outcome = consume(runtime)
    took = outcome["ended"] - started
    print(f"{how}: {hit} ended it after {took:.2f} s")
    message = str(outcome.get("error"))
    assert f"`ancia.settings.update({hit}=...)`" in message and server.url in message and "\n" not in message
    assert took < (0.5 if hit == "server_first_byte_timeout" else 1.5) + 1.0
    assert "".join(outcome["texts"]) == ("Hi" if how == "event" else "")  # what came before is kept
    assert server.hung_up.wait(2.0) and watchdogs_end()


def test_closing_the_stream_mid_answer_closes_the_connection_and_ends_the_watchdog(stall):
    server = stall("event")
    stream = connect(server.url).stream([], {}, messages=HELLO)
    assert next(stream).text == "Hi"
    assert any(t.name == WATCHDOG for t in threading.enumerate())
    closed = time.monotonic()
    stream.close()  # what the engine does when it gives up on an answer
    assert server.hung_up.wait(2.0) and server.hung_up_at - closed < 1.0
    assert watchdogs_end()


def test_settings_apply_to_the_next_answer_and_unset_ones_have_their_defaults(stall):
    runtime = OpenAIRuntime()
    assert runtime.settings["server_answer_timeout"] == config.SETTINGS["server_answer_timeout"].default
    runtime.configure({"server_first_byte_timeout": 0.3})
    assert runtime.settings["server_first_byte_timeout"] == 0.3
    assert runtime.settings["server_max_event_bytes"] == config.SETTINGS["server_max_event_bytes"].default
    server = stall("silent")
    runtime.load(Endpoint(server.url, "stalled"))
    outcome = consume(runtime)
    assert "server_first_byte_timeout" in str(outcome["error"]) and "0.3 s" in str(outcome["error"])
