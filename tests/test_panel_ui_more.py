"""What the chat view is told so that it says what is true: parameter bounds that fit the model (an answer's
length up to the context window, the window up to what the model was trained on), a model not downloaded with
what there is to download, a loading notice that reaches even a view whose question started the chat, and tool
rows that say whether a tool can run and whether it is trusted."""

from __future__ import annotations

import threading
from typing import Any

from ancia_jupyter import api
from ancia_jupyter import events as ev
from ancia_jupyter.app import get_app

SMOLLM2 = "smollm2-135m-instruct"


def test_an_answers_length_stops_at_the_context_window_and_the_window_at_the_trained_length(client):
    snap = client.ok("select_model", model_id=SMOLLM2)
    assert snap["params"]["context_window"] == 2048
    assert snap["param_bounds"]["max_tokens"] == {"type": "int", "min": 1, "max": 2048}
    assert snap["param_bounds"]["context_window"] == {"type": "int", "min": 256, "max": 8192}
    wider = client.ok("set_params", params={"context_window": 4096})
    assert wider["param_bounds"]["max_tokens"]["max"] == 4096
    tiny = client.ok("select_model", model_id="tiny")
    assert tiny["param_bounds"]["max_tokens"]["max"] == tiny["params"]["context_window"] == 2048


def test_a_model_not_downloaded_says_how_much_there_is_to_download(client):
    row = next(m for m in client.ok("state")["models"] if m["id"] == SMOLLM2)
    assert row["status"] == "available" and row["size_mb"] == 90 and row["source"] == "pypi"


def test_a_view_whose_question_starts_a_chat_hears_that_the_model_is_loading(client, monkeypatch):
    assert client.ok("state")["loaded_model"] is None
    chat = api.chat  # the view follows the new chat once the answer has begun: here, once it said it loads

    def slow_chat(*args: Any, **kwargs: Any) -> Any:
        answer = chat(*args, **kwargs)
        said = threading.Event()
        stop = get_app().conversations.subscribe(answer.chat_id, lambda e: isinstance(e, ev.Notice) and said.set())
        said.wait(10)
        stop()
        return answer

    monkeypatch.setattr(api, "chat", slow_chat)
    client.ok("send", text="Hello")  # the chat is made by this question: the view follows it from its start
    client.wait_done()
    kinds = [(e["type"], e.get("code")) for e in client.events()]
    assert ("notice", "loading") in kinds
    assert kinds.index(("notice", "loading")) < kinds.index(next(k for k in kinds if k[0] == "token"))
    assert client.wait_state(lambda s: s["loaded_model"] == "tiny")["model_state"] in ("ready", "generating")
    client.ok("state")  # told again from its start: the loading notice comes again, no other notice does
    again = [e for e in client.events()[len(kinds):] if e["type"] == "notice"]
    assert [e["code"] for e in again] in ([], ["loading"])


def test_tool_rows_say_whether_a_tool_can_run_and_whether_it_is_trusted(client):
    def row(snap: dict, name: str) -> dict:
        return next(t for t in snap["tools"] if t["name"] == name)

    snap = client.ok("set_tool_enabled", name="kernel.variables", enabled=True)
    variables = row(snap, "kernel.variables")
    assert variables["available"] is False and variables["requires"] == "kernel_context"
    assert "kernel_context" in variables["usable_reason"]
    snap = client.ok("update_settings", settings={"kernel_context": True})
    assert row(snap, "kernel.variables")["available"] is True

    search = row(snap, "web.search.duckduckgo")
    assert search["network"] and not search["trusted"] and search["needs_approval"]
    snap = client.ok("set_tool_trusted", name="web.search.duckduckgo", trusted=True)
    assert row(snap, "web.search.duckduckgo")["trusted"] and not row(snap, "web.search.duckduckgo")["needs_approval"]
    snap = client.ok("set_tool_trusted", name="web.search.duckduckgo", trusted=False)
    assert row(snap, "web.search.duckduckgo")["needs_approval"]
    assert "does not reach the network" in client.error("set_tool_trusted", name="system.time", trusted=True)
