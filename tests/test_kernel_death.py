"""A kernel killed in the middle of an answer (kill -9) loses nothing already said: the question and the
answer so far are in the database when ancia next opens it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from scripted import child_env

from ancia_jupyter.store.database import Store

CHILD = """
import sys
import ancia_jupyter as ancia
from scripted import endless, install, slow

ancia.models.register("tiny", sys.argv[1])
ancia.models.select("tiny")
ancia.models.set_params("tiny", temperature=0.0, max_tokens=2000)
ancia.models.load()
install(endless(), slow(0.02))
for event in ancia.chat("a question that must survive", stream=True, tools=False):
    if event.type == "token":
        print("token", flush=True)
"""


def test_kill_9_mid_answer_keeps_the_question_and_the_answer_so_far(ancia_home, tiny_model_dir):
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(tiny_model_dir)], stdout=subprocess.PIPE,
                             env=child_env(os.environ), text=True)
    try:
        tokens, first = 0, None
        while tokens < 200 or time.monotonic() - first < 1.5:  # past the first save of a growing answer
            line = child.stdout.readline()
            assert line, "the child ended before it was killed"
            tokens += 1
            first = first or time.monotonic()
        os.kill(child.pid, signal.SIGKILL)
        child.wait(10)
    finally:
        if child.poll() is None:
            child.kill()
    store = Store(ancia_home / "ancia.db")
    chat = store.list_chats()[0]
    history = store.history(chat["id"])
    assert [(m["role"], m["status"]) for m in history] == [("user", "complete"), ("assistant", "partial")]
    assert history[0]["content"] == "a question that must survive"
    assert len(history[1]["content"]) > 0
    assert store.pragma("integrity_check") == "ok"
