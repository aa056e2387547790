"""The panel protocol (docs/panel-protocol.md) driven from Python against the real engine and the tiny model:
every action and its reply, errors as one line, the events of the chat a view shows (batched, told again
from the start to a view that comes in the middle), pushes of what code does elsewhere, and tool approvals.
Also the anywidget wiring and the Markdown renderer."""

from __future__ import annotations

import itertools
import json
import subprocess
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from scripted import endless, says, scripted, slow

import ancia_jupyter as ancia
from ancia_jupyter import events as ev
from ancia_jupyter.app import get_app
from ancia_jupyter.notebook.panel_session import FLUSH_INTERVAL, PanelSession, merge_tokens

SNAPSHOT_KEYS = {"version", "chats", "current_chat", "messages", "models", "selected_model", "loaded_model",
                 "model_state", "params", "param_bounds", "settings", "tools", "mood"}


class Client:
    """The UI's end of the channel, in Python: it records every message the session sends, with its time."""

    def __init__(self) -> None:
        self.out: list[tuple[float, dict]] = []
        self._next = 0
        self._lock = threading.Lock()
        self.session = PanelSession(self._receive)

    def _receive(self, msg: dict) -> None:
        json.dumps(msg)  # everything on the wire must be JSON
        with self._lock:
            self.out.append((time.monotonic(), msg))

    def messages(self, kind: str | None = None) -> list[dict]:
        with self._lock:
            return [m for _, m in self.out if kind is None or m["type"] == kind]

    def request(self, action: str, timeout: float = 20, **args: Any) -> dict:
        self._next += 1
        request_id = self._next
        self.session.handle({"type": "request", "id": request_id, "action": action, **args})
        replies = self.wait_for(lambda: [m for m in self.messages("reply") if m["id"] == request_id], timeout)
        assert len(replies) == 1
        return replies[0]

    def ok(self, action: str, **args: Any) -> Any:
        reply = self.request(action, **args)
        assert reply["ok"], reply.get("error")
        return reply["data"]

    def error(self, action: str, **args: Any) -> str:
        reply = self.request(action, **args)
        assert reply["ok"] is False and set(reply) == {"type", "id", "ok", "error"}
        assert reply["error"] and "\n" not in reply["error"] and "Traceback" not in reply["error"]
        return reply["error"]

    def events(self) -> list[dict]:
        return [e for m in self.messages("events") for e in m["events"]]

    def wait_for(self, check: Callable[[], Any], timeout: float = 20) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = check()
            if value:
                return value
            time.sleep(0.02)
        raise AssertionError(f"timed out waiting; last messages: {[m['type'] for m in self.messages()][-10:]}")

    def wait_done(self, count: int = 1, timeout: float = 30) -> list[dict]:
        return self.wait_for(lambda: (d := [e for e in self.events() if e["type"] == "done"]) and len(d) >= count
                             and d, timeout)

    def wait_state(self, check: Callable[[dict], Any], timeout: float = 20) -> dict:
        """The latest pushed snapshot, once it passes ``check``."""
        return self.wait_for(lambda: [m["state"] for m in self.messages("state")[-1:] if check(m["state"])],
                             timeout)[0]


def test_state_is_a_full_snapshot(client):
    data = client.ok("state")
    assert SNAPSHOT_KEYS <= set(data)
    assert data["chats"] == [] and data["current_chat"] is None and data["messages"] == []
    assert data["selected_model"] == "tiny" and data["model_state"] == "not_loaded" and data["loaded_model"] is None
    assert data["params"]["max_tokens"] == 12 and data["settings"]["offline"] is False
    assert data["param_bounds"]["temperature"] == {"type": "float", "min": 0.0, "max": 2.0}
    assert data["param_bounds"]["context_window"]["max"] == get_app().models.spec("tiny").context_length
    tiny = next(m for m in data["models"] if m["id"] == "tiny")
    assert {"status", "fits", "memory_mb", "vision"} <= set(tiny)
    assert data["version"] == ancia.__version__
    assert "No chat is open" in client.error("delete_message", message_id=1)


def test_chat_list_actions(client):
    first = client.ok("new_chat")
    assert first["current_chat"] and [c["title"] for c in first["chats"]] == ["New chat"]
    renamed = client.ok("rename_chat", chat_id=first["current_chat"], title="Groceries")
    assert renamed["chats"][0]["title"] == "Groceries"
    second = client.ok("new_chat", title="Work")
    assert second["current_chat"] != first["current_chat"] and len(second["chats"]) == 2
    back = client.ok("select_chat", chat_id=first["current_chat"])
    assert back["current_chat"] == first["current_chat"]
    copy = client.ok("duplicate_chat", chat_id=first["current_chat"])
    assert copy["current_chat"] not in (first["current_chat"], second["current_chat"])
    assert "Groceries (copy)" in [c["title"] for c in copy["chats"]]
    after = client.ok("delete_chat", chat_id=copy["current_chat"])
    assert copy["current_chat"] not in [c["id"] for c in after["chats"]]
    assert after["current_chat"] is None  # the next question starts a new chat; the list still opens any


def test_no_stale_push_arrives_after_a_reply(client, monkeypatch):
    """A push computed before an action must not land after its reply and undo what the view shows."""
    duplicate = ancia.Chat.duplicate  # a slow action, and a slower push, make the two overlap
    monkeypatch.setattr(ancia.Chat, "duplicate", lambda self: (duplicate(self), time.sleep(0.1))[0])
    models = get_app().models
    listing = models.list
    monkeypatch.setattr(models, "list", lambda: (threading.current_thread() is client.session._flusher
                                                 and time.sleep(0.2), listing())[1])
    chat = client.ok("new_chat", title="Original")["current_chat"]
    for _ in range(3):
        client.ok("duplicate_chat", chat_id=chat)
    time.sleep(0.5)
    current = None
    for msg in client.messages():
        if msg["type"] == "reply":
            current = msg["data"]["current_chat"]
        elif msg["type"] == "state" and current is not None:
            assert msg["state"]["current_chat"] == current


@pytest.mark.parametrize("action, args, expected", [
    ("select_chat", {"chat_id": 999}, "No chat with id 999"),
    ("rename_chat", {"chat_id": "abc", "title": "x"}, "'chat_id' must be an integer"),
    ("rename_chat", {"chat_id": 1, "title": "   "}, "non-empty"),
    ("delete_chat", {}, "Missing 'chat_id'"),
    ("send", {"text": "   "}, "empty"),
    ("send", {"text": 42}, "'text' must be a string"),
    ("send", {"text": "hi", "images": [{"data": "???", "mime": "image/png"}]}, "not valid base64"),
    ("set_params", {"params": {"temperature": 5}}, "temperature must be in [0.0, 2.0]"),
    ("set_params", {"params": {"max_tokens": 2000, "context_window": 1024}}, "less than context_window"),
    ("set_params", {"params": "hot"}, "'params' must be an object"),
    ("select_model", {"model_id": "nope"}, "Unknown model 'nope'"),
    ("update_settings", {"settings": {"offline": "yes"}}, "Setting 'offline' must be True or False"),
    ("approve_tool", {"call_id": "zzz", "approved": True}, "No tool call 'zzz'"),
    ("set_tool_enabled", {"name": "nope", "enabled": False}, "No tool named 'nope'"),
    ("regenerate", {}, "no question to answer again"),
    ("explode", {}, "Unknown action 'explode'"),
])
def test_errors_are_one_line_replies(client, action, args, expected):
    client.ok("new_chat", title="Target")
    assert expected in client.error(action, **args)
    assert client.ok("state")["params"]["temperature"] == 0.0  # nothing was changed by a refused request


def test_send_streams_the_answer_and_stores_it(client):
    data = client.ok("send", text="What is the capital of France?")
    user = get_app().store.get_message(data["message_id"])
    assert user["role"] == "user" and user["chat_id"] == data["chat_id"]
    done = client.wait_done()[0]
    events = client.events()
    assert events[0]["type"] == "message_started" and events[0]["chat_id"] == data["chat_id"]
    text = "".join(e["text"] for e in events if e["type"] == "token")
    assert done["status"] == "complete" and text
    stored = ancia.chats.history(data["chat_id"])
    assert [m["role"] for m in stored] == ["user", "assistant"] and stored[1]["content"] == text
    state = client.wait_for(lambda: [s for s in (m["state"] for m in client.messages("state"))
                                     if len(s["messages"]) == 2 and s["messages"][1]["status"] == "complete"])[-1]
    assert state["current_chat"] == data["chat_id"] and state["chats"][0]["title"] == "What is the capital of France?"


def test_a_new_chat_is_named_by_its_first_question(client):
    chat = client.ok("new_chat")["current_chat"]
    data = client.ok("send", text="  How do   magnets work?  ")
    assert data["chat_id"] == chat and ancia.chats.get(chat).title == "How do magnets work?"
    client.wait_done()
    client.ok("rename_chat", chat_id=chat, title="New chat")
    client.ok("send", text="a follow-up")
    assert ancia.chats.get(chat).title == "New chat"  # only an empty chat is named
    client.wait_done(2)


def test_a_long_answer_is_batched_not_pushed_per_token(client):
    ancia.models.set_params("tiny", max_tokens=400)
    ancia.models.load()
    with scripted(endless(), slow(0.001)):
        chat = client.ok("new_chat")["current_chat"]
        tokens: list[ev.Token] = []
        get_app().conversations.subscribe(chat, lambda e: tokens.append(e) if isinstance(e, ev.Token) else None)
        client.ok("send", text="tell me everything")
        client.wait_done()
        pushes = [(t, m) for t, m in client.out if m["type"] == "events"]
        assert len(tokens) >= 200
        assert len(pushes) < len(tokens) / 4
        span = pushes[-1][0] - pushes[0][0]
        assert len(pushes) <= span / FLUSH_INTERVAL + 2  # never more than ~25 messages a second
        gaps = [b[0] - a[0] for a, b in itertools.pairwise(pushes)]
        assert gaps and min(gaps) >= FLUSH_INTERVAL * 0.75
        text = "".join(e["text"] for e in client.events() if e["type"] == "token")
        assert text == "".join(t.text for t in tokens)


def view_text(messages: list[dict], message_id: int) -> str | None:
    """The text a view shows for a message being written: its events in order (``message_started`` starts it
    over, as when a view is told the answer again from its start)."""
    text = None
    for event in (e for m in messages if m["type"] == "events" for e in m["events"]):
        if event["type"] == "message_started" and event["message_id"] == message_id:
            text = ""
        elif event["type"] == "token" and event["message_id"] == message_id:
            text += event["text"]
    return text


def test_a_view_asking_for_state_mid_answer_is_told_the_answer_from_its_start(client):
    """A view that (re)connects asks for the state: the answer in progress comes again from its first event,
    just before the snapshot, so the view shows all of it; the snapshot itself holds only what is stored."""
    ancia.models.set_params("tiny", max_tokens=900)
    ancia.models.load()
    with scripted(endless(), slow(0.003)):
        client.ok("send", text="a long one")
        client.wait_for(lambda: sum(e["type"] == "token" for e in client.events()) >= 5)
        started = client.events()[0]
        assert started["type"] == "message_started"
        for _ in range(3):
            shown = view_text(client.messages(), started["message_id"])
            state = client.request("state")
            sent = client.messages()
            before_reply = sent[sent.index(state) - 1]
            assert before_reply["type"] == "events" and started in before_reply["events"]
            assert view_text(sent[:sent.index(state)], started["message_id"]).startswith(shown)
            row = state["data"]["messages"][-1]
            assert row["id"] == started["message_id"] and row["status"] == "partial" and "streaming" not in row
            time.sleep(0.05)
        client.ok("stop")
        client.wait_done()
        final = client.ok("state")["messages"][-1]
        assert final["status"] == "stopped" and final["content"] == view_text(client.messages(), started["message_id"])


def test_no_snapshot_is_pushed_while_the_chat_is_answered(client):
    ancia.models.set_params("tiny", max_tokens=60)
    ancia.models.load()
    with scripted(endless(), slow(0.005)):
        chat = client.ok("new_chat")["current_chat"]
        client.ok("send", text="answer slowly")
        client.wait_for(lambda: any(e["type"] == "token" for e in client.events()))
        ancia.chats.create("made meanwhile")  # a change elsewhere waits for the end of the answer
        client.wait_done()
        kinds = [m["type"] for m in client.messages() if m["type"] != "reply"]
        done_at = max(i for i, m in enumerate(m for m in client.messages() if m["type"] != "reply")
                      if m["type"] == "events" and any(e["type"] == "done" for e in m["events"]))
        first_event = kinds.index("events")
        assert "state" not in kinds[first_event:done_at]
        state = client.wait_state(lambda s: any(c["title"] == "made meanwhile" for c in s["chats"]))
        assert state["current_chat"] == chat and state["messages"][-1]["status"] == "complete"


def test_merge_tokens_joins_runs_of_one_message_only():
    merged = merge_tokens([{"type": "token", "text": "a", "message_id": 1}, {"type": "token", "text": "b", "message_id": 1},
                           {"type": "token", "text": "c", "message_id": 2}, {"type": "notice", "text": "n"},
                           {"type": "token", "text": "d", "message_id": 2}])
    assert [(e["type"], e.get("text")) for e in merged] == [("token", "ab"), ("token", "c"), ("notice", "n"),
                                                            ("token", "d")]


def test_stop_ends_a_long_answer(client):
    ancia.models.set_params("tiny", max_tokens=900)
    ancia.models.load()
    with scripted(endless(), slow(0.005)):
        data = client.ok("send", text="go on forever")
        client.wait_for(lambda: sum(e["type"] == "token" for e in client.events()) >= 3)
        assert client.ok("stop") == {"stopped": 1}
        done = client.wait_done()[0]
        assert done["status"] == "stopped" and done["usage"]["completion_tokens"] < 900
        assert ancia.chats.history(data["chat_id"])[-1]["status"] == "stopped"
        assert client.ok("stop") == {"stopped": 0}


def test_regenerate_answers_again_from_a_message(client):
    data = client.ok("send", text="first question")
    client.wait_done(1)
    chat = data["chat_id"]
    first_answer = ancia.chats.history(chat)[1]["id"]
    client.ok("regenerate")
    client.wait_done(2)
    history = ancia.chats.history(chat)
    assert [m["role"] for m in history] == ["user", "assistant"] and history[1]["id"] != first_answer
    assert "is not in this chat" in client.error("regenerate", message_id=999)
    client.ok("send", text="second question")
    client.wait_done(3)
    client.ok("regenerate", message_id=history[1]["id"])  # from the first answer: the second turn goes too
    client.wait_done(4)
    assert [m["role"] for m in ancia.chats.history(chat)] == ["user", "assistant"]


def test_edit_message_and_answer_again(client):
    data = client.ok("send", text="original question")
    client.wait_done(1)
    chat = data["chat_id"]
    user, answer = ancia.chats.history(chat)
    edited = client.ok("edit_message", message_id=answer["id"], content="an edited answer")
    assert edited["messages"][1]["content"] == "an edited answer"
    assert "cannot be empty" in client.error("edit_message", message_id=user["id"], content=" ")
    client.ok("edit_message", message_id=user["id"], content="a better question", regenerate=True)
    client.wait_done(2)
    history = ancia.chats.history(chat)
    assert history[0]["content"] == "a better question"
    assert [m["role"] for m in history] == ["user", "assistant"] and history[1]["id"] != answer["id"]
    snapshot = client.ok("delete_message", message_id=history[1]["id"])
    assert [m["role"] for m in snapshot["messages"]] == ["user"]
    assert "No message with id" in client.error("delete_message", message_id=history[1]["id"])


def test_model_actions_and_params(client, monkeypatch):
    from ancia_jupyter.runtimes.mlx_text import MLXTextRuntime

    selected = client.ok("select_model", model_id="smollm2-135m-instruct")
    assert selected["selected_model"] == "smollm2-135m-instruct" and selected["params"]["max_tokens"] == 512
    client.ok("select_model", model_id="tiny")
    real_load = MLXTextRuntime.load
    monkeypatch.setattr(MLXTextRuntime, "load", lambda self, path: (time.sleep(0.4), real_load(self, path))[1])
    started = time.monotonic()
    client.session.handle({"type": "request", "id": 100, "action": "load_model"})
    assert time.monotonic() - started < 0.2  # a slow load does not hold up the kernel's message loop
    client.wait_state(lambda s: s["model_state"] == "loading")  # pushed by the model listener meanwhile
    loaded = client.wait_for(lambda: [m for m in client.messages("reply") if m["id"] == 100])[0]["data"]
    assert loaded["loaded_model"] == "tiny" and loaded["model_state"] == "ready"
    assert next(m for m in loaded["models"] if m["id"] == "tiny")["status"] == "loaded"
    unloaded = client.ok("unload_model")
    assert unloaded["loaded_model"] is None and unloaded["model_state"] == "not_loaded"
    params = client.ok("set_params", params={"temperature": 0.5, "top_k": 7})
    assert params["params"]["temperature"] == 0.5 and params["params"]["top_k"] == 7
    assert ancia.models.params("tiny")["top_k"] == 7
    offline = client.ok("update_settings", settings={"offline": True})
    assert offline["settings"]["offline"] is True and ancia.settings.get()["offline"] is True


def test_unload_waits_for_the_answer_in_progress(client):
    ancia.models.set_params("tiny", max_tokens=30)
    ancia.models.load()
    with scripted(endless(), slow(0.01)):
        client.ok("send", text="finish this first")
        unloaded = client.ok("unload_model")
        done = client.wait_done()[0]
        assert done["status"] == "complete" and done["usage"]["completion_tokens"] == 30
        assert unloaded["loaded_model"] is None and get_app().models.loaded_id is None


def test_a_panel_follows_its_notebooks_chat_and_the_answers_asked_there_from_code(client):
    chat = ancia.chats.create("Opened elsewhere in this notebook").id
    get_app().conversations.set_current_chat(client.session.notebook, chat)  # as another view or a magic does
    client.wait_state(lambda s: s["current_chat"] == chat)
    response = ancia.chat("asked from a cell", chat=chat)
    done = client.wait_done()[0]
    assert done["message_id"] == response.message_id
    text = "".join(e["text"] for e in client.events() if e["type"] == "token")
    assert text == response.text
    client.wait_state(lambda s: any(m["content"] == "asked from a cell" for m in s["messages"]))


def test_a_view_gets_the_answers_of_the_chat_it_shows_only(client):
    shown = client.ok("new_chat", title="Shown")["current_chat"]
    ancia.chats.create("Elsewhere").send("not for this view")
    response = ancia.chat("for this view", chat=shown)
    done = client.wait_done()[0]
    assert done["message_id"] == response.message_id
    assert {e["chat_id"] for e in client.events()} == {shown}


def test_opening_a_chat_mid_answer_shows_that_answer_from_its_start(client):
    ancia.models.set_params("tiny", max_tokens=900)
    ancia.models.load()
    with scripted(endless(), slow(0.003)):
        busy = ancia.chats.create("Busy")
        client.ok("new_chat", title="Idle")
        answer = busy.send("a long one", stream=True)
        client.wait_for(lambda: sum(e.type == "token" for e in answer.events) >= 5)
        assert client.events() == []
        client.ok("select_chat", chat_id=busy.id)
        client.wait_for(lambda: len(view_text(client.messages(), answer.message_id) or "") >= 10)
        ancia.stop()
        client.wait_done()
        stored = ancia.chats.history(busy.id)[-1]
        assert stored["status"] == "stopped" and stored["content"] == view_text(client.messages(), answer.message_id)


def test_changes_from_code_are_pushed_as_state(client):
    client.ok("state")
    chat = ancia.chats.create("Made in a cell")
    client.wait_state(lambda s: any(c["id"] == chat.id for c in s["chats"]))
    chat.rename("Renamed in a cell")
    client.wait_state(lambda s: any(c["title"] == "Renamed in a cell" for c in s["chats"]))
    client.ok("select_chat", chat_id=chat.id)
    chat.set_mood("happy")
    client.wait_state(lambda s: s["mood"] == "happy")
    ancia.settings.update(offline=True)
    client.wait_state(lambda s: s["settings"]["offline"] is True)
    ancia.models.load()
    client.wait_state(lambda s: s["model_state"] == "ready" and s["loaded_model"] == "tiny")
    chat.delete()
    client.wait_state(lambda s: s["current_chat"] is None and s["chats"] == [])


def test_pushes_stop_after_close(client):
    client.session.close()
    count = len(client.messages())
    ancia.chats.create("after close")
    time.sleep(FLUSH_INTERVAL * 4)
    ancia.chat("asked after close")
    time.sleep(FLUSH_INTERVAL * 4)
    assert len(client.messages()) == count


def approval_setup(client: Client, decide: Callable[[dict], Any]) -> dict:
    """A confirm=True tool the tiny model is made to call, with every other tool turned off."""
    calls: list[int] = []

    @ancia.tool(confirm=True)
    def launch(count: int) -> str:
        """Launch something that needs a yes."""
        calls.append(count)
        return f"launched {count}"

    for tool in client.ok("state")["tools"]:
        if tool["name"] != "launch":
            client.ok("set_tool_enabled", name=tool["name"], enabled=False)
    ancia.models.set_params("tiny", max_tokens=40)
    ancia.models.load()
    with scripted(says('<tool_call>{"name": "launch", "arguments": {"count": 3}}</tool_call>')):
        client.ok("send", text="launch it")
        approval = client.wait_for(lambda: client.messages("approval"))[0]
        assert approval["call"]["name"] == "launch" and approval["call"]["arguments"] == {"count": 3}
        kinds = [m["type"] for m in client.messages()]
        tool_call_push = next(i for i, m in enumerate(client.messages())
                              if m["type"] == "events" and any(e["type"] == "tool_call" for e in m["events"]))
        assert tool_call_push < kinds.index("approval")  # the card is there before the question
        assert client.ok("state")["approvals"] == [approval["call"]]
        decide(approval["call"])
        done = client.wait_done()[0]
    result = next(e for e in client.events() if e["type"] == "tool_result")
    return {"calls": calls, "result": result, "done": done}


def test_a_confirm_tool_waits_for_approval(client):
    seen = approval_setup(client, lambda call: client.ok("approve_tool", call_id=call["id"], approved=True))
    assert seen["calls"] == [3] and seen["result"]["output"] == "launched 3" and seen["result"]["error"] is None
    ancia.tools.unregister("launch")


def test_a_denied_tool_does_not_run(client):
    seen = approval_setup(client, lambda call: client.ok("approve_tool", call_id=call["id"], approved=False))
    assert seen["calls"] == [] and seen["result"]["error"] == "denied by the user"
    ancia.tools.unregister("launch")


def test_stop_while_waiting_for_approval_denies(client):
    seen = approval_setup(client, lambda call: client.ok("stop"))
    assert seen["calls"] == [] and seen["result"]["error"] == "denied by the user"
    assert seen["done"]["status"] == "stopped"
    ancia.tools.unregister("launch")


def test_the_widget_wires_messages_to_a_session(tiny):
    from ancia_jupyter.notebook.widget import ChatPanel, panel

    sent: list[dict] = []
    widget = panel(height="500px")
    assert isinstance(widget, ChatPanel) and widget.height == "500px"
    widget.send = sent.append  # what would go to the front end
    widget._receive(widget, {"type": "request", "id": 7, "action": "new_chat", "title": "From the widget"}, [])
    assert sent[-1]["id"] == 7 and sent[-1]["ok"] and sent[-1]["data"]["chats"][0]["title"] == "From the widget"
    widget.close()
    assert widget.session._closed


def test_ancia_panel_shows_the_panel_whatever_was_imported_first(tiny, monkeypatch):

    import ancia_jupyter
    import ancia_jupyter.notebook.panel_session  # noqa: F401  (the sidebar's comm imports it first)
    from ancia_jupyter.notebook.widget import ChatPanel
    widget = ancia_jupyter.panel(height="300px")
    assert isinstance(widget, ChatPanel) and widget.height == "300px"
    widget.close()


def test_markdown_escapes_html_and_keeps_only_safe_links(tmp_path):
    from ancia_jupyter.notebook.widget import STATIC

    (tmp_path / "markdown.mjs").write_text((STATIC / "markdown.js").read_text())
    runner = tmp_path / "run.mjs"
    runner.write_text('import { renderMarkdown } from "./markdown.mjs";\n'
                      'const cases = JSON.parse(process.argv[2]);\n'
                      'console.log(JSON.stringify(cases.map(renderMarkdown)));\n')
    cases = ["<img src=x onerror=alert(1)>", "[x](javascript:alert(1)) [y](data:text/html,hi)", "[ok](https://a.b/?q=1&r=2)",
             "```py\nunclosed <b>", "**b** *i* `c<d>` snake_case_name", "# Title", "- a\n- b\n  - c", "1. one\n2. two",
             '"quoted" & \'single\'']
    done = subprocess.run(["node", str(runner), json.dumps(cases)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    html = dict(zip(cases, json.loads(done.stdout), strict=False))
    assert "<img" not in html[cases[0]] and "&lt;img src=x onerror=alert(1)&gt;" in html[cases[0]]
    assert "href" not in html[cases[1]] and "javascript" in html[cases[1]]
    assert '<a href="https://a.b/?q=1&amp;r=2" target="_blank" rel="noopener noreferrer">ok</a>' in html[cases[2]]
    assert '<pre><code class="language-py">unclosed &lt;b&gt;</code></pre>' in html[cases[3]]
    assert html[cases[4]] == "<p><strong>b</strong> <em>i</em> <code>c&lt;d&gt;</code> snake_case_name</p>"
    assert html[cases[5]] == "<h1>Title</h1>"
    assert html[cases[6]] == "<ul><li>a</li><li>b<ul><li>c</li></ul></li></ul>"
    assert html[cases[7]] == "<ol><li>one</li><li>two</li></ol>"
    assert html[cases[8]] == "<p>&quot;quoted&quot; &amp; &#39;single&#39;</p>"
