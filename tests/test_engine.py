"""The chat engine on the real MLX runtime (tiny random model): events, persistence, stop, caches, context."""

from __future__ import annotations

import json
import os
import shutil
import signal
import threading
import time

import pytest
from scripted import endless, scripted, slow

import ancia_jupyter as ancia
from ancia_jupyter import events as ev
from ancia_jupyter.app import get_app
from ancia_jupyter.errors import InvalidValueError, NotFoundError


def test_a_stream_is_typed_json_events_in_protocol_order(tiny):
    events = list(ancia.chat("hello", stream=True))
    kinds = [e.type for e in events]
    assert kinds[0] == "message_started" and kinds[-1] == "done"
    assert set(kinds[1:-1]) <= {"token", "notice"} and "token" in kinds
    for event in events:
        data = json.loads(json.dumps(ev.to_dict(event)))
        assert ev.from_dict(data) == event
    done = events[-1]
    assert done.status == "complete" and done.usage["completion_tokens"] > 0
    assert done.timings["time_to_first_token"] > 0 and done.timings["total"] >= done.timings["time_to_first_token"]


def test_answer_is_stored_with_model_params_usage_and_timings(tiny):
    response = ancia.chat("What is the capital of France?")
    history = ancia.chats.history(response.chat_id)
    assert [m["role"] for m in history] == ["user", "assistant"]
    user, answer = history
    assert user["content"] == "What is the capital of France?"
    assert answer["id"] == response.message_id and answer["content"] == response.text
    assert answer["status"] == "complete" and answer["model_id"] == "tiny"
    assert answer["params"]["temperature"] == 0.0
    assert answer["completion_tokens"] == response.usage["completion_tokens"]
    assert answer["timings"]["total"] > 0
    assert ancia.chats.get(response.chat_id).title == "What is the capital of France?"


def test_user_message_is_stored_before_generation_starts(tiny):
    seen = []
    store = get_app().store
    for event in ancia.chat("first things first", stream=True):
        if isinstance(event, ev.MessageStarted):
            seen = [m["role"] for m in store.history(event.chat_id)]
    assert seen[0] == "user"


def test_a_growing_answer_is_saved_as_partial_while_streaming(tiny):
    ancia.models.load()
    ancia.models.set_params("tiny", max_tokens=200)
    with scripted(endless(), slow(0.02)):
        store = get_app().store
        snapshots = []
        for event in ancia.chat("tell me a long story", stream=True):
            if isinstance(event, ev.MessageStarted):
                t0 = time.monotonic()
            if isinstance(event, ev.Token) and time.monotonic() - t0 > 1.2 and not snapshots:
                snapshots.append(store.get_message(event.message_id))
                ancia.stop()
        assert snapshots and snapshots[0]["status"] == "partial" and snapshots[0]["content"]


def test_stop_leaves_a_stopped_message_with_the_text_so_far(tiny):
    ancia.models.load()
    ancia.models.set_params("tiny", max_tokens=500)
    with scripted(endless(), slow(0.01)):
        text = ""
        stream = ancia.chat("go on and on", stream=True)
        for event in stream:
            if isinstance(event, ev.Token):
                text += event.text
                if len(text) > 5:
                    threading.Thread(target=ancia.stop).start()
        done = stream.events[-1]
        assert done.status == "stopped" and done.usage["completion_tokens"] < 500
        stored = get_app().store.get_message(done.message_id)
        assert stored["status"] == "stopped" and stored["content"] == text


def test_ctrl_c_in_the_cell_stops_generation_cleanly(tiny):
    ancia.models.load()
    ancia.models.set_params("tiny", max_tokens=1000)
    with scripted(endless(), slow(0.01)):
        threading.Timer(0.5, lambda: os.kill(os.getpid(), signal.SIGINT)).start()
        response = ancia.chat("a very long answer please")
        assert response.status == "stopped" and response.usage["completion_tokens"] < 1000
        assert get_app().store.get_message(response.message_id)["status"] == "stopped"
        assert ancia.chat("still works?", chat=response.chat_id, max_tokens=3).status == "complete"


def test_second_turn_reuses_the_prompt_cache(tiny):
    first = ancia.chat("one")
    second = ancia.chat("two", chat=first.chat_id)
    assert first.usage["cached_tokens"] == 0
    assert second.usage["cached_tokens"] >= first.usage["prompt_tokens"]
    third = ancia.chat("three", chat=first.chat_id)
    assert third.usage["cached_tokens"] >= second.usage["prompt_tokens"]


@pytest.mark.parametrize("change", ["edit", "delete", "model"])
def test_prompt_cache_is_dropped_when_history_or_model_change(tiny, tiny_model_dir, tmp_path, change):
    first = ancia.chat("one")
    history = ancia.chats.history(first.chat_id)
    if change == "edit":
        ancia.chats.edit_message(first.chat_id, history[0]["id"], "one, edited")
    elif change == "delete":
        ancia.chats.delete_message(first.chat_id, history[1]["id"])
    else:  # another model's files (a copy: another file as far as a cache can tell)
        ancia.models.register("tiny-b", str(shutil.copytree(tiny_model_dir, tmp_path / "tiny-b")))
    second = ancia.chat("two", chat=first.chat_id, model="tiny-b" if change == "model" else None)
    assert second.usage["cached_tokens"] == 0


def test_changing_how_tokens_are_sampled_keeps_the_prompt_cache(tiny):
    first = ancia.chat("one")
    ancia.models.set_params("tiny", top_k=5, temperature=0.5)
    second = ancia.chat("two", chat=first.chat_id)
    assert second.usage["cached_tokens"] >= first.usage["prompt_tokens"]


def test_prompt_caches_are_bounded(tiny):
    caches = get_app().models.resident.caches.memory
    caches.max_chats = 2
    chats = [ancia.chat(f"chat {i}").chat_id for i in range(3)]
    assert chats[0] not in caches and chats[1] in caches and chats[2] in caches


def test_old_turns_are_dropped_to_fit_the_context_window_never_the_system_prompt(tiny):
    ancia.models.set_params("tiny", context_window=256, max_tokens=8)
    chat = ancia.chats.create("long", system="SYSTEM-RULES")
    for i in range(6):
        get_app().store.add_message(chat.id, "user", f"question {i} " + "word " * 30)
        get_app().store.add_message(chat.id, "assistant", f"answer {i} " + "word " * 30)
    events = list(chat.send("the latest question", stream=True, tools=False))
    notices = [e for e in events if isinstance(e, ev.Notice) and e.code == "context_trimmed"]
    assert len(notices) == 1 and "oldest message(s)" in notices[0].text
    done = events[-1]
    assert done.status == "complete" and done.usage["prompt_tokens"] + 8 <= 256
    runtime = get_app().models.runtime
    kept = runtime.tokenizer.decode(get_app().models.resident.caches.memory.take(chat.id, ("tiny", id(runtime))).tokens)
    assert "SYSTEM-RULES" in kept and "the latest question" in kept and "question 0" not in kept


def test_a_prompt_longer_than_the_context_window_is_a_clear_error_and_stores_nothing(tiny):
    ancia.models.set_params("tiny", context_window=256, max_tokens=8)
    response = ancia.chat("word " * 400, tools=False)
    assert response.status == "error" and "context window is 256" in response.error
    assert "nothing was stored" in response.error
    assert ancia.chats.list() == []  # the new chat went with the refused question

    chat = ancia.chats.create("kept")
    chat.send("a short question", tools=False)
    before = chat.history()
    refused = chat.send("word " * 400, tools=False)
    assert refused.status == "error" and chat.history() == before


def test_bad_input_raises_and_stores_nothing(tiny):
    chat = ancia.chats.create("empty")
    with pytest.raises(InvalidValueError, match="prompt is empty"):
        ancia.chat("   ", chat=chat.id)
    with pytest.raises(NotFoundError, match="No chat with id 4242"):
        ancia.chat("hello", chat=4242)
    with pytest.raises(ValueError, match="temperature must be in"):
        ancia.chat("hello", chat=chat.id, temperature=9)
    with pytest.raises(NotFoundError, match="Unknown model"):
        ancia.chat("hello", chat=chat.id, model="nope")
    assert chat.history() == [] and len(ancia.chats.list()) == 1


def test_per_call_options_apply_to_that_call_only(tiny):
    before = ancia.models.params("tiny")
    response = ancia.chat("short please", max_tokens=2, temperature=0.5, top_k=3)
    assert response.usage["completion_tokens"] <= 2
    stored = ancia.chats.history(response.chat_id)[-1]["params"]
    assert stored["max_tokens"] == 2 and stored["temperature"] == 0.5 and stored["top_k"] == 3
    assert ancia.models.params("tiny") == before


def test_regenerate_replaces_the_last_answer(tiny):
    chat = ancia.chats.create("regen")
    chat.send("hello")
    old = chat.history()[-1]["id"]
    again = chat.regenerate()
    history = chat.history()
    assert [m["role"] for m in history] == ["user", "assistant"]
    assert history[-1]["id"] == again.message_id != old


def test_an_untitled_chat_is_named_by_its_first_question_whoever_asks(tiny):
    chat = ancia.chats.create()
    assert chat.title == "New chat"
    chat.send("  Why is   the sky blue?  ")
    assert chat.title == "Why is the sky blue?"
    chat.rename("New chat")
    chat.send("and at night?")
    assert chat.title == "New chat"  # only an empty chat is named
    long = ancia.chat("word " * 40)
    assert ancia.chats.get(long.chat_id).title == ("word " * 40)[:60] + "…"  # 60 characters at most


def test_an_answer_knows_its_chat_and_messages_before_its_first_event(tiny):
    answer = ancia.chat("who am I?", stream=True)
    stored = {m["id"]: m for m in ancia.chats.history(answer.chat_id)}
    assert stored[answer.user_message_id]["role"] == "user"
    assert stored[answer.message_id]["role"] == "assistant"
    events = list(answer)
    assert events[0] == ev.MessageStarted(answer.chat_id, answer.message_id, answer.user_message_id, "tiny")
    assert all(e.chat_id == answer.chat_id for e in events)
    assert events[-1].message_id == answer.message_id


def test_a_chat_follower_gets_the_answers_of_that_chat_only(tiny):
    chat, other = ancia.chats.create("followed"), ancia.chats.create("not followed")
    seen: list[ev.Event] = []
    unsubscribe = get_app().conversations.subscribe(chat.id, seen.append)
    first = chat.send("one")
    other.send("elsewhere")
    assert [e.type for e in seen if e.type in ("message_started", "done")] == ["message_started", "done"]
    assert {e.chat_id for e in seen} == {chat.id} and seen[-1].message_id == first.message_id
    unsubscribe()
    chat.send("not seen")
    assert seen[-1].message_id == first.message_id


def test_a_follower_that_comes_in_the_middle_gets_the_answer_from_its_start(tiny):
    ancia.models.load()
    with scripted(endless(), slow(0.01)):
        answer = ancia.chat("a long one", max_tokens=300, stream=True)
        for event in answer:
            if isinstance(event, ev.Token):
                break
        late: list[ev.Event] = []
        get_app().conversations.subscribe(answer.chat_id, late.append)
        ancia.stop()
        assert answer.response().status == "stopped"
        assert late == answer.events and late[0].type == "message_started" and late[-1].type == "done"


def test_search_and_export(tiny):
    response = ancia.chat("Where is the Eiffel tower?")
    hits = ancia.chats.search("Eiffel")
    assert [(h["chat_id"], h["role"]) for h in hits] == [(response.chat_id, "user")]
    markdown = ancia.chats.export(response.chat_id, "md")
    assert markdown.startswith("# Where is the Eiffel tower?") and "**user**" in markdown
    data = json.loads(ancia.chats.export(response.chat_id, "json"))
    assert [m["role"] for m in data["messages"]] == ["user", "assistant"]
    with pytest.raises(ValueError, match="'md' or 'json'"):
        ancia.chats.export(response.chat_id, "pdf")


def test_keep_alive_zero_unloads_after_each_answer(tiny):
    ancia.settings.update(keep_alive=0)
    ancia.chat("hi")
    assert ancia.app_state()["loaded_model"] is None
    assert ancia.chat("and again").status == "complete"  # reloads on demand


def test_idle_model_is_unloaded_after_keep_alive(tiny):
    ancia.settings.update(keep_alive=1)
    ancia.chat("hi")
    assert ancia.app_state()["loaded_model"] == "tiny"
    deadline = time.monotonic() + 5
    while ancia.app_state()["loaded_model"] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert ancia.app_state()["loaded_model"] is None


def test_keep_alive_minus_one_keeps_the_model(tiny):
    ancia.settings.update(keep_alive=-1)
    ancia.chat("hi")
    time.sleep(1.2)
    assert ancia.app_state()["loaded_model"] == "tiny"


def test_bad_options_on_a_new_chat_leave_no_empty_chat_behind(tiny):
    for kwargs in (dict(temperature=9), dict(model="nope"), dict(context=["not_a_variable"]), dict(images=[b"png"])):
        with pytest.raises((ValueError, NotFoundError)):
            ancia.chat("hello", **kwargs)
    assert ancia.chats.list() == []


def test_tools_that_would_fill_the_window_are_left_out_with_a_notice(tiny):
    ancia.models.set_params("tiny", context_window=512, max_tokens=8)
    events = list(ancia.chat("what time is it?", tools=["system.time", "web.visit.website"], stream=True))
    notices = [e for e in events if isinstance(e, ev.Notice) and e.code == "tools_left_out"]
    assert len(notices) == 1 and "context window of 512" in notices[0].text
    assert events[-1].status == "complete"


def test_chat_options_are_checked_and_kept(tiny):
    chat = ancia.chats.create("options")
    assert chat.set_options(kernel_context=True) == {"kernel_context": True}
    with pytest.raises(ValueError, match="Unknown chat option"):
        chat.set_options(kernel_context="yes")
    with pytest.raises(ValueError, match="Unknown chat option"):
        chat.set_options(colour=True)
    assert chat.info()["options"] == {"kernel_context": True}


def test_deleting_a_chat_while_it_is_answered_ends_the_stream_cleanly(tiny):
    ancia.models.load()
    ancia.models.set_params("tiny", max_tokens=300)
    with scripted(endless(), slow(0.01)):
        stream = ancia.chat("a long one", stream=True)
        for event in stream:
            if isinstance(event, ev.Token):
                ancia.chats.delete(event_chat := stream.events[0].chat_id)
                break
        rest = list(stream)
        assert rest[-1].type == "done" and rest[-1].status == "error"
        errors = [e.message for e in rest if isinstance(e, ev.Error)]
        assert errors == ["The chat was deleted while it was being answered; nothing more was saved."]
        assert event_chat not in [c["id"] for c in ancia.chats.list()]
        assert ancia.chat("the engine still works", max_tokens=3).status == "complete"


def test_a_store_failing_as_the_answer_ends_still_ends_the_stream(tiny, monkeypatch):
    from ancia_jupyter.errors import StoreError

    store = get_app().store
    original = store.update_message

    def failing(message_id, **fields):
        if "timings" in fields:  # the last write: how the answer ended
            raise StoreError("The database at /x is full.")
        return original(message_id, **fields)

    monkeypatch.setattr(store, "update_message", failing)
    answer = ancia.chat("hello", stream=True, tools=False)
    events = list(answer)  # would wait forever without a ``done``
    assert events[-1].type == "done" and events[-1].status == "error"
    errors = [e.message for e in events if isinstance(e, ev.Error)]
    assert len(errors) == 1 and errors[0].startswith("Could not save the answer: The database at /x is full.")
