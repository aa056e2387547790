"""P10: a question's first token in a 200-message chat right after a kernel restart ÷ the first token of the
same question in a new chat, on the default model.

The first process fills five chats with 200 messages each, asks one question in each (reading the whole
window once, which writes the chat's prompt cache to disk) and exits. Then, five times, a new process (a
restarted kernel) loads the model, asks a question in one long chat, and asks the same question in a new
chat; the medians are compared. The same words in both, so the two differ only in the chat they are asked
in. Without the caches on disk the long chats would read their whole window again (~4 s each).
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys

from common import fresh_data_dir, report

QUESTIONS = ("Which one came first?", "What was the second?", "How many were there?", "Which was the largest?",
             "What came last?")
FILL = """
import ancia_jupyter as ancia
from ancia_jupyter.app import close_app, get_app
ancia.models.set_params(temperature=0.0, max_tokens=16, context_window=2048)
store = get_app().store
ids = []
for c in range({chats}):
    chat = ancia.chats.create(f"Long chat {{c}}").id
    for i in range(100):  # ~1 400 tokens in all, as a long chat that still fits the window
        store.add_message(chat, "user", f"{{c}}.{{i * 3}}")
        store.add_message(chat, "assistant", "ok", model_id=ancia.models.selected())
    ancia.chat("Sum them.", chat=chat, tools=False)
    ids.append(chat)
assert get_app().models.resident.scheduler.settle(300)
close_app()
print(ids)
"""
RESTARTED = """
import json, time
import ancia_jupyter as ancia

def first_token(answer):
    started, seconds = time.perf_counter(), 0.0
    for event in answer:
        if event.type == "token" and not seconds:
            seconds = time.perf_counter() - started
    return seconds, answer.done.usage["prompt_tokens"]

ancia.models.set_params(temperature=0.0, max_tokens=16, context_window=2048)
ancia.models.load()
long, size = first_token(ancia.chat({question!r}, chat={chat}, stream=True, tools=False))
new, _ = first_token(ancia.chat({question!r}, stream=True, tools=False))
print(json.dumps([long, new, size]))
"""


def run(code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stdout.strip().splitlines()[-1]


def main() -> None:
    fresh_data_dir()
    chats = json.loads(run(FILL.format(chats=len(QUESTIONS))))
    long, short, sizes = [], [], []
    for chat, question in zip(chats, QUESTIONS, strict=True):
        seconds, new, size = json.loads(run(RESTARTED.format(chat=chat, question=question)))
        long.append(seconds)
        short.append(new)
        sizes.append(size)
    ratio = statistics.median(long) / statistics.median(short)
    report("P10 first token in a 200-message chat after a restart ÷ the same question in a new chat", ratio,
           "≤ 1.5", f"long chats {statistics.median(long) * 1000:.0f} ms (prompts of ~{statistics.median(sizes):.0f} "
           f"tokens), new chats {statistics.median(short) * 1000:.0f} ms ({len(QUESTIONS)} restarts)")


if __name__ == "__main__":
    main()
