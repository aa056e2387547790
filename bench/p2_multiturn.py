"""P2: time-to-first-token of turn 10 ÷ turn 1 in one chat, with the per-chat prompt cache (and, on MLX,
without it for comparison).

Each turn adds a question of the same length (two-digit numbers throughout) and a fixed-length answer, so
turn 10's prompt is ~10× turn 1's while both have as many new words to read. With the cache
only the new tokens are processed and the ratio stays near 1; without it the whole history is re-read. Each
turn is timed in REPEATS chats and the median taken, since a shared 2-core VM has second-long hiccups.
llama.cpp keeps its live context across answers by itself, so "without the cache" is only measured on MLX.
"""

from __future__ import annotations

import statistics
import sys

from common import fresh_data_dir, report

RUNTIME = sys.argv[1] if len(sys.argv) > 1 else "auto"  # or mlx / llama_cpp
TURNS = 10
REPEATS = 5
# Each chat's questions start differently, so that turn 1 of a chat cannot reuse the previous chat's question
# from the model's live context (only the system prompt is shared, as between any two chats).
OPENINGS = ("Tell me", "Please give", "Share", "Name", "Could you state")


def ttfts(use_cache: bool, repeats: int = REPEATS) -> list[float]:
    """The median time to first token of each turn, over ``repeats`` chats."""
    import ancia_jupyter as ancia
    from ancia_jupyter.app import get_app

    get_app().models.resident.caches.memory.max_chats = 16 if use_cache else 0
    per_turn: list[list[float]] = [[] for _ in range(TURNS)]
    for repeat in range(repeats):
        chat = ancia.chats.create(f"P2 {repeat}")
        for turn in range(TURNS):
            response = chat.send(f"{OPENINGS[repeat]} one fact about the number {turn + 10} (question {turn + 10}).",
                                 tools=False)
            per_turn[turn].append(response.timings["time_to_first_token"])
    return [statistics.median(t) for t in per_turn]


def main() -> None:
    fresh_data_dir()
    import ancia_jupyter as ancia

    ancia.models.set_runtime(ancia.models.selected(), RUNTIME)
    ancia.models.set_params(temperature=0.0, max_tokens=24, context_window=4096)
    runtime = ancia.models.load()["runtime"]
    ancia.chat("warm up", max_tokens=2)
    with_cache = ttfts(True)
    report(f"P2 multi-turn TTFT turn 10 / turn 1, with cache ({runtime})", with_cache[-1] / with_cache[0], "≤ 1.3",
           f"median TTFT s per turn over {REPEATS} chats: " + " ".join(f"{t:.3f}" for t in with_cache))
    if runtime != "llama_cpp":
        without = ttfts(False, repeats=1)  # one chat: re-reading the history grows to ~50 s a turn on MLX
        report(f"P2 multi-turn TTFT turn 10 / turn 1, without cache ({runtime})", without[-1] / without[0],
               "(for comparison)", "TTFT s: " + " ".join(f"{t:.3f}" for t in without))


if __name__ == "__main__":
    main()
