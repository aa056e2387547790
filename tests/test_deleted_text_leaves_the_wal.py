"""Deleted text leaves the WAL even when another kernel is reading the database at the time.

A TRUNCATE checkpoint cannot empty the WAL while another process is inside a read transaction. The
store tries once, returns, and keeps trying in the background; these tests hold such a reader open in
a second process and read the raw bytes of ``ancia.db`` and ``ancia.db-wal`` afterwards.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ancia_jupyter.store import files as store_files
from ancia_jupyter.store.database import Store

SECRET = "qzvxkwjupl"  # one word, left as it is by the porter stemmer
TRACE = SECRET[2:].encode()  # the search index keeps a word after the letters it shares with the one before
# Another kernel: reads inside one transaction until told to stop, then keeps its connection open (a
# process that closes the last connection but one would empty the WAL itself and hide a missing retry).
READER = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN")
conn.execute("SELECT count(*) FROM messages").fetchall()
print("reading", flush=True)
sys.stdin.readline()
conn.execute("COMMIT")
print("done", flush=True)
sys.stdin.readline()
"""


def in_files(path: Path) -> dict[str, bool]:
    return {p.name: TRACE in p.read_bytes() for p in (path, Path(f"{path}-wal")) if p.exists()}


def wait_until_gone(path: Path, within_s: float, start: float) -> float:
    """Seconds from ``start`` until the word is in neither file."""
    while any(in_files(path).values()):
        if time.monotonic() - start > within_s:
            raise AssertionError(f"the word is still in {in_files(path)} {within_s} s after the reader ended")
        time.sleep(0.02)
    return time.monotonic() - start


@pytest.fixture
def store(ancia_home) -> Iterator[Store]:
    s = Store(ancia_home / "ancia.db")
    yield s
    s.close()


@pytest.fixture
def reader(store) -> Iterator[subprocess.Popen]:
    """Another process inside a read transaction on the same file until a line is written to it."""
    proc = subprocess.Popen([sys.executable, "-c", READER, str(store.path)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdin is not None and proc.stdout is not None and proc.stdout.readline() == "reading\n"
    yield proc
    proc.stdin.close()
    proc.wait(timeout=10)


def end(reader: subprocess.Popen) -> float:
    """End the reader's transaction, leaving its connection open; returns when it ended."""
    assert reader.stdin is not None and reader.stdout is not None
    reader.stdin.write("\n")
    reader.stdin.flush()
    assert reader.stdout.readline() == "done\n"
    return time.monotonic()


def retriers(settle_s: float = 0.0) -> int:
    """The retrier threads still alive, once a thread that has just finished has had time to exit."""
    deadline = time.monotonic() + settle_s
    while (count := sum(t.name == "ancia-empty-wal" for t in threading.enumerate())) and time.monotonic() < deadline:
        time.sleep(0.02)
    return count


def secret_chat(store: Store) -> int:
    chat = store.create_chat("to forget")
    store.add_message(chat["id"], "user", f"my password is {SECRET}, keep it safe")
    store.add_message(chat["id"], "assistant", f"noted: {SECRET}")
    kept = store.create_chat("kept")
    store.add_message(kept["id"], "user", "an ordinary message about gardens")
    return chat["id"]


def delete_timed(store: Store, chat: int) -> float:
    start = time.monotonic()
    store.delete_chat(chat)
    return time.monotonic() - start


def test_the_word_is_in_the_files_before_the_delete(store):
    secret_chat(store)
    assert in_files(store.path)["ancia.db-wal"], "control: a new message is written to the WAL first"
    store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert in_files(store.path) == {"ancia.db": True, "ancia.db-wal": False}


def test_without_a_retry_the_word_would_stay_after_the_reader_ends(store, reader, monkeypatch):
    """Control: the reader blocks the delete's own checkpoint, so the tests below can fail."""
    monkeypatch.setattr(store_files.WalEmptier, "start", lambda self: None)
    store.delete_chat(secret_chat(store))
    end(reader)
    time.sleep(1)
    assert any(in_files(store.path).values())


def test_deleted_text_leaves_the_db_and_the_wal_soon_after_another_process_stops_reading(store, reader):
    chat = secret_chat(store)
    assert any(in_files(store.path).values())
    assert delete_timed(store, chat) < 2.5, "the delete returns after one try, however long the reader reads"
    time.sleep(2)
    assert any(in_files(store.path).values()), "the reader still holds the old pages"
    gone_after = wait_until_gone(store.path, within_s=5, start=end(reader))
    print(f"gone {gone_after:.3f} s after the reader ended")
    assert retriers(settle_s=2) == 0, "the retrier ends once the WAL is empty"
    assert store.search(SECRET) == []
    kept = store.list_chats()
    assert [c["title"] for c in kept] == ["kept"]
    assert [m["content"] for m in store.history(kept[0]["id"])] == ["an ordinary message about gardens"]


def test_deletes_in_a_row_share_one_retrier_and_do_not_wait_again(store, reader):
    chats = [secret_chat(store) for _ in range(3)]
    first = delete_timed(store, chats[0])
    later = [delete_timed(store, chat) for chat in chats[1:]]
    assert first > 0.5, "control: the first delete waited for the reader"
    assert max(later) < 0.3, "a try while the retrier is at work does not wait"
    assert retriers() == 1
    wait_until_gone(store.path, within_s=5, start=end(reader))


def test_the_retrier_gives_up_quietly_and_closing_tries_again(store, reader, monkeypatch):
    monkeypatch.setattr(store_files.WalEmptier, "RETRY_FOR_S", 0.3)
    store.delete_chat(secret_chat(store))
    time.sleep(1)
    assert retriers(settle_s=2) == 0
    end(reader)
    time.sleep(0.5)
    assert any(in_files(store.path).values()), "after giving up nothing tries until the next delete or close"
    store.close()
    assert not any(in_files(store.path).values())


def test_closing_the_store_while_a_retry_is_pending_returns_promptly(store, reader):
    store.delete_chat(secret_chat(store))
    assert retriers() == 1
    start = time.monotonic()
    store.close()
    assert time.monotonic() - start < 0.5
    assert retriers(settle_s=2) == 0, "closing stops the retrier"
