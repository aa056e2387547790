"""A database ancia cannot use gets one line naming the file and what to do, and is left as it was."""

from __future__ import annotations

import hashlib
import json
import os
import pwd
import shutil
import sqlite3
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest

from ancia_jupyter.errors import InvalidValueError, StoreError
from ancia_jupyter.store.database import Store


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("content", [os.urandom(8192), b"my notes, not a database\n"], ids=["random", "text"])
def test_a_file_that_is_not_a_database_is_named_and_never_touched(tmp_path, content):
    path = tmp_path / "data" / "ancia.db"
    path.parent.mkdir()
    path.write_bytes(content)
    for _ in range(2):
        with pytest.raises(StoreError) as caught:
            Store(path)
        message = str(caught.value)
        assert str(path) in message and "\n" not in message
        assert "move it aside or restore a backup" in message and "ANCIA_DATA_DIR" in message
    assert path.read_bytes() == content
    assert sorted(p.name for p in path.parent.iterdir()) == ["ancia.db"]


def test_another_programs_sqlite_database_is_refused_unchanged(tmp_path):
    path = tmp_path / "data" / "ancia.db"
    path.parent.mkdir()
    other = sqlite3.connect(path)
    other.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL)")
    other.execute("INSERT INTO invoices (total) VALUES (12.5)")
    other.commit()
    other.close()
    before = digest(path)
    with pytest.raises(StoreError, match="not ancia's.*invoices.*Nothing was changed"):
        Store(path)
    assert digest(path) == before


def as_unprivileged_user(folder: Path, work: Callable[[], dict], folder_mode: int = 0o500) -> dict:
    """Run ``work`` in a child process that cannot write the files in ``folder``: as root, chmod stops
    nothing, so the child becomes the unprivileged user ``nobody``, who owns them without write bits."""
    uid = pwd.getpwnam("nobody").pw_uid if os.geteuid() == 0 else os.geteuid()
    for path in [folder, *folder.iterdir()]:
        os.chown(path, uid, -1)
        path.chmod(folder_mode if path.is_dir() else 0o400)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report and leave, never return into pytest
        os.close(read)
        try:
            if os.geteuid() == 0:
                os.setgid(uid)
                os.setuid(uid)
            result = work()
        except BaseException as e:
            result = {"crashed": f"{type(e).__name__}: {e}"}
        os.write(write, json.dumps(result).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        output = pipe.read()
    os.waitpid(pid, 0)
    return json.loads(output)


@pytest.fixture
def shared_tmp():
    """A folder outside pytest's private tmp tree, so an unprivileged child can reach it."""
    base = Path(tempfile.mkdtemp(prefix="ancia-ro-"))
    base.chmod(0o711)
    yield base
    for path in base.rglob("*"):
        path.chmod(0o700)
    shutil.rmtree(base)


@pytest.mark.parametrize("folder_mode", [0o500, 0o700], ids=["read-only folder", "read-only file"])
def test_a_read_only_database_can_be_read_and_refuses_writes_in_one_line(shared_tmp, folder_mode):
    path = shared_tmp / "data" / "ancia.db"
    store = Store(path)
    chat = store.create_chat("kept")
    store.add_message(chat["id"], "user", "remember the heron")
    store.close()
    before = digest(path)

    def work() -> dict:
        ro = Store(path)
        seen = {"writable": ro.writable, "chats": [c["title"] for c in ro.list_chats()],
                "history": [m["content"] for m in ro.history(chat["id"])],
                "search": [h["chat_id"] for h in ro.search("heron")], "refused": []}
        for write in (lambda: ro.create_chat("new"), lambda: ro.add_message(chat["id"], "user", "x"),
                      lambda: ro.delete_chat(chat["id"]), lambda: ro.set_settings({"offline": True}),
                      ro.compact):
            try:
                write()
            except StoreError as e:
                seen["refused"].append(str(e))
        seen["after"] = [m["content"] for m in ro.history(chat["id"])]
        return seen

    seen = as_unprivileged_user(path.parent, work, folder_mode)
    assert seen.get("crashed") is None, seen
    assert seen["writable"] is False
    assert seen["chats"] == ["kept"] and seen["history"] == ["remember the heron"] == seen["after"]
    assert seen["search"] == [chat["id"]]
    assert len(seen["refused"]) == 5
    assert all(str(path) in m and "read-only" in m and "nothing was changed" in m for m in seen["refused"])
    assert digest(path) == before


def test_a_new_database_in_a_read_only_folder_is_refused_in_one_line(shared_tmp):
    folder = shared_tmp / "locked"
    folder.mkdir()

    def work() -> dict:
        try:
            Store(folder / "data" / "ancia.db")
        except StoreError as e:
            return {"error": str(e)}
        return {"error": None}

    error = as_unprivileged_user(folder, work)["error"]
    assert error and str(folder / "data" / "ancia.db") in error and "ANCIA_DATA_DIR" in error
    assert list(folder.iterdir()) == []


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "data" / "ancia.db")
    yield s
    s.close()


def test_a_full_disk_is_named_and_the_write_is_undone(store):
    chat = store.create_chat("full")
    store.add_message(chat["id"], "user", "fits")
    store.db.execute(f"PRAGMA max_page_count = {store.pragma('page_count')}")
    with pytest.raises(StoreError) as caught:
        store.add_message(chat["id"], "user", "does not fit " * 20_000)
    message = str(caught.value)
    assert str(store.path) in message and "full" in message and "nothing was changed" in message
    assert [m["content"] for m in store.history(chat["id"])] == ["fits"]


@pytest.mark.parametrize("limit", [0, -1, "ten", True, 10**9, 1.5, None])
def test_a_search_limit_outside_1_to_1000_is_refused_by_name(store, limit):
    with pytest.raises(InvalidValueError, match=r"from 1 to 1000 \(got " + repr(limit).replace("(", r"\(")):
        store.search("anything", limit)


def test_search_limits_at_the_ends_of_the_range_work(store):
    chat = store.create_chat("limits")
    for i in range(3):
        store.add_message(chat["id"], "user", f"heron {i}")
    assert len(store.search("heron", 1)) == 1 and len(store.search("heron", 1000)) == 3


def test_a_nul_character_in_a_search_is_refused_clearly(store):
    with pytest.raises(InvalidValueError, match="NUL"):
        store.search("a\x00b")


def test_a_call_that_reaches_the_store_after_it_was_closed_says_so_and_changes_nothing(tmp_path):
    """A call still running while the kernel shuts down (or ``ancia.close()``) meets a closed file: the message
    says what happened, not that the file may be damaged."""
    store = Store(tmp_path / "data" / "ancia.db")
    store.create_chat("Kept")
    store.close()
    for call in (store.list_chats, lambda: store.create_chat("Lost")):
        with pytest.raises(StoreError, match=r"ancia was closed .* run it again") as caught:
            call()
        assert "damaged" not in str(caught.value) and "move the file aside" not in str(caught.value)
    reopened = Store(tmp_path / "data" / "ancia.db")
    assert [c["title"] for c in reopened.list_chats()] == ["Kept"]
    reopened.close()
