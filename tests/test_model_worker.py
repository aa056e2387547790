"""The model worker steps generations token by token: short jobs and other chats never wait for a long
answer's end."""

from __future__ import annotations

import threading
import time

import pytest
from scripted import endless, says, scripted, slow

import ancia_jupyter as ancia
from ancia_jupyter import events as ev
from ancia_jupyter.app import get_app
from ancia_jupyter.model_manager.scheduler import Scheduler
from ancia_jupyter.runtimes import Chunk


def first_token(answer) -> float:
    """Seconds from now until ``answer``'s first token (or its end)."""
    started = time.monotonic()
    for event in answer:
        if isinstance(event, (ev.Token, ev.Done)):
            return time.monotonic() - started
    return time.monotonic() - started


def test_a_short_job_runs_between_the_tokens_of_a_long_answer(tiny):
    ancia.models.load()
    with scripted(endless(), slow(0.02)):
        answer = ancia.chat("Tell me everything.", stream=True, tools=False, max_tokens=400)  # ~8 s
        assert first_token(answer) < 5
        started = time.monotonic()
        assert get_app().models.resident.call(lambda: "between two tokens") == "between two tokens"
        waited = time.monotonic() - started
        still_going = not answer.finished
        answer.stop()
        answer.response()
    assert still_going and waited < 1.0


def test_two_chats_answering_at_once_take_turns(tiny):
    ancia.models.load()
    arrivals: dict[int, list[float]] = {}
    with scripted(endless(), slow(0.01)):
        answers = [ancia.chat(f"Question {i}", stream=True, tools=False, max_tokens=120) for i in range(2)]
        threads = [threading.Thread(target=lambda a=a: arrivals.setdefault(a.chat_id, [
            time.monotonic() for e in a if isinstance(e, ev.Token)])) for a in answers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    first, second = (arrivals[a.chat_id] for a in answers)
    assert len(first) >= 50 and len(second) >= 50
    assert second[0] < first[-1] and first[0] < second[-1]  # both were being written at the same time
    halfway = (min(first[0], second[0]) + max(first[-1], second[-1])) / 2
    done_by_half = [sum(t < halfway for t in times) / len(times) for times in (first, second)]
    assert all(0.25 < share < 0.75 for share in done_by_half)  # fairly: neither waited for the other


def test_a_short_question_starts_while_another_chat_streams_a_long_answer(tiny):
    ancia.models.load()
    with scripted(says(None, "Yes."), endless(), slow(0.02)):
        long = ancia.chat("Write a long essay.", stream=True, tools=False, max_tokens=500)  # ~10 s
        first_token(long)
        short = ancia.chat("Quick one?", stream=True, tools=False, max_tokens=5)
        waited = first_token(short)
        still_going = not long.finished
        short.response()
        ancia.stop()
        long.response()
    assert still_going and waited < 2.0


def test_two_real_chats_answered_at_once_each_answer_their_own_question(smollm2):
    """Stepped in turn on one model, neither answer leaks into the other. (Not bit for bit what each would
    say alone: sequences sharing a context round their sums a little differently.)"""
    answers = [ancia.chat(q, tools=False, max_tokens=24, stream=True)
               for q in ("What is the capital of France?", "Name three colours.")]
    capital, colours = (a.response().text for a in answers)
    assert "Paris" in capital and not any(c in capital.lower() for c in ("red", "blue", "green"))
    assert any(c in colours.lower() for c in ("red", "blue", "green", "yellow")) and "Paris" not in colours


def test_a_generation_left_early_is_closed_on_the_worker():
    closed_on: list[str] = []
    scheduler = Scheduler(name="test-worker")

    def stream():
        try:
            while True:
                yield Chunk(text="x")
        finally:
            closed_on.append(threading.current_thread().name)

    generation = scheduler.generate(stream)
    for _ in generation:
        break
    scheduler.call(lambda: None)  # the worker has taken its next turn
    scheduler.call(lambda: None)
    assert closed_on == ["test-worker"]
    scheduler.close()


def test_an_error_in_a_stream_reaches_its_asker_and_the_worker_goes_on():
    scheduler = Scheduler(name="test-worker")

    def broken():
        yield Chunk(text="a")
        raise ValueError("the runtime broke")

    with pytest.raises(ValueError, match="the runtime broke"):
        list(scheduler.generate(broken))
    assert scheduler.call(lambda: 42) == 42
    scheduler.close()


def test_housekeeping_asked_for_without_quiet_runs_once_the_worker_is_free_or_is_claimed_by_a_job():
    """A read-ahead runs as soon as no job and no generation waits (not after a quiet second); one still
    waiting can be taken back, to run inside the job of the question that needs it, and then runs once."""
    scheduler = Scheduler(name="test-worker")
    ran: list[str] = []
    release = threading.Event()
    busy = scheduler.submit(release.wait)  # the worker is busy: nothing idle runs yet
    scheduler.when_idle("ahead", lambda: ran.append("ahead"), quiet=0.0)
    scheduler.when_idle("save", lambda: ran.append("save"))
    claimed = scheduler.claim_idle("ahead")
    assert claimed is not None and scheduler.claim_idle("ahead") is None
    scheduler.submit(lambda: (claimed(), ran.append("question")))
    release.set()
    busy.result(5)
    assert scheduler.settle(5)
    assert ran == ["ahead", "question", "save"]

    ran.clear()
    started = time.monotonic()
    scheduler.when_idle("ahead", lambda: ran.append(f"{time.monotonic() - started:.3f}"), quiet=0.0)
    deadline = time.monotonic() + 5
    while not ran and time.monotonic() < deadline:
        time.sleep(0.01)
    assert ran and float(ran[0]) < 0.5  # not a quiet second later
    scheduler.close()


def test_housekeeping_waits_for_a_quiet_second_and_never_sits_between_two_questions():
    """Saving a prompt cache to disk is housekeeping: it runs once nothing has run for a second, so the next
    question of a conversation going on never waits behind it; an unload runs it at once."""
    from ancia_jupyter.model_manager.scheduler import HOUSEKEEPING_AFTER

    scheduler = Scheduler(name="test-worker")
    ran: list[float] = []
    scheduler.when_idle("save", lambda: ran.append(time.monotonic()))
    for _ in range(6):  # a question every 0.3 s: never a quiet second
        time.sleep(0.3)
        scheduler.call(lambda: None)
    last_job = time.monotonic()
    assert ran == []
    assert scheduler.settle(5)
    assert len(ran) == 1 and ran[0] - last_job >= HOUSEKEEPING_AFTER - 0.05
    scheduler.when_idle("save", lambda: ran.append(time.monotonic()))
    scheduler.call(scheduler.run_idle_now)  # as an unload does, before its model goes
    assert len(ran) == 2
    scheduler.close()
