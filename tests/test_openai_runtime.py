"""The runtime for OpenAI-compatible servers, against real servers on 127.0.0.1: ``mlx_lm.server`` serving the
tiny random model (as is, or slowed so a stop or a crash lands mid-answer) and a stdlib fake that replays a
scripted stream and records the requests."""

from __future__ import annotations

import json
import socket
import time
import traceback

import pytest
from openai_servers import FakeServer, MLXServer, free_port

import ancia_jupyter as ancia
from ancia_jupyter import events as ev
from ancia_jupyter.errors import ModelError
from ancia_jupyter.runtimes import openai_compat
from ancia_jupyter.runtimes.openai_compat import Endpoint, OpenAIRuntime, is_loopback_url

MODEL = "default_model"  # the name mlx_lm.server gives the model it was started with
HELLO = [{"role": "user", "content": "hello"}]
DELAY = 0.02  # seconds per token on the slowed server


@pytest.fixture(scope="module")
def server(tiny_model_dir, tmp_path_factory):
    started = MLXServer.start(tiny_model_dir, tmp_path_factory.mktemp("mlx-server") / "log")
    yield started
    started.kill()


@pytest.fixture
def slow_server(tiny_model_dir, tmp_path):
    """A server of its own (tests kill it), whose answers never end by themselves and take DELAY a token."""
    started = MLXServer.start(tiny_model_dir, tmp_path / "slow-server.log", delay=DELAY)
    yield started
    started.kill()


@pytest.fixture
def fake():
    servers: list[FakeServer] = []

    def make(**script) -> FakeServer:
        servers.append(FakeServer(**script))
        return servers[-1]

    yield make
    for s in servers:
        s.close()


def connect(url: str, api_key_env: str | None = None) -> OpenAIRuntime:
    runtime = OpenAIRuntime()
    runtime.load(Endpoint(url, MODEL, api_key_env))
    return runtime


def sse(*events: object) -> str:
    return "".join(f"data: {e if isinstance(e, str) else json.dumps(e)}\n\n" for e in events)


def delta(**fields) -> dict:
    return {"choices": [{"index": 0, "delta": fields, "finish_reason": None}]}


# -- a real mlx_lm.server ---------------------------------------------------------------------------


def test_an_answer_streams_as_text_chunks_then_a_final_chunk_with_the_servers_usage(server, tiny_model_dir):
    from mlx_lm.utils import load_tokenizer

    runtime = connect(server.url)
    started = time.perf_counter()
    chunks, arrivals = [], []
    for chunk in runtime.stream([], {"max_tokens": 40, "temperature": 0.0}, messages=HELLO):
        chunks.append(chunk)
        arrivals.append(time.perf_counter() - started)
    *texts, final = chunks
    assert len(texts) >= 2 and all(c.text and c.finish_reason is None for c in texts)
    assert final.text == "" and final.finish_reason in ("stop", "length")
    template = load_tokenizer(tiny_model_dir).apply_chat_template(HELLO, add_generation_prompt=True)
    assert final.prompt_tokens == len(template) != runtime.count_tokens(HELLO)  # the server's count, not ours
    assert 0 < final.generation_tokens <= 40 and final.generation_tps > 0 and final.prompt_tps > 0
    print(f"first chunk after {arrivals[0]:.3f} s; {len(texts) / (arrivals[-1] - arrivals[0]):.0f} chunks/s")


def test_max_tokens_caps_the_answer_and_it_finishes_with_length(server):
    final = list(connect(server.url).stream([], {"max_tokens": 3, "temperature": 0.0}, messages=HELLO))[-1]
    assert final.finish_reason == "length" and final.generation_tokens == 3


def test_a_request_the_server_rejects_is_one_line_with_status_message_and_url(server):
    with pytest.raises(ModelError) as raised:
        list(connect(server.url).stream([], {"temperature": -1.0}, messages=HELLO))
    message = str(raised.value)
    assert "400" in message and "temperature must be at least 0" in message
    assert f"{server.url}/chat/completions" in message and "\n" not in message


def test_a_stop_after_the_second_chunk_hangs_up_and_the_server_sees_it(slow_server):
    runtime, texts, connected = connect(slow_server.url), [], []
    max_tokens = 2000  # left alone, this answer would take max_tokens * DELAY = 40 s
    for chunk in runtime.stream([], {"max_tokens": max_tokens}, messages=HELLO, should_stop=lambda: len(texts) >= 2):
        if chunk.text:
            texts.append(chunk.text)
            connected.append(len(slow_server.connections()))
        final = chunk
    assert len(texts) == 2 and final.finish_reason == "stopped"
    assert connected[0] == 1  # the check below can see a connection
    hung_up = time.perf_counter()
    while slow_server.connections() and time.perf_counter() - hung_up < max_tokens * DELAY / 8:
        time.sleep(0.05)
    assert slow_server.connections() == []  # the server closed its side: it saw the disconnect


def test_a_server_killed_mid_answer_gives_the_chunks_before_then_a_disconnect_error(slow_server):
    texts = []
    with pytest.raises(ModelError) as raised:
        for chunk in connect(slow_server.url).stream([], {"max_tokens": 2000}, messages=HELLO):
            texts.append(chunk.text)
            if len(texts) == 2:
                slow_server.kill()
    assert len(texts) >= 2 and all(texts)
    assert "closed the connection in the middle of the answer" in str(raised.value)
    assert slow_server.url in str(raised.value)


def test_a_registered_server_model_answers_through_ancia_chat(server, monkeypatch):
    monkeypatch.setenv("TEAM_LLM_KEY", "secret-value")
    info = ancia.models.register("team-llm", server.url, remote_model=MODEL, api_key_env="TEAM_LLM_KEY")
    assert (info["runtime"], info["status"], info["memory_mb"], info["fits"]) == ("openai", "remote", 0, True)
    listed = {m["id"]: m for m in ancia.models.list()}["team-llm"]
    assert listed["status"] == "remote" and listed["runtime"] == "openai"
    response = ancia.chat("hello there", model="team-llm", max_tokens=5, tools=False)
    assert response.status == "complete" and response.usage["completion_tokens"] == 5
    history = ancia.chats.history(response.chat_id)
    assert [m["role"] for m in history] == ["user", "assistant"] and history[1]["content"] == response.text
    second = ancia.chat("and again", chat=response.chat_id, max_tokens=3, tools=False)
    assert second.status == "complete"
    from ancia_jupyter.app import get_app

    stored = get_app().store.local_models()
    assert "secret-value" not in json.dumps(stored) and stored[0]["api_key_env"] == "TEAM_LLM_KEY"


def test_the_engine_keeps_what_was_streamed_when_the_server_dies(slow_server):
    ancia.models.register("served", slow_server.url, remote_model=MODEL)
    ancia.models.set_params("served", max_tokens=1000)
    stream = ancia.chat("a long answer", model="served", stream=True, tools=False)
    tokens = []
    for event in stream:
        if isinstance(event, ev.Token):
            tokens.append(event.text)
            if len(tokens) == 3:
                slow_server.kill()
    done, errors = stream.events[-1], [e.message for e in stream.events if isinstance(e, ev.Error)]
    assert done.status == "error" and len(errors) == 1 and "in the middle of the answer" in errors[0]
    answer = ancia.chats.history(done.chat_id)[-1]
    assert answer["role"] == "assistant" and answer["status"] == "error"
    assert answer["content"] == "".join(tokens) and len(tokens) >= 3


def test_offline_mode_refuses_a_server_elsewhere_but_not_one_on_this_machine(server, fake):
    ancia.models.register("elsewhere", "http://team-llm.invalid:8000/v1", remote_model="m")  # never resolved
    ancia.models.register("here", server.url, remote_model=MODEL)
    ancia.settings.update(offline=True)
    refused = ancia.chat("hi", model="elsewhere", tools=False)
    assert refused.status == "error" and "offline mode is on" in refused.error
    assert ancia.chat("hi", model="here", max_tokens=2, tools=False).status == "complete"


@pytest.mark.parametrize("args,message", [
    (("team", "http://127.0.0.1:8000/v1"), "needs remote_model"),
    (("team", "ftp://host/v1"), "neither an MLX model directory"),
    (("team", "http:///v1", "m"), "not a server URL"),
    (("team", "http://127.0.0.1:8000/v1", "m", "NOT-A-NAME"), "must name an environment variable"),
])
def test_registering_a_server_checks_every_part(args, message):
    url_args = dict(zip(("remote_model", "api_key_env"), args[2:], strict=False))
    with pytest.raises((ValueError, ModelError), match=message):
        ancia.models.register(args[0], args[1], **url_args)
    assert "team" not in [m["id"] for m in ancia.models.list()]


@pytest.mark.parametrize("url", ["http://alice:s3cr3t-pw@team-llm.invalid/v1", "https://:s3cr3t-pw@team-llm.invalid/v1",
                                 "http://s3cr3t-pw@team-llm.invalid:8000/v1"])
def test_a_server_url_with_a_user_or_password_is_refused_without_echoing_it(url):
    with pytest.raises(ValueError) as raised:
        ancia.models.register("team", url, remote_model="m")
    message = str(raised.value)
    assert "api_key_env" in message and "team-llm.invalid" in message and "\n" not in message
    assert "s3cr3t" not in message and "alice" not in message
    assert "team" not in [m["id"] for m in ancia.models.list()]


def test_a_stored_server_url_with_a_password_is_refused_at_load_before_any_request(fake):
    from ancia_jupyter.app import get_app

    server = fake()
    with_password = server.url.replace("http://", "http://alice:s3cr3t-pw@")
    get_app().store.add_local_model("old", with_password, "openai", remote_model=MODEL)  # registered long ago
    for load in (lambda: ancia.models.load("old"), lambda: connect(with_password)):
        with pytest.raises(ModelError, match="holds a user name or password.*api_key_env") as raised:
            load()
        assert "s3cr3t" not in str(raised.value)
    assert server.requests == []


def test_a_loaded_server_elsewhere_is_refused_by_the_runtime_once_offline_before_any_socket(fake, monkeypatch):
    from ancia_jupyter import config
    from ancia_jupyter.errors import OfflineError

    runtime = connect(fake().url)
    runtime.endpoint = Endpoint("http://192.0.2.1:8000/v1", MODEL)  # as if loaded before going offline
    runtime.configure({**config.resolve({}), "offline": True})
    attempts: list = []
    monkeypatch.setattr(socket.socket, "connect", lambda self, address: attempts.append(address))
    with pytest.raises(OfflineError) as raised:
        list(runtime.stream([], {}, messages=HELLO))
    message = str(raised.value)
    assert "http://192.0.2.1:8000/v1" in message and "offline mode is on" in message and "\n" not in message
    assert config.how_to_go_online() in message and attempts == []
    monkeypatch.setenv("ANCIA_OFFLINE", "1")  # the advice follows where offline mode comes from
    with pytest.raises(OfflineError, match="ANCIA_OFFLINE: unset it"):
        list(runtime.stream([], {}, messages=HELLO))
    assert attempts == []


# -- loading ----------------------------------------------------------------------------------------


def test_loading_an_unreachable_server_says_which_url_and_what_to_do():
    url = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    with pytest.raises(ModelError) as raised:
        connect(url)
    assert f"{url}/models" in str(raised.value) and "start it" in str(raised.value)


@pytest.mark.parametrize("url", ["127.0.0.1:8080/v1", "ftp://127.0.0.1/v1", "http://[::1", "", "http:///v1"])
def test_loading_a_bad_url_says_how_a_server_url_looks(url):
    with pytest.raises(ModelError, match="is not a server URL: give the API base, such as http://"):
        connect(url)


def test_a_url_without_the_api_path_is_refused_at_load_with_a_hint(server):
    with pytest.raises(ModelError, match=r"404 .*Is the URL the API base"):
        connect(server.url.removesuffix("/v1"))


# -- the wire format, against a scripted fake -------------------------------------------------------


def test_the_key_goes_as_a_bearer_header_and_streamed_tool_calls_are_put_together(fake, monkeypatch, tmp_path):
    monkeypatch.setenv("FAKE_API_KEY", "sk-test-123")
    picture = tmp_path / "dot.png"
    picture.write_bytes(b"\x89PNG not really")
    server = fake(stream=[
        ": keepalive 1/2\n\n",
        sse(delta(role="assistant", content="Let me ")),
        'data: {"choices": [{"index": 0,\ndata:  "delta": {"content": "check."}}]}\n\n',  # one event, two lines
        sse(delta(tool_calls=[{"index": 0, "id": "call_a", "type": "function",
                               "function": {"name": "add", "arguments": '{"a": 1,'}}])),
        sse(delta(tool_calls=[{"index": 1, "id": "call_b", "function": {"name": "web", "arguments": "{oops"}}])),
        sse(delta(tool_calls=[{"index": 0, "function": {"arguments": ' "b": 2}'}}])),
        sse({"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]}),
        sse({"choices": [], "usage": {"prompt_tokens": 77, "completion_tokens": 21,
                                      "prompt_tokens_details": {"cached_tokens": 70}}}),
        sse("[DONE]"),
    ])
    runtime = connect(server.url, "FAKE_API_KEY")
    tools = [{"type": "function", "function": {"name": "add", "parameters": {"type": "object"}}}]
    history = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "add 1 and 2", "images": [{"path": str(picture), "mime": "image/png"}]},
        {"role": "assistant", "content": "", "tool_calls": [
            {"id": "call_0", "type": "function", "function": {"name": "add", "arguments": {"a": 0}}}]},
        {"role": "tool", "content": "0", "tool_call_id": "call_0", "name": "add"},
    ]
    chunks = list(runtime.stream([], {"max_tokens": 64, "temperature": 0.5, "top_p": 0.9, "top_k": 40},
                                 tools=tools, messages=history))
    assert "".join(c.text for c in chunks) == "Let me check."
    final = chunks[-1]
    assert final.finish_reason == "tool_calls" and (final.prompt_tokens, final.cached_tokens) == (77, 70)
    first, second = final.tool_calls
    assert (first.id, first.name, first.arguments, first.error) == ("call_a", "add", {"a": 1, "b": 2}, None)
    assert second.name == "web" and "not valid JSON" in second.error and second.raw == "{oops"
    assert [(m, p) for m, p, _, _ in server.requests] == [("GET", "/v1/models"), ("POST", "/v1/chat/completions")]
    assert all(h["authorization"] == "Bearer sk-test-123" for _, _, h, _ in server.requests)
    body = server.requests[1][3]
    assert body["model"] == MODEL and body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert (body["max_tokens"], body["temperature"], body["top_p"], body["top_k"]) == (64, 0.5, 0.9, 40)
    assert body["tools"] == tools
    system, user, assistant, tool = body["messages"]
    assert system == {"role": "system", "content": "Be brief."}
    assert user["content"][0] == {"type": "text", "text": "add 1 and 2"}
    assert user["content"][1]["image_url"]["url"].startswith("data:image/png;base64,")
    assert assistant["tool_calls"][0]["function"]["arguments"] == '{"a": 0}'
    assert tool == {"role": "tool", "content": "0", "tool_call_id": "call_0"}  # no key the API does not know


BREAKS = {  # how a stream can break off, and the text that came before
    "the connection drops inside the chunked body": ([sse(delta(content="Hel")), sse(delta(content="lo"))], True),
    "the body ends on an event cut in half": ([sse(delta(content="Hel")), 'data: {"choices": [{"delta": {"con'], False),
    "the body ends with no finish and no [DONE]": ([sse(delta(content="Hel"))], False),
}


@pytest.mark.parametrize("how", BREAKS)
def test_a_stream_that_breaks_off_gives_the_text_before_then_a_disconnect_error(fake, how):
    pieces, cut = BREAKS[how]
    server = fake(stream=pieces, cut=cut)
    texts = []
    with pytest.raises(ModelError, match="closed the connection in the middle of the answer"):
        for chunk in connect(server.url).stream([], {}, messages=HELLO):
            texts.append(chunk.text)
    assert "".join(texts) == "".join(json.loads(p[6:])["choices"][0]["delta"]["content"]
                                     for p in pieces if p.endswith("\n\n"))


def test_an_unset_key_variable_is_a_clear_error_and_the_key_never_shows_in_errors(fake, monkeypatch):
    monkeypatch.delenv("FAKE_API_KEY", raising=False)
    server = fake()
    with pytest.raises(ModelError, match="environment variable FAKE_API_KEY .* is not set"):
        connect(server.url, "FAKE_API_KEY")
    assert server.requests == []
    monkeypatch.setenv("FAKE_API_KEY", "sk-secret-987")
    runtime = connect(server.url, "FAKE_API_KEY")
    server.status, server.error_body = 401, json.dumps({"error": {"message": "Incorrect API key sk-secret-987"}})
    with pytest.raises(ModelError) as raised:
        list(runtime.stream([], {}, messages=HELLO))
    shown = "".join(traceback.format_exception(raised.value))
    assert "401" in str(raised.value) and "Incorrect API key" in str(raised.value)
    assert "sk-secret-987" not in shown and "sk-secret-987" not in repr(vars(runtime))


# -- what the engine asks without a tokenizer -------------------------------------------------------


def test_token_counts_are_estimates_and_exact_tokens_are_refused():
    runtime = OpenAIRuntime()
    short, long = {"role": "user", "content": "x" * 40}, {"role": "user", "content": "x" * 400}
    assert runtime.message_tokens(long) - runtime.message_tokens(short) == 360 // openai_compat.CHARS_PER_TOKEN
    tools = [{"type": "function", "function": {"name": "add", "description": "y" * 200}}]
    assert runtime.count_tokens([short], tools) - runtime.count_tokens([short]) == pytest.approx(
        len(json.dumps(tools)) / openai_compat.CHARS_PER_TOKEN, abs=1)
    assert runtime.local is False and runtime.supports_tools
    with pytest.raises(ModelError, match="tokenized by the server"):
        runtime.prompt_tokens([short])


@pytest.mark.parametrize(("url", "loopback"), [
    ("http://127.0.0.1:8080/v1", True), ("http://127.9.8.7/v1", True), ("http://localhost:1234/v1", True),
    ("http://LocalHost/v1", True), ("http://[::1]:8080/v1", True), ("http://[::ffff:127.0.0.1]/v1", True),
    ("http://10.0.0.1/v1", False), ("https://api.example.com/v1", False), ("http://localhost.example.com", False),
    ("http://0.0.0.0:8080", False), ("http://[::ffff:10.0.0.1]/v1", False), ("not a url", False), ("", False),
])
def test_only_urls_of_this_machine_are_loopback(url, loopback):
    assert is_loopback_url(url) is loopback
