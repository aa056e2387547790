"""What a server model's runtime does with replies that are wrong, huge or hostile, against a scripted server
on 127.0.0.1: every one ends in one line naming the server and what happened, the text before it is kept, no
piece of the API key shows, memory stays near the caps, and redirects are not followed."""

from __future__ import annotations

import gzip
import json
import threading
import time
import zlib
from functools import cache

import psutil
import pytest
from openai_servers import FakeServer

from ancia_jupyter import config
from ancia_jupyter.errors import ModelError
from ancia_jupyter.runtimes.openai_compat import Endpoint, OpenAIRuntime
from ancia_jupyter.runtimes.openai_sse import EventReader, WireError

HELLO = [{"role": "user", "content": "hello"}]
KEY = "K3Y9QZ7XW2VJ8RTM5PLD4NBH"  # no 4 characters of it in a row occur in any message of ours
PYTHON_ERRORS = ("TypeError", "AttributeError", "KeyError", "ValueError", "IndexError", "object is not",
                 "NoneType", "Traceback")


@pytest.fixture
def fake():
    servers: list[FakeServer] = []

    def make(**script) -> FakeServer:
        servers.append(FakeServer(**script))
        return servers[-1]

    yield make
    for s in servers:
        s.close()


def connect(url: str, api_key_env: str | None = None, **settings: object) -> OpenAIRuntime:
    runtime = OpenAIRuntime()
    runtime.load(Endpoint(url, "m", api_key_env))
    runtime.configure({**config.resolve({}), **settings})
    return runtime


def sse(*events: object) -> str:
    return "".join(f"data: {e if isinstance(e, str) else json.dumps(e)}\n\n" for e in events)


def delta(**fields) -> dict:
    return {"choices": [{"index": 0, "delta": fields, "finish_reason": None}]}


END = [sse({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}), sse("[DONE]")]


def answer(runtime: OpenAIRuntime) -> tuple[list[str], ModelError]:
    """The texts an answer gave before it failed, and its error (which must come)."""
    texts: list[str] = []
    with pytest.raises(ModelError) as raised:
        for chunk in runtime.stream([], {}, messages=HELLO):
            texts.append(chunk.text)
    return texts, raised.value


def key_pieces_in(message: str) -> list[str]:
    return [KEY[i:i + 4] for i in range(len(KEY) - 3) if KEY[i:i + 4] in message]


# -- no piece of the key in an error -------------------------------------------------------------------


def leaky_bodies() -> dict[str, str]:
    bodies = {f"the key at character {at}": json.dumps({"error": {"message": "x" * at + " " + KEY + " y" * 50}})
              for at in (250, 276, 280, 285, 290, 295)}
    bodies["the key at the end of plain text"] = "Unauthorized. " + "z " * 140 + KEY
    bodies["only the start of the key"] = json.dumps({"detail": "bad key " + KEY[:10] + "…"})
    bodies["only the end of the key"] = json.dumps({"error": "key ending in " + KEY[-6:] + " is revoked"})
    bodies["the key twice, the second cut by the body"] = f"{KEY} / {'w' * 260}{KEY[:9]}"
    return bodies


@pytest.mark.parametrize("body", list(leaky_bodies()))
@pytest.mark.parametrize("status", [401, 500])
def test_an_error_body_that_echoes_the_key_never_shows_a_piece_of_it(fake, monkeypatch, body, status):
    monkeypatch.setenv("FAKE_API_KEY", KEY)
    server = fake()
    runtime = connect(server.url, "FAKE_API_KEY")
    server.status, server.error_body = status, leaky_bodies()[body]
    _, error = answer(runtime)
    assert str(status) in str(error) and "\n" not in str(error)
    assert key_pieces_in(str(error)) == []


@pytest.mark.parametrize("event", [
    sse({"error": {"message": f"quota exceeded for key {KEY}"}}),
    sse({"error": "x" * 298 + KEY}),
    f"data: {{oops {KEY}\n\n",  # not JSON
    f"data: {json.dumps({'choices': 5, 'note': KEY})}\n\n",  # the wrong shape
    f"data: {json.dumps([KEY])}\n\n",  # not an object
])
def test_an_event_that_echoes_the_key_never_shows_a_piece_of_it(fake, monkeypatch, event):
    monkeypatch.setenv("FAKE_API_KEY", KEY)
    server = fake(stream=[sse(delta(content="Hi ")), event, *END])
    texts, error = answer(connect(server.url, "FAKE_API_KEY"))
    assert texts == ["Hi "] and server.url in str(error)
    assert key_pieces_in(str(error)) == []


def test_a_load_refused_with_the_key_in_the_body_never_shows_a_piece_of_it(fake, monkeypatch):
    monkeypatch.setenv("FAKE_API_KEY", KEY)
    server = fake(status=401, error_body=json.dumps({"error": {"message": "y" * 296 + KEY}}))
    with pytest.raises(ModelError, match="401") as raised:
        connect(server.url, "FAKE_API_KEY")
    assert "Check the API key" in str(raised.value) and key_pieces_in(str(raised.value)) == []


# -- what the server sent, said as it is ------------------------------------------------------------------


MALFORMED = {
    "choices is a number": '{"choices": 5}',
    "choices is text": '{"choices": "abc"}',
    "choices is an object": '{"choices": {"0": {}}}',
    "a choice is a number": '{"choices": [5]}',
    "a choice is text": '{"choices": ["Hello"]}',
    "a delta is text": '{"choices": [{"delta": "Hello"}]}',
    "a delta is a list": '{"choices": [{"delta": ["Hello"]}]}',
    "content is a number": '{"choices": [{"delta": {"content": 5}}]}',
    "content is a list": '{"choices": [{"delta": {"content": ["a", "b"]}}]}',
    "content is an object": '{"choices": [{"delta": {"content": {"text": "a"}}}]}',
    "content is true": '{"choices": [{"delta": {"content": true}}]}',
    "finish_reason is a number": '{"choices": [{"delta": {}, "finish_reason": 3}]}',
    "tool_calls is an object": '{"choices": [{"delta": {"tool_calls": {"index": 0}}}]}',
    "tool_calls is text": '{"choices": [{"delta": {"tool_calls": "add(1, 2)"}}]}',
    "a tool call is a number": '{"choices": [{"delta": {"tool_calls": [5]}}]}',
    "a tool call's function is text": '{"choices": [{"delta": {"tool_calls": [{"function": "add"}]}}]}',
    "a tool call's name is a number": '{"choices": [{"delta": {"tool_calls": [{"function": {"name": 5}}]}}]}',
    "a tool call's id is a number": '{"choices": [{"delta": {"tool_calls": [{"id": 7, "function": {}}]}}]}',
    "usage is a number": '{"choices": [], "usage": 5}',
    "usage is text": '{"choices": [], "usage": "lots"}',
    "the event is a number": "5",
    "the event is text": '"Hello"',
    "the event is a list": '[{"choices": []}]',
    "the event is null": "null",
    "the event is true": "true",
    "the event is not JSON": "{oops",
    "the event is nested too deep": "[" * 100_000,
    "the error is a number": '{"error": 5}',
    "the error is a list": '{"error": ["bad", "worse"]}',
}


@pytest.mark.parametrize("shape", list(MALFORMED))
def test_an_event_of_the_wrong_shape_is_one_line_naming_the_server_and_the_text_before_is_kept(fake, shape):
    server = fake(stream=[sse(delta(content="Hi ")), f"data: {MALFORMED[shape]}\n\n", *END])
    texts, error = answer(connect(server.url))
    message = str(error)
    assert texts == ["Hi "]
    assert message.startswith(f"The server at {server.url}/chat/completions ") and "\n" not in message
    assert not [word for word in PYTHON_ERRORS if word in message], message
    assert len(message) < 600


TOLERATED = {  # odd but harmless: the answer completes
    "null choices, delta and content": '{"choices": [{"delta": null}, {"delta": {"content": null}}], "usage": null}',
    "usage figures that are not numbers": '{"choices": [], "usage": {"prompt_tokens": "many", '
                                          '"completion_tokens": -1, "prompt_tokens_details": 7}}',
    "arguments as an object": '{"choices": [{"delta": {"tool_calls": [{"id": "c", "function": {"name": "add", '
                              '"arguments": {"a": 1}}}]}}]}',
}


@pytest.mark.parametrize("shape", list(TOLERATED))
def test_odd_but_harmless_events_still_complete(fake, shape):
    server = fake(stream=[sse(delta(content="Hi ")), f"data: {TOLERATED[shape]}\n\n", *END])
    chunks = list(connect(server.url).stream([], {}, messages=HELLO))
    assert chunks[0].text == "Hi " and chunks[-1].finish_reason in ("stop", "tool_calls")
    assert chunks[-1].prompt_tokens > 0 and chunks[-1].generation_tokens >= 0


@pytest.mark.parametrize(("script", "said"), [
    ({"stream": []}, "answered 200 with an empty body, not an event stream"),
    ({"stream": ["<html><body>Welcome to nginx</body></html>"], "content_type": "text/html"},
     "answered with an HTML page, not an event stream: is the URL the API base"),
    ({"stream": ["<!DOCTYPE html>\n<html>sign in</html>"]}, "answered with an HTML page"),  # called an event stream
    ({"stream": ['{"id": "x", "choices": [{"message": {"content": "Hi"}}]}'], "content_type": "application/json"},
     'answered with one JSON document, not an event stream: {"id": "x"'),
    ({"stream": ['{"error": {"message": "model m is not loaded"}}'], "content_type": "application/json"},
     "stopped with an error: model m is not loaded"),
    ({"stream": ["Service starting, try later\n"], "content_type": "text/plain"},
     "answered with something that is not an event stream: Service starting, try later"),
    ({"stream": [sse(delta(content="Hi")), "data: {oops}\n\n"]}, "sent an event that is not JSON: {oops}"),
    ({"stream": [b"data: {}\n\n"], "encoding": "br"}, "answered with Content-Encoding 'br', which this client"),
])
def test_a_body_that_is_not_an_event_stream_says_what_it_is(fake, script, said):
    server = fake(**script)
    _, error = answer(connect(server.url))
    assert said in str(error) and server.url in str(error) and "\n" not in str(error)


def test_a_gzip_or_deflate_stream_is_read(fake):
    body = (sse(delta(content="Hel")) + sse(delta(content="lo")) + "".join(END)).encode()
    for encoding, data in (("gzip", gzip.compress(body)), ("deflate", zlib.compress(body)),
                           ("deflate", zlib.compress(body)[2:-4])):  # deflate without its zlib wrapper, as some send
        server = fake(stream=[data[:7], data[7:]], encoding=encoding)
        assert "".join(c.text for c in connect(server.url).stream([], {}, messages=HELLO)) == "Hello"


# -- bounded memory ----------------------------------------------------------------------------------------


@cache
def gzip_bomb(inflated_mb: int) -> list[bytes]:
    """One event line of ``inflated_mb`` MB, gzip-encoded, in 64 KB chunks (about a thousandth of that)."""
    packer = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    parts = [packer.compress(b'data: {"choices": [{"delta": {"content": "')]
    block = b"a" * (1 << 20)
    parts += [packer.compress(block) for _ in range(inflated_mb)]
    data = b"".join(parts) + packer.flush()
    return [data[i:i + 65536] for i in range(0, len(data), 65536)]


def peak_rss_growth(work) -> tuple[int, object]:
    """How far above its starting point the process's memory went while ``work`` ran (sampled every 5 ms)."""
    process, peak, running = psutil.Process(), [0], threading.Event()
    start = process.memory_info().rss

    def sample() -> None:
        while running.is_set():
            peak[0] = max(peak[0], process.memory_info().rss - start)
            time.sleep(0.005)

    running.set()
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        result = work()
    finally:
        running.clear()
        sampler.join()
    return peak[0], result


def test_a_gzip_body_that_inflates_to_one_huge_line_stops_at_the_cap_without_taking_the_memory(fake):
    inflated = 300 << 20
    pieces = gzip_bomb(inflated >> 20)
    server = fake(stream=pieces, encoding="gzip")
    runtime = connect(server.url)
    growth, (texts, error) = peak_rss_growth(lambda: answer(runtime))
    sent = sum(map(len, pieces))
    print(f"gzip bomb: {sent / 1024:.0f} KB sent, {inflated >> 20} MB inflated; RSS grew {growth / 2**20:.1f} MB")
    assert "server_max_event_bytes" in str(error) and f"{4 * 1024 * 1024} bytes" in str(error)
    assert texts == [] and growth < 64 << 20  # the cap is 4 MiB; the line would have been 300 MB


@pytest.mark.parametrize("event", [
    "data: " + json.dumps(delta(content="x" * 300_000)) + "\n\n",  # one long line
    "".join(f"data: {'x' * 1000}\n" for _ in range(300)) + "\n",  # many lines in one event
])
def test_an_event_larger_than_the_setting_ends_the_answer_naming_it(fake, event):
    server = fake(stream=[sse(delta(content="Hi ")), event[:100_000], event[100_000:], *END])
    texts, error = answer(connect(server.url, server_max_event_bytes=64 * 1024))
    assert texts == ["Hi "] and "more than 65536 bytes" in str(error)
    assert "`ancia.settings.update(server_max_event_bytes=...)`" in str(error)


def test_an_answer_longer_than_the_setting_ends_naming_it_and_keeps_what_fit(fake):
    server = fake(stream=[sse(delta(content="y" * 100)) for _ in range(30)] + END)
    texts, error = answer(connect(server.url, server_max_answer_chars=1000))
    assert "".join(texts) == "y" * 1000 and "more than 1000 characters" in str(error)
    assert "`ancia.settings.update(server_max_answer_chars=...)`" in str(error)


# -- redirects -----------------------------------------------------------------------------------------------


def test_a_redirect_at_load_is_refused_and_not_followed(fake, monkeypatch):
    monkeypatch.setenv("FAKE_API_KEY", KEY)
    elsewhere = fake()
    server = fake(status=302, location=f"{elsewhere.url}/models")
    with pytest.raises(ModelError) as raised:
        connect(server.url, "FAKE_API_KEY")
    assert str(raised.value) == (
        f"The server at {server.url}/models redirects to {elsewhere.url}/models; redirects are not followed, so "
        "the key never goes elsewhere: register the URL it points to.")
    assert elsewhere.requests == []


def test_a_redirect_of_an_answer_is_refused_and_not_followed(fake, monkeypatch):
    monkeypatch.setenv("FAKE_API_KEY", KEY)
    elsewhere = fake()
    server = fake()
    runtime = connect(server.url, "FAKE_API_KEY")
    server.status, server.location = 307, "/other/v1/chat/completions"
    _, error = answer(runtime)
    base = server.url.removesuffix("/v1")
    assert f"redirects to {base}/other/v1/chat/completions; redirects are not followed" in str(error)
    assert elsewhere.requests == [] and [r[1] for r in server.requests] == ["/v1/models", "/v1/chat/completions"]


# -- the event reader on its own --------------------------------------------------------------------------


def events_of(pieces: list[bytes], max_event_bytes: int = 1024) -> list[tuple[str | None, bool]]:
    return [(e.data, e.complete) for e in EventReader(pieces, "", max_event_bytes).events()]


def test_line_endings_of_every_kind_split_anywhere_make_the_same_events():
    body = b'\xef\xbb\xbfdata: {"a": 1}\r\n\r\n: ping\rdata: x\rdata: y\r\rdata: last'
    expected = [('{"a": 1}', True), (None, True), ("x\ny", True), ("last", False)]
    assert events_of([body]) == expected
    assert events_of([body[i:i + 1] for i in range(len(body))]) == expected  # CR and LF in separate pieces


def test_a_long_line_that_comes_whole_in_one_piece_is_still_refused():
    with pytest.raises(WireError, match="event line of more than 1024 bytes"):
        events_of([b"data: " + b"x" * 5000 + b"\n\n"])
