"""P8: a short question's time to first token while another chat streams a 500-token answer, ÷ the same
question asked alone, on the default model (llama.cpp here).

The model worker steps generations a token at a time, so the short question's prompt is read between the
long answer's tokens instead of after its end. Alone and busy runs alternate, each question new (no prompt
cache helps one more than the other), and medians are reported. Also printed: how much the long answer's
decode slowed while the short one was answered.
"""

from __future__ import annotations

import statistics
import threading
import time

from common import fresh_data_dir, report

LONG_TOKENS = 500
SHORT_TOKENS = 16
RUNS = 5
TOPICS = ["rivers", "owls", "bread", "glass", "tides", "maps", "bees", "salt", "kites", "moss", "clocks", "ink"]


def first_token(answer) -> float:
    started = time.perf_counter()
    for event in answer:
        if event.type == "token":
            seconds = time.perf_counter() - started
            answer.response()
            return seconds
    raise AssertionError("the answer had no token")


def main() -> None:
    fresh_data_dir()
    import ancia_jupyter as ancia

    model = ancia.models.selected()
    ancia.models.set_params(temperature=0.0, context_window=2048)
    info = ancia.models.load()
    print(f"ancia runs {model} on {info['runtime']}", flush=True)
    first_token(ancia.chat("Warm up.", stream=True, tools=False, max_tokens=4))

    def short(i: int) -> float:
        return first_token(ancia.chat(f"In one sentence, what are {TOPICS[i]}?", stream=True, tools=False,
                                      max_tokens=SHORT_TOKENS))

    alone, busy = [], []
    for i in range(RUNS):
        alone.append(short(2 * i))
        long = ancia.chat(f"Write a very long essay about {TOPICS[2 * i + 1]}, with many details.", stream=True,
                          tools=False, max_tokens=LONG_TOKENS)
        ticks: list[float] = []
        reader = threading.Thread(target=lambda a=long, ticks=ticks: ticks.extend(
            time.perf_counter() for e in a if e.type == "token"))
        reader.start()
        while len(ticks) < 20:  # the long answer is well under way
            time.sleep(0.01)
        busy.append(short(2 * i + 1))
        streaming = not long.finished
        ancia.stop(long.chat_id)
        reader.join()
        assert streaming, "the long answer ended before the short question was answered"
    ratio = statistics.median(busy) / statistics.median(alone)
    report("P8 first token of a short question while another chat streams ÷ alone", ratio, "≤ 2",
           f"alone {statistics.median(alone) * 1000:.0f} ms, while a {LONG_TOKENS}-token answer streams "
           f"{statistics.median(busy) * 1000:.0f} ms ({info['runtime']}, {RUNS} runs each)")


if __name__ == "__main__":
    main()
