"""An answer always ends with ``done`` and keeps what it streamed, whichever write the database refuses.

A full disk, or another process holding ancia.db's write lock past the busy timeout, is played by the kernel's
own store refusing every write from a chosen one on (question, first token, a later save, the tool call, the
tool result, the final status) until it is "freed". Then the answer must end at once with one line saying
the database could not be written, ``ancia.chat()`` must return every character streamed, and what streamed
must reach the database once it accepts writes again."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest
from scripted import endless, says, scripted, slow

import ancia_jupyter as ancia
from ancia_jupyter import events as ev
from ancia_jupyter.app import get_app
from ancia_jupyter.engine.answer import Answer
from ancia_jupyter.errors import StoreError

FULL = "Cannot write to ancia.db (database or disk is full). The disk is full: free some space and try again."
TOOL_CALL = '<tool_call>{"name": "fahrenheit", "arguments": {"celsius": 21}}</tool_call>'
LONG = "One two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen."


class RefusingStore:
    """From the first write that matches ``point`` on, every write raises as a full disk does, until
    ``free()``. The writes that trip it are counted, so a test can see it was reached."""

    def __init__(self, monkeypatch, point: str) -> None:
        self.point, self.tripped, self.freed, self.saves = point, None, False, 0
        store = get_app().store
        add, update = store.add_message, store.update_message

        def add_message(chat_id, role, content="", **fields):
            self._check(role == "user" and point == "question" or role == "tool" and point == "tool_result")
            return add(chat_id, role, content, **fields)

        def update_message(message_id, **fields):
            partial = fields.get("notify") is False and set(fields) == {"notify", "content"}
            self.saves += partial
            self._check(partial and point == "first_token" or partial and point == "flush" and self.saves >= 3
                         or "tool_calls" in fields and point == "tool_call" or "timings" in fields and point == "final")
            return update(message_id, **fields)

        monkeypatch.setattr(store, "add_message", add_message)
        monkeypatch.setattr(store, "update_message", update_message)

    def _check(self, matches: bool) -> None:
        if self.freed:
            return
        if matches and self.tripped is None:
            self.tripped = time.monotonic()
        if self.tripped is not None:
            raise StoreError(FULL)

    def free(self) -> None:
        self.freed = True


@pytest.fixture
def fahrenheit(tiny):
    ancia.models.load()

    @ancia.tool
    def fahrenheit(celsius: float) -> float:
        """Convert a temperature from Celsius to Fahrenheit."""
        return celsius * 9 / 5 + 32

    return fahrenheit


def stored(message_id: int) -> dict:
    return next(m for chat in get_app().store.list_chats() for m in get_app().store.history(chat["id"])
                if m["id"] == message_id)


def wait_until(condition, timeout: float = 8.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


@pytest.mark.parametrize("point", ["first_token", "flush", "tool_call", "tool_result", "final"])
def test_an_answer_whose_write_is_refused_ends_at_once_keeps_every_character_and_is_saved_later(
        fahrenheit, monkeypatch, point):
    refusing = RefusingStore(monkeypatch, point)
    texts = (TOOL_CALL, LONG) if point in ("tool_call", "tool_result") else (LONG,)
    with scripted(says(*texts), slow(0.03)):
        answer = ancia.chat("What is 21 °C in Fahrenheit?", stream=True, tools=["fahrenheit"], max_tokens=80)
        events = list(answer)
    ended = time.monotonic()
    done = events[-1]
    assert refusing.tripped is not None, "the refused write was reached"
    assert isinstance(done, ev.Done) and done.status == "error"
    assert ended - refusing.tripped < 3.0
    errors = [e.message for e in events if isinstance(e, ev.Error)]
    assert len(errors) == 1 and errors[0].startswith("Could not save the answer:") and "full" in errors[0]
    assert "\n" not in errors[0]
    streamed = "".join(e.text for e in events if isinstance(e, ev.Token) and e.message_id == done.message_id)
    response = answer.response()
    assert response.text == streamed and response.status == "error"
    assert not get_app().conversations.generating()

    refusing.free()  # the disk has room again: what streamed reaches the database by itself
    ended_as = "complete" if point == "final" else "error"  # refused at the very end: the answer was whole
    assert wait_until(lambda: stored(done.message_id)["content"] == streamed
                      and stored(done.message_id)["status"] == ended_as)
    if point == "tool_result":
        assert wait_until(lambda: any(m["role"] == "tool" for m in get_app().store.history(done.chat_id)))
    assert ancia.models.unload() is True  # no answer holds the model any more


def test_a_question_the_database_refuses_is_an_error_in_one_line_and_leaves_no_chat(fahrenheit, monkeypatch):
    refusing = RefusingStore(monkeypatch, "question")
    with pytest.raises(StoreError, match="full"):
        ancia.chat("Remember the word PERIWINKLE.")
    refusing.free()
    assert not any(c["title"].startswith("Remember the word") for c in ancia.chats.list())
    assert ancia.chat("still works?", max_tokens=3).status == "complete"


def test_what_waits_is_written_before_the_next_question(fahrenheit, monkeypatch):
    refusing = RefusingStore(monkeypatch, "final")
    with scripted(says("Kept for later.")):
        first = ancia.chat("first", tools=False)
    refusing.free()
    get_app().engine.pending.retry_every = 3600  # no background retry: only the next question writes it
    with scripted(says("Second.")):
        second = ancia.chat("second", tools=False)
    assert stored(first.message_id)["content"] == "Kept for later." and second.status == "complete"


def test_what_waits_is_written_when_the_kernel_ends(fahrenheit, monkeypatch):
    from ancia_jupyter.app import close_app

    refusing = RefusingStore(monkeypatch, "final")
    get_app().engine.pending.retry_every = 3600
    with scripted(says("Saved at exit.")):
        response = ancia.chat("first", tools=False)
    refusing.free()
    close_app()
    assert stored(response.message_id)["content"] == "Saved at exit."


def test_a_second_ctrl_c_frees_a_cell_waiting_on_an_answer_that_never_ends():
    answer = Answer(1, 2, 1, "tiny")  # nothing will ever answer it
    interrupts = threading.Timer(0.3, lambda: os.kill(os.getpid(), signal.SIGINT))
    again = threading.Timer(0.8, lambda: os.kill(os.getpid(), signal.SIGINT))
    started = time.monotonic()
    interrupts.start()
    again.start()
    response = answer.response()
    assert time.monotonic() - started < 3.0
    assert answer.stop_requested() and response.status == "stopped"


def test_one_ctrl_c_waits_a_few_seconds_at_most_for_done():
    answer = Answer(1, 2, 1, "tiny")
    threading.Timer(0.2, lambda: os.kill(os.getpid(), signal.SIGINT)).start()
    started = time.monotonic()
    assert answer.response().status == "stopped"
    assert time.monotonic() - started < 7.0


def test_another_process_holding_the_write_lock_past_the_busy_timeout_loses_nothing(tiny, monkeypatch, ancia_home):
    """The real thing: another process takes ancia.db's write lock and keeps it; the answer ends in error
    once the busy timeout (shortened here) passes, and is written when the lock is let go."""
    import subprocess
    import sys

    from ancia_jupyter.app import close_app
    from ancia_jupyter.store import files as store_files

    close_app()
    monkeypatch.setattr(store_files, "BUSY_TIMEOUT_S", 1)
    ancia.models.load()
    hold = ("import sqlite3, sys\n"
            f"c = sqlite3.connect({str(ancia_home / 'ancia.db')!r}, isolation_level=None)\n"
            "c.execute('BEGIN IMMEDIATE'); print('held', flush=True); sys.stdin.readline(); c.execute('COMMIT')")
    with scripted(endless(), slow(0.02)):
        answer = ancia.chat("Tell me something.", stream=True, tools=False, max_tokens=400)  # ~8 s
        holder = subprocess.Popen([sys.executable, "-c", hold], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  text=True)
        try:
            assert holder.stdout.readline().strip() == "held"
            events = list(answer)
            assert events[-1].status == "error" and events[-1].usage["completion_tokens"] < 300  # ended early
            error = next(e.message for e in events if isinstance(e, ev.Error))
            assert error.startswith("Could not save the answer:") and "locked" in error
            streamed = "".join(e.text for e in events if isinstance(e, ev.Token))
            assert streamed and answer.response().text == streamed
        finally:
            holder.stdin.write("\n")
            holder.stdin.close()
            holder.wait(10)
    assert wait_until(lambda: stored(answer.message_id)["content"] == streamed)


def test_what_waits_is_written_when_the_kernel_process_exits(tiny_model_dir, ancia_home):
    """No close_app() here: the process just ends, as a kernel does, and its exit writes what waited."""
    import subprocess
    import sys

    from scripted import child_env

    code = f"""
import ancia_jupyter as ancia, scripted, test_answer_always_ends as t
from ancia_jupyter.app import get_app
ancia.models.register("tiny", {str(tiny_model_dir)!r}); ancia.models.select("tiny")
ancia.models.set_params("tiny", temperature=0.0, max_tokens=60)
class Patch:
    def setattr(self, owner, name, value): setattr(owner, name, value)
refusing = t.RefusingStore(Patch(), "final")
get_app().engine.pending.retry_every = 3600
with scripted.scripted(scripted.says("Written at exit.")):
    response = ancia.chat("first", tools=False)
refusing.free()
print(response.message_id, flush=True)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env=child_env(dict(os.environ)), cwd=os.path.dirname(__file__))
    assert done.returncode == 0, done.stderr[-2000:]
    message_id = int(done.stdout.strip().splitlines()[-1])
    assert stored(message_id)["content"] == "Written at exit."
