"""P2: time-to-first-token of turn 10 ÷ turn 1 in one chat, with the per-chat prompt cache and without it.

Each turn adds a question and a fixed-length answer, so turn 10's prompt is ~10× turn 1's. With the cache
only the new tokens are processed and the ratio stays near 1; without it the whole history is re-read.
"""

from __future__ import annotations

import sys

from common import fresh_data_dir, report

RUNTIME = sys.argv[1] if len(sys.argv) > 1 else "auto"  # or mlx / llama_cpp

TURNS = 10


def ttft_ratio(use_cache: bool) -> tuple[float, list[float]]:
    import ancia_jupyter as ancia
    from ancia_jupyter.app import get_app

    get_app().engine.caches.max_chats = 16 if use_cache else 0
    chat = ancia.chats.create("P2")
    ttfts = []
    for turn in range(TURNS):
        response = chat.send(f"Question {turn + 1}: tell me one fact about the number {turn + 7}.", tools=False)
        ttfts.append(response.timings["time_to_first_token"])
    return ttfts[-1] / ttfts[0], ttfts


def main() -> None:
    fresh_data_dir()
    import ancia_jupyter as ancia

    ancia.models.set_runtime(ancia.models.selected(), RUNTIME)

    ancia.models.set_params(temperature=0.0, max_tokens=24, context_window=4096)
    ancia.models.load()
    ancia.chat("warm up", max_tokens=2)
    cached, with_cache = ttft_ratio(True)
    uncached, without_cache = ttft_ratio(False)
    runtime = ancia.models.info(ancia.models.selected())["runtime"]
    report(f"P2 multi-turn TTFT turn 10 / turn 1, with cache ({runtime})", cached, "≤ 1.3",
           "TTFT s: " + " ".join(f"{t:.3f}" for t in with_cache))
    report(f"P2 multi-turn TTFT turn 10 / turn 1, without cache ({runtime})", uncached, "(for comparison)",
           "TTFT s: " + " ".join(f"{t:.3f}" for t in without_cache))


if __name__ == "__main__":
    main()
