"""P4: the store. Opening (the history of) a 10 000-message chat, and appending messages one by one.

Ratios are target ÷ measured for the open (50 ms) and measured ÷ target for appends (1 000/s): ≥ 1 meets both.
"""

from __future__ import annotations

import time

from common import fresh_data_dir, report

MESSAGES = 10_000


def main() -> None:
    fresh_data_dir()
    from ancia_jupyter.store import Store

    store = Store()
    chat = store.create_chat("P4")
    started = time.perf_counter()
    for i in range(MESSAGES):
        store.add_message(chat["id"], "user" if i % 2 == 0 else "assistant",
                          f"message {i}: " + "lorem ipsum dolor sit amet " * 8)
    appends = MESSAGES / (time.perf_counter() - started)
    store.close()

    opens = []
    for _ in range(5):
        started = time.perf_counter()
        reopened = Store()
        history = reopened.history(chat["id"])
        opens.append(time.perf_counter() - started)
        reopened.close()
    assert len(history) == MESSAGES
    report("P4 open a 10 000-message chat", 0.050 / min(opens), "≥ 1 (≤ 50 ms)", f"{min(opens) * 1000:.1f} ms")
    report("P4 appends per second", appends / 1000, "≥ 1 (≥ 1 000/s)", f"{appends:.0f} appends/s")


if __name__ == "__main__":
    main()
