"""The tool loop end to end on the real mlx-lm runtime, with the tiny model's output scripted."""

from __future__ import annotations

import json
import threading

import pytest
from scripted import says, scripted

import ancia_jupyter as ancia
from ancia_jupyter import events as ev
from ancia_jupyter.app import get_app
from ancia_jupyter.errors import InvalidValueError, NotFoundError


@pytest.fixture(autouse=True)
def loaded(tiny):
    """The tiny model, loaded before each question (so no loading notice comes among the answer's events)."""
    ancia.models.load()


@pytest.fixture
def fahrenheit():
    @ancia.tool
    def fahrenheit(celsius: float) -> float:
        """Convert a temperature from Celsius to Fahrenheit."""
        return celsius * 9 / 5 + 32

    return fahrenheit


def test_the_model_calls_a_tool_and_answers_with_its_result(tiny, fahrenheit):
    with scripted(says('<tool_call>{"name": "fahrenheit", "arguments": {"celsius": 21}}</tool_call>',
                       "It is 69.8 F.")):
        events = list(ancia.chat("What is 21 °C in Fahrenheit?", stream=True, tools=["fahrenheit"], max_tokens=80))
    kinds = [e.type for e in events if e.type != "token"]
    assert kinds == ["message_started", "tool_call", "tool_result", "message_started", "done"]
    call = next(e for e in events if isinstance(e, ev.ToolCall))
    result = next(e for e in events if isinstance(e, ev.ToolResult))
    done = events[-1]
    assert (call.name, call.arguments) == ("fahrenheit", {"celsius": 21})
    assert (result.id, result.output, result.error) == (call.id, "69.8", None)
    assert done.status == "complete"
    answer = "".join(e.text for e in events if isinstance(e, ev.Token) and e.message_id == done.message_id)
    assert answer == "It is 69.8 F."

    history = get_app().store.history(done.chat_id)
    assert [m["role"] for m in history] == ["user", "assistant", "tool", "assistant"]
    assert history[1]["tool_calls"] == [{"id": call.id, "name": "fahrenheit", "arguments": {"celsius": 21}}]
    assert history[1]["status"] == "complete"
    assert (history[2]["content"], history[2]["tool_call_id"], history[2]["tool_name"]) == (
        "69.8", call.id, "fahrenheit")
    assert (history[3]["content"], history[3]["status"]) == ("It is 69.8 F.", "complete")
    assert history[3]["id"] == done.message_id == result.message_id + 1


def test_the_model_sees_the_tool_result_in_its_next_prompt(tiny, fahrenheit):
    runtime = get_app().models.runtime
    prompts = []
    original = runtime.prompt_tokens

    def spy(messages, tools=None):
        prompts.append((messages, tools))
        return original(messages, tools)

    runtime.prompt_tokens = spy
    with scripted(says('<tool_call>{"name": "fahrenheit", "arguments": {"celsius": -40}}</tool_call>', "Same.")):
        response = ancia.chat("And -40?", tools=["fahrenheit"], max_tokens=80)
    assert response.text == "Same." and response.tool_calls[0]["output"] == "-40.0"
    # the second round's prompt (after the answer, the chat's next turn is rendered too, to read it ahead)
    messages, tools = next(p for p in reversed(prompts) if p[0][-1]["role"] == "tool")
    assert [t["function"]["name"] for t in tools] == ["fahrenheit"]
    assert messages[-2]["tool_calls"][0]["function"] == {"name": "fahrenheit", "arguments": {"celsius": -40}}
    assert messages[-1] == {"role": "tool", "content": "-40.0", "tool_call_id": response.tool_calls[0]["id"],
                            "name": "fahrenheit"}


def test_a_malformed_tool_call_becomes_an_error_the_model_sees(tiny, fahrenheit):
    with scripted(says('<tool_call>{"name": "fahrenheit", "arguments": {celsius: 21}}</tool_call>', "Sorry.")):
        events = list(ancia.chat("Convert 21", stream=True, tools=["fahrenheit"], max_tokens=80))
        result = next(e for e in events if isinstance(e, ev.ToolResult))
        assert result.output is None and "could not be parsed" in result.error and "{celsius: 21}" in result.error
        done = events[-1]
        assert done.status == "complete"
        history = get_app().store.history(done.chat_id)
        assert [m["role"] for m in history] == ["user", "assistant", "tool", "assistant"]
        assert history[1]["tool_calls"][0]["name"] == "invalid"
        assert history[2]["content"].startswith("error: The tool call could not be parsed")
        assert history[2]["tool_call_id"] == history[1]["tool_calls"][0]["id"]
        assert history[3]["content"] == "Sorry." and all(m["status"] == "complete" for m in history)
        again = ancia.chats.get(done.chat_id).send("Try again", tools=["fahrenheit"], max_tokens=20)
        assert again.status == "complete"  # the stored history with the bad call still renders


def test_bad_arguments_and_a_failing_tool_reach_the_model_as_errors(tiny):
    @ancia.tool
    def divide(a: float, b: float) -> float:
        """Divide a by b."""
        return a / b

    with scripted(says('<tool_call>{"name": "divide", "arguments": {"a": 1, "b": 0}}</tool_call>'
                       '<tool_call>{"name": "divide", "arguments": {"a": "one", "b": 2}}</tool_call>', "Oops.")):
        response = ancia.chat("1/0?", tools=["divide"], max_tokens=120)
    assert [c["error"] for c in response.tool_calls] == [
        "ZeroDivisionError: float division by zero", "bad arguments: a must be a number, not str 'one'"]
    tool_messages = [m for m in get_app().store.history(response.chat_id) if m["role"] == "tool"]
    assert [m["content"] for m in tool_messages] == [
        "error: ZeroDivisionError: float division by zero",
        "error: bad arguments: a must be a number, not str 'one'"]
    assert response.text == "Oops."


def test_approval_through_ancia_chat(tiny):
    ran = []

    @ancia.tool(name="files.delete", confirm=True)
    def delete(path: str) -> str:
        """Delete a file."""
        ran.append(path)
        return "deleted"

    call = '<tool_call>{"name": "files_delete", "arguments": {"path": "x.txt"}}</tool_call>'
    asked = []
    with scripted(says(call, "Done.")):
        denied = ancia.chat("Delete x.txt", tools=["files.delete"], max_tokens=80,
                            approve=lambda event: asked.append((event.name, event.arguments)) or False)
    assert asked == [("files.delete", {"path": "x.txt"})] and ran == []
    assert denied.tool_calls[0]["error"] == "denied by the user"

    with scripted(says(call, "Done.")):
        no_callback = ancia.chat("Delete x.txt", tools=["files.delete"], max_tokens=80)
    assert "approve=" in no_callback.tool_calls[0]["error"] and ran == []

    with scripted(says(call, "Done.")):
        allowed = ancia.chat("Delete x.txt", tools=["files.delete"], max_tokens=80, approve=lambda event: True)
    assert allowed.tool_calls[0]["output"] == "deleted" and ran == ["x.txt"]
    assert json.loads(json.dumps(allowed.tool_calls[0]["arguments"])) == {"path": "x.txt"}


def test_while_one_chat_waits_for_an_approval_another_chat_answers(tiny):
    @ancia.tool(name="files.delete", confirm=True)
    def delete(path: str) -> str:
        """Delete a file."""
        return "deleted"

    asked, release = threading.Event(), threading.Event()

    def approve(event):
        asked.set()
        return release.wait(30)

    with scripted(says('<tool_call>{"name": "files_delete", "arguments": {"path": "x.txt"}}</tool_call>',
                       "Other chat.", "Deleted.")):
        waiting = ancia.chat("Delete x.txt", tools=["files.delete"], max_tokens=80, approve=approve, stream=True)
        assert asked.wait(30), "the first chat never asked for its approval"
        other = ancia.chat("Meanwhile, hello", tools=False, max_tokens=20)  # would hang if the worker were held
        assert other.status == "complete" and other.text == "Other chat."
        assert not release.is_set()
        release.set()
        first = waiting.response()
    assert first.status == "complete" and first.tool_calls[0]["output"] == "deleted"
    assert first.text == "Deleted."


def test_an_unknown_tool_name_is_refused_before_anything_is_stored(tiny):
    with pytest.raises(NotFoundError, match="no.such.tool"):
        ancia.chat("hello", tools=["no.such.tool"])
    with pytest.raises(InvalidValueError, match="list of tool names"):
        ancia.chat("hello", tools="system.time")
    assert ancia.chats.list() == []


def test_tool_calls_in_one_turn_are_capped_by_max_tool_calls(tiny, fahrenheit):
    ancia.settings.update(max_tool_calls=3)
    many = "".join(f'<tool_call>{{"name": "fahrenheit", "arguments": {{"celsius": {i}}}}}</tool_call>'
                   for i in range(20))
    with scripted(says(many, "Done.")):
        events = list(ancia.chat("Convert a lot", stream=True, tools=["fahrenheit"], max_tokens=900))
    assert sum(isinstance(e, ev.ToolResult) for e in events) == 3
    assert any(isinstance(e, ev.Notice) and e.code == "tool_calls_capped" and "20" in e.text for e in events)
    history = get_app().store.history(events[-1].chat_id)
    assert len(history[1]["tool_calls"]) == 3 and sum(m["role"] == "tool" for m in history) == 3
    assert events[-1].status == "complete"


def test_an_answer_with_tools_reads_the_same_live_as_a_response_and_in_an_export(tiny, fahrenheit):
    from ancia_jupyter.rendering import MarkdownStream

    with scripted(says('Let me convert. <tool_call>{"name": "fahrenheit", "arguments": {"celsius": 21}}</tool_call>',
                       "It is 69.8 F.")):
        answer = ancia.chat("What is 21 °C in Fahrenheit?", stream=True, tools=["fahrenheit"], max_tokens=80)
        live = MarkdownStream()
        for event in answer:
            live.answer.feed(event)
    response = answer.response()
    shown = live.markdown()
    assert shown == response._repr_markdown_()
    assert shown.index("Let me convert.") < shown.index("fahrenheit") < shown.index("69.8 F.")  # in order
    exported = ancia.chats.export(response.chat_id, "md")
    assert shown.strip() in exported
