"""P2-long: in a chat that has outgrown its context window (200 stored messages), the median time to first
token over 20 further questions ÷ the same median in a chat that fits; and the time to fit a 10 000-message
chat into the window (first time, counting every message, and then per question, from the remembered counts).
"""

from __future__ import annotations

import statistics
import sys
import time

from common import fresh_data_dir, report

RUNTIME = sys.argv[1] if len(sys.argv) > 1 else "auto"  # or mlx / llama_cpp

QUESTIONS = 20


def ttfts(chat) -> list[float]:
    out = []
    for i in range(QUESTIONS):
        response = chat.send(f"Question {i}: name one fact about the number {i + 3}.", tools=False)
        out.append(response.timings["time_to_first_token"])
    return out


def main() -> None:
    fresh_data_dir()
    import ancia_jupyter as ancia

    ancia.models.set_runtime(ancia.models.selected(), RUNTIME)
    from ancia_jupyter.app import get_app

    ancia.models.set_params(temperature=0.0, max_tokens=24, context_window=1024)
    info = ancia.models.load()
    app = get_app()
    store = app.store
    long = ancia.chats.create("long")
    for i in range(100):
        store.add_message(long.id, "user", f"Old question {i}: what do you know about topic number {i}?")
        store.add_message(long.id, "assistant", f"Old answer {i}: topic {i} is " + "interesting " * 8 + ".")
    short = ancia.chats.create("short")
    ancia.chat("warm up", max_tokens=2, tools=False)
    outgrown, fitting = ttfts(long), ttfts(short)
    ratio = statistics.median(outgrown) / statistics.median(fitting)
    report("P2-long TTFT median, outgrown chat ÷ a chat that fits", ratio, "≤ 1.5",
           f"{info['runtime']}, window 1024; outgrown s: " + " ".join(f"{t:.2f}" for t in outgrown)
           + "; fits s: " + " ".join(f"{t:.2f}" for t in fitting))

    big = [{"id": i + 1, "role": "user" if i % 2 == 0 else "assistant", "content": f"message {i} " + "word " * 20,
            "updated_at": 0.0, "attachments": [], "tool_calls": None} for i in range(10_000)]
    head = [{"role": "system", "content": ancia.settings.get()["system_prompt"]}]
    fitter, runtime = app.engine.fitter, app.models.runtime
    started = time.perf_counter()
    fitter.fit(999_999, runtime, head, big, None, 1024, 64)
    first = time.perf_counter() - started
    times = []
    for _ in range(5):
        started = time.perf_counter()
        fitter.fit(999_999, runtime, head, big, None, 1024, 64)
        times.append(time.perf_counter() - started)
    report("P2-long fit a 10 000-message chat per question (ms)", statistics.median(times) * 1000, "< 50 ms",
           f"first fit, counting every message once: {first * 1000:.0f} ms")


if __name__ == "__main__":
    main()
