"""P10: a question's first token in a 200-message chat right after a kernel restart ÷ the first token of a new
one-line chat, on the default model.

The first process fills three chats with 200 messages each, asks one question in each (reading the whole
window once, which writes the chat's prompt cache to disk) and exits. A second process, a restarted kernel,
asks a question in each long chat and a one-line question in three new chats, alternating, and compares
the medians. Without the caches on disk the long chats would read their whole window again (~4 s each).
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time

from common import fresh_data_dir, report

CHATS = 3
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


def first_token(answer) -> tuple[float, int]:
    started = time.perf_counter()
    seconds = 0.0
    for event in answer:
        if event.type == "token" and not seconds:
            seconds = time.perf_counter() - started
    return seconds, answer.done.usage["prompt_tokens"]


def main() -> None:
    fresh_data_dir()
    filled = subprocess.run([sys.executable, "-c", FILL.format(chats=CHATS)], capture_output=True, text=True,
                            check=True)
    chats = json.loads(filled.stdout.strip().splitlines()[-1])
    import ancia_jupyter as ancia  # the restarted kernel

    ancia.models.set_params(temperature=0.0, max_tokens=16, context_window=2048)
    ancia.models.load()
    long, short, sizes = [], [], []
    for i, chat in enumerate(chats):
        seconds, size = first_token(ancia.chat("And the last item?", chat=chat, stream=True, tools=False))
        long.append(seconds)
        sizes.append(size)
        short.append(first_token(ancia.chat(f"Hi number {i}!", stream=True, tools=False))[0])
    ratio = statistics.median(long) / statistics.median(short)
    report("P10 first token in a 200-message chat after a restart ÷ a new one-line chat's", ratio, "≤ 1.5",
           f"long chats {statistics.median(long) * 1000:.0f} ms (prompts of ~{statistics.median(sizes):.0f} "
           f"tokens), new chats {statistics.median(short) * 1000:.0f} ms ({CHATS} of each)")


if __name__ == "__main__":
    main()
