"""The per-user database: hardened, private, and consistent under every chat operation."""

from __future__ import annotations

import os
import stat

import pytest

from ancia_jupyter.errors import InvalidValueError, NotFoundError
from ancia_jupyter.paths import private_dir
from ancia_jupyter.store.database import Store


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "home" / "ancia.db")
    yield s
    s.close()


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_connection_is_hardened(store):
    assert store.pragma("journal_mode") == "wal"
    assert store.pragma("foreign_keys") == 1
    assert store.pragma("secure_delete") == 1


def test_files_are_private_and_tightened_when_found_loose(tmp_path):
    path = tmp_path / "home" / "ancia.db"
    Store(path).close()
    assert mode(path.parent) == 0o700
    assert mode(path) == 0o600
    path.parent.chmod(0o755)
    path.chmod(0o644)
    Store(path).close()
    assert mode(path.parent) == 0o700
    assert mode(path) == 0o600


def test_tightening_takes_access_away_and_never_adds_any(tmp_path):
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    assert mode(private_dir(folder)) == 0o500
    folder.chmod(0o700)


def test_migrations_run_once_and_reopening_keeps_data(tmp_path):
    path = tmp_path / "ancia.db"
    first = Store(path)
    chat = first.create_chat("kept")
    applied = [m.name for m in __import__("ancia_jupyter.store.migrations", fromlist=["x"]).migrations.applied(first.db)]
    first.close()
    second = Store(path)
    again = [m.name for m in __import__("ancia_jupyter.store.migrations", fromlist=["x"]).migrations.applied(second.db)]
    assert applied == again == ["m001_initial", "m002_message_search", "m003_server_models", "m004_finish_reason",
                                "m005_mcp_servers", "m006_notebook_chats"]
    assert second.get_chat(chat["id"])["title"] == "kept"
    second.close()


def test_deleting_a_chat_deletes_its_messages_and_attachments(store):
    chat = store.create_chat("doomed")
    message = store.add_message(chat["id"], "user", "hello", attachments=[{"mime": "image/png", "data": b"\x89PNG"}])
    store.delete_chat(chat["id"])
    assert store.db.execute("SELECT count(*) FROM messages").fetchone()[0] == 0
    assert store.db.execute("SELECT count(*) FROM attachments").fetchone()[0] == 0
    with pytest.raises(NotFoundError):
        store.get_message(message["id"])


def test_duplicate_is_a_deep_copy_in_order(store):
    chat = store.create_chat("original")
    store.add_message(chat["id"], "user", "one", attachments=[{"mime": "image/png", "data": b"img"}])
    store.add_message(chat["id"], "assistant", "two", params={"temperature": 0.1}, tool_calls=[{"id": "a"}])
    copy = store.duplicate_chat(chat["id"])
    assert copy["id"] != chat["id"] and copy["title"] == "original (copy)"
    original, copied = store.history(chat["id"]), store.history(copy["id"])
    assert [m["content"] for m in copied] == ["one", "two"]
    assert copied[0]["attachments"] == [{"mime": "image/png", "path": None, "data": b"img"}]
    assert copied[1]["params"] == {"temperature": 0.1} and copied[1]["tool_calls"] == [{"id": "a"}]
    assert {m["id"] for m in original}.isdisjoint(m["id"] for m in copied)
    store.edit_message(copy["id"], copied[0]["id"], "changed")
    assert store.history(chat["id"])[0]["content"] == "one"


def test_message_operations(store):
    chat = store.create_chat("ops")
    a = store.add_message(chat["id"], "user", "first")
    b = store.add_message(chat["id"], "assistant", "second")
    c = store.add_message(chat["id"], "user", "third")
    store.edit_message(chat["id"], b["id"], "second, edited")
    assert store.get_message(b["id"])["content"] == "second, edited"
    store.delete_message(chat["id"], a["id"])
    assert [m["id"] for m in store.history(chat["id"])] == [b["id"], c["id"]]
    assert store.delete_messages_from(chat["id"], b["id"]) == 2
    assert store.history(chat["id"]) == []
    store.add_message(chat["id"], "user", "again")
    assert store.clear_messages(chat["id"]) == 1


def test_bad_input_is_refused_and_changes_nothing(store):
    chat = store.create_chat("safe")
    store.add_message(chat["id"], "user", "keep me")
    other = store.create_chat("other")
    foreign = store.add_message(other["id"], "user", "not yours")
    before = (store.list_chats(), store.history(chat["id"]))
    with pytest.raises(InvalidValueError, match="non-empty"):
        store.create_chat("   ")
    with pytest.raises(InvalidValueError, match="at most 200"):
        store.update_chat(chat["id"], title="x" * 201)
    with pytest.raises(NotFoundError, match="No chat with id 999"):
        store.update_chat(999, title="nope")
    with pytest.raises(NotFoundError, match="integer"):
        store.get_chat("abc")
    with pytest.raises(NotFoundError, match="not in chat"):
        store.edit_message(chat["id"], foreign["id"], "hijack")
    with pytest.raises(InvalidValueError, match="role"):
        store.add_message(chat["id"], "robot", "beep")
    with pytest.raises(InvalidValueError, match="status"):
        store.add_message(chat["id"], "assistant", "x", status="done")
    assert (store.list_chats(), store.history(chat["id"])) == before
    assert store.get_message(foreign["id"])["content"] == "not yours"


def test_search_follows_edits_and_deletes(store):
    chat = store.create_chat("search")
    m = store.add_message(chat["id"], "user", "the quick brown fox")
    assert [h["message_id"] for h in store.search("brown")] == [m["id"]]
    store.edit_message(chat["id"], m["id"], "a lazy dog")
    assert store.search("brown") == []
    assert store.search("lazy")[0]["snippet"] == "a **lazy** dog"
    store.delete_message(chat["id"], m["id"])
    assert store.search("lazy") == []
    with pytest.raises(InvalidValueError):
        store.search("  ")


def test_search_treats_query_as_words_not_syntax(store):
    chat = store.create_chat("syntax")
    store.add_message(chat["id"], "user", 'what does "AND" mean in (SQL)?')
    assert len(store.search('"AND" (SQL')) == 1


def test_settings_params_and_tool_state_round_trip(store):
    store.set_settings({"offline": True, "keep_alive": 60})
    assert store.get_settings() == {"offline": True, "keep_alive": 60}
    store.set_settings({"offline": None})
    assert store.get_settings() == {"keep_alive": 60}
    store.set_params("m", {"temperature": 0.5})
    assert store.get_params("m") == {"temperature": 0.5}
    store.set_tool_enabled("system.time", False)
    assert store.tool_states() == {"system.time": False}


def test_wipe_deletes_everything(store):
    chat = store.create_chat("x")
    store.add_message(chat["id"], "user", "y")
    store.set_settings({"offline": True})
    store.wipe()
    assert store.list_chats() == [] and store.get_settings() == {}
