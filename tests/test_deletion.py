"""What a user deletes leaves the database file: not only the rows, but the search index and the WAL.

Each test writes a message holding a word found nowhere else, shows the word is in the file's bytes,
deletes it one way or another, and looks for it again in ``ancia.db`` and ``ancia.db-wal``.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

import ancia_jupyter as ancia
from ancia_jupyter.app import get_app
from ancia_jupyter.store.database import Store

SECRET = "zqxjvwomba"  # the porter stemmer leaves it as it is
# The search index stores a word after the letters it shares with the word before it, so look for
# the end of the word as well as the whole of it.
TRACE = SECRET[2:].encode()


def file_bytes(path: Path) -> bytes:
    wal = Path(f"{path}-wal")
    return path.read_bytes() + (wal.read_bytes() if wal.exists() else b"")


def in_file(store: Store) -> bool:
    store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return TRACE in file_bytes(store.path)


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "data" / "ancia.db")
    yield s
    s.close()


def secret_chat(store: Store, attach: bool = True) -> tuple[int, list[int]]:
    """A chat with the secret in two messages (and an attachment), compacted, then other chats: the
    secret sits in an old, merged part of the search index that new writes do not merge again."""
    chat = store.create_chat("to forget")
    store.add_message(chat["id"], "user", "hello there")
    attachments = [{"mime": "text/plain", "data": SECRET.encode() * 4}] if attach else []
    ids = [store.add_message(chat["id"], "user", f"my password is {SECRET}, keep it safe",
                             attachments=attachments)["id"],
           store.add_message(chat["id"], "assistant", f"noted: {SECRET}")["id"]]
    store.compact()
    for n in range(3):
        other = store.create_chat(f"other {n}")
        for i in range(40):
            store.add_message(other["id"], "user", f"an ordinary message number {i} about gardens and rivers")
    return chat["id"], ids


def delete_messages(store: Store, chat: int, ids: list[int]) -> None:
    for message in ids:
        store.delete_message(chat, message)


def edit_messages(store: Store, chat: int, ids: list[int]) -> None:
    for message in ids:
        store.edit_message(chat, message, "forgotten")


DELETIONS = {
    "delete_message": delete_messages,
    "delete_messages_from": lambda store, chat, ids: store.delete_messages_from(chat, ids[0]),
    "delete_chat": lambda store, chat, ids: store.delete_chat(chat),
    "clear_messages": lambda store, chat, ids: store.clear_messages(chat),
    "edit_message": edit_messages,
    "wipe": lambda store, chat, ids: store.wipe(),
}


@pytest.mark.parametrize("deletion", DELETIONS)
def test_deleted_words_leave_the_database_and_its_wal(store, deletion):
    chat, ids = secret_chat(store, attach=deletion != "edit_message")
    assert in_file(store), "control: before the deletion the word is in the file"
    assert store.search(SECRET)
    DELETIONS[deletion](store, chat, ids)
    assert TRACE not in file_bytes(store.path), "the store empties the WAL itself after a delete"
    assert not in_file(store)
    assert store.search(SECRET) == []
    kept = store.search("gardens", limit=1000)
    assert len(kept) == (0 if deletion == "wipe" else 120)


def test_deletions_by_another_process_leave_nothing_either(store):
    chat, _ = secret_chat(store)
    other = Store(store.path)
    other.delete_chat(chat)
    other.close()
    assert not in_file(store)
    assert len(store.search("rivers", limit=1000)) == 120


def mark_index_as_written_by_newer_sqlite(path: Path) -> None:
    raw = sqlite3.connect(path)
    raw.execute("UPDATE messages_fts_config SET v = 5 WHERE k = 'version'")
    raw.commit()
    raw.close()


def test_an_index_written_by_a_newer_sqlite_keeps_working(store):
    """SQLite ≥ 3.42 deletes in place and marks the index format 5, which older versions cannot read;
    they rebuild the index from the messages instead of refusing every search and write."""
    chat, _ = secret_chat(store)
    mark_index_as_written_by_newer_sqlite(store.path)
    reopened = Store(store.path)
    assert [h["chat_id"] for h in reopened.search(SECRET)] == [chat, chat]
    reopened.close()
    mark_index_as_written_by_newer_sqlite(store.path)
    store.add_message(chat, "user", "written after the newer one")
    assert len(store.search("newer")) == 1
    assert len(store.search("gardens", limit=1000)) == 120


def test_compact_shrinks_the_file_after_a_big_delete_and_keeps_the_rest():
    store = get_app().store
    big = store.create_chat("big")
    for i in range(300):
        store.add_message(big["id"], "user", f"message {i} " + "lorem ipsum dolor sit amet " * 40)
    kept = ancia.chats.create("kept")
    store.add_message(kept.id, "user", "still here")
    ancia.chats.delete(big["id"])
    result = ancia.chats.compact()
    assert result["path"] == str(store.path)
    assert result["bytes_after"] < result["bytes_before"] / 4
    assert result["bytes_after"] == store.path.stat().st_size
    assert [m["content"] for m in ancia.chats.history(kept.id)] == ["still here"]
    assert ancia.chats.search("still")[0]["chat_id"] == kept.id
