"""An answer cut at the max_tokens limit says so and can be continued: the same message grows, the model
reads its words so far as its own unfinished turn."""

from __future__ import annotations

import pytest
from scripted import endless, says, scripted

import ancia_jupyter as ancia
from ancia_jupyter import events as ev
from ancia_jupyter.app import get_app
from ancia_jupyter.errors import InvalidValueError


def stored(chat_id: int) -> dict:
    return ancia.chats.history(chat_id)[-1]


def test_an_answer_cut_at_the_limit_says_so_and_continues_in_the_same_message(tiny):
    ancia.models.set_params("tiny", max_tokens=6)
    with scripted(endless()):
        events = list(ancia.chat("Tell me a long story.", stream=True, tools=False))
    done = events[-1]
    assert isinstance(done, ev.Done) and done.finish_reason == "length" and done.status == "complete"
    notices = [e for e in events if isinstance(e, ev.Notice) and e.code == "length_limit"]
    assert len(notices) == 1 and "6-token limit" in notices[0].text
    first = stored(done.chat_id)
    assert first["finish_reason"] == "length" and first["id"] == done.message_id

    with scripted(says(" And they lived happily.")):
        more = ancia.chats.get(done.chat_id).continue_(max_tokens=40)
    after = stored(done.chat_id)
    assert after["id"] == first["id"] and more.message_id == first["id"]  # the same message
    assert after["content"] == more.text and more.text.startswith(first["content"])
    assert more.text.endswith("And they lived happily.")
    assert after["finish_reason"] == "stop" and after["status"] == "complete"
    assert [m["role"] for m in ancia.chats.history(done.chat_id)] == ["user", "assistant"]


def test_the_model_reads_the_cut_answer_as_its_own_unfinished_turn(tiny):
    ancia.models.set_params("tiny", max_tokens=6)
    with scripted(says("The first part")):
        ancia.models.set_params("tiny", max_tokens=3)
        response = ancia.chat("Go on.", tools=False)
    runtime = get_app().models.runtime
    prompts = []
    original = runtime.stream

    def spy(prompt, params, **options):
        prompts.append(prompt)
        return original(prompt, params, **options)

    runtime.stream = spy
    try:
        with scripted(says(".")):
            ancia.chats.get(response.chat_id).continue_()
    finally:
        del runtime.stream
    tail = runtime.tokenizer.decode(prompts[0][-len(runtime.text_tokens(response.text)):])
    assert tail == response.text  # the prompt ends with the words so far, no end of turn after them


def test_only_an_answer_cut_short_and_last_can_be_continued(tiny):
    with scripted(says("Done.")):
        response = ancia.chat("Say done.", tools=False)
    chat = ancia.chats.get(response.chat_id)
    with pytest.raises(InvalidValueError, match="ended on its own"):
        chat.continue_()
    ancia.models.set_params("tiny", max_tokens=4)
    with scripted(endless()):
        cut = ancia.chat("Again", chat=response.chat_id, tools=False)
    with pytest.raises(InvalidValueError, match="last answer"):
        chat.continue_(message_id=response.message_id)
    with pytest.raises(InvalidValueError, match="Unknown option"):
        chat.continue_(colour="red")
    assert stored(cut.chat_id)["finish_reason"] == "length"


def test_a_stopped_answer_can_be_continued_too(tiny):
    with scripted(endless()):
        answer = ancia.chat("Count forever.", stream=True, tools=False, max_tokens=200)
        for event in answer:
            if isinstance(event, ev.Token) and event.text.strip():
                answer.stop()
        first = answer.response()
    assert first.status == "stopped"
    with scripted(says(" Then it ended.")):
        more = ancia.chats.get(first.chat_id).continue_(max_tokens=40)
    assert more.text.endswith("Then it ended.") and more.message_id == first.message_id
    assert more.text.startswith(first.text)


def test_the_real_default_model_continues_where_it_was_cut(smollm2):
    cut = ancia.chat("Write three sentences about the sea.", tools=False, max_tokens=8)
    assert stored(cut.chat_id)["finish_reason"] == "length"
    more = ancia.chats.get(cut.chat_id).continue_(max_tokens=24)
    assert more.text.startswith(cut.text) and len(more.text) > len(cut.text)
    assert stored(cut.chat_id)["content"] == more.text
