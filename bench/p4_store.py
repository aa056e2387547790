"""P4: the store. Opening (the history of) a 10 000-message chat, and appending messages one by one;
then a long-used file of 200 chats × 1 000 messages: listing the chats, opening one, deleting one.

Ratios are target ÷ measured for the opens, lists and deletes, and measured ÷ target for appends
(1 000/s): ≥ 1 meets the target.
"""

from __future__ import annotations

import random
import time

from common import fresh_data_dir, report

MESSAGES = 10_000
CHATS, PER_CHAT = 200, 1_000
DELETE_TARGET_S = 2.0  # deleting a chat clears its words from the search index too


def best_of(runs: int, action) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return min(times)


def appends_and_open() -> None:
    fresh_data_dir()
    from ancia_jupyter.store.database import Store

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


def fill(store, rng: random.Random) -> None:
    """200 chats of 1 000 messages of varied words, written in one transaction (the bench measures
    reads and deletes, not how the file was filled)."""
    words = ["".join(rng.choice("abcdefghiklmnoprstuvy") for _ in range(rng.randint(2, 9))) for _ in range(20_000)]
    now = time.time()
    conn = store.db.conn
    conn.execute("BEGIN IMMEDIATE")
    conn.executemany("INSERT INTO chats (title, options, created_at, updated_at) VALUES (?, '{}', ?, ?)",
                     [(f"chat {c}", now + c, now + c) for c in range(CHATS)])
    ids = [row[0] for row in conn.execute("SELECT id FROM chats ORDER BY id")]
    conn.executemany(
        "INSERT INTO messages (chat_id, role, content, created_at, updated_at) VALUES (?, ?, ?, ?, ?)",
        ((chat_id, "user" if i % 2 == 0 else "assistant", " ".join(rng.choices(words, k=40)), now, now)
         for chat_id in ids for i in range(PER_CHAT)),
    )
    conn.execute("COMMIT")


def long_used_file() -> None:
    fresh_data_dir()
    from ancia_jupyter.store.database import Store

    rng = random.Random(4)
    store = Store()
    started = time.perf_counter()
    fill(store, rng)
    filled = time.perf_counter() - started
    store.close()
    store = Store()
    chats = store.list_chats()
    assert len(chats) == CHATS and all(c["message_count"] == PER_CHAT for c in chats)
    listing = best_of(5, store.list_chats)
    chat_ids = [c["id"] for c in chats]
    opening = best_of(5, lambda: store.history(rng.choice(chat_ids)))
    victim = rng.choice(chat_ids)
    message = store.history(victim)[-1]["id"]
    deleting_message = best_of(1, lambda: store.delete_message(victim, message))
    deleting_chat = best_of(1, lambda: store.delete_chat(victim))
    size = store.path.stat().st_size / 1e6
    store.close()
    scale = f"{CHATS} chats × {PER_CHAT} messages, {size:.0f} MB, filled in {filled:.1f} s"
    report("P4 list 200 chats of 1 000 messages", 0.050 / listing, "≥ 1 (≤ 50 ms)",
           f"{listing * 1000:.1f} ms ({scale})")
    report("P4 open a chat among 200", 0.050 / opening, "≥ 1 (≤ 50 ms)", f"{opening * 1000:.1f} ms")
    report("P4 delete a message among 200 000", DELETE_TARGET_S / deleting_message,
           f"≥ 1 (≤ {DELETE_TARGET_S:.0f} s)", f"{deleting_message * 1000:.0f} ms, words gone from the file")
    report("P4 delete a 1 000-message chat among 200", DELETE_TARGET_S / deleting_chat,
           f"≥ 1 (≤ {DELETE_TARGET_S:.0f} s)", f"{deleting_chat * 1000:.0f} ms, words gone from the file")


def main() -> None:
    appends_and_open()
    long_used_file()


if __name__ == "__main__":
    main()
