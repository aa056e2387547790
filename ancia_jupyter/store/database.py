"""The per-user SQLite database: with `store_files` and `store_state`, the only code that writes SQL.

Every chat, message, setting, model parameter, tool and plugin state lives here, so a reopened
notebook, a second panel, another kernel and the CLI all see the same thing. Connections are hardened
(WAL, foreign keys, secure_delete), the files are private to their owner, and what is deleted leaves
the file; `store_files` opens the file and runs the transactions. `Store` holds the chats; the
messages (`messages`) and the small tables (`state`) are its mixins.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..changes import Changes, ChatCreated, ChatDeleted, ChatUpdated, Reset
from ..errors import InvalidValueError, NotFoundError
from ..paths import data_dir
from . import files as store_files
from .mcp_servers import McpServerTables
from .messages import MESSAGE_FIELDS, MESSAGE_STATUSES, ROLES, MessageTables
from .rows import JSON_COLUMNS, decode_rows, encode_row, insert_row
from .state import StateTables

__all__ = ["CHAT_FIELDS", "DB_NAME", "JSON_COLUMNS", "MESSAGE_FIELDS", "MESSAGE_STATUSES", "ROLES", "Store"]

DB_NAME = "ancia.db"
CHAT_FIELDS = ("title", "model_id", "system_prompt", "mood", "options")
MAX_TITLE = 200

def _title(title: object) -> str:
    if not isinstance(title, str) or not title.strip():
        raise InvalidValueError("A chat title must be a non-empty string.")
    title = " ".join(title.split())
    if len(title) > MAX_TITLE:
        raise InvalidValueError(f"A chat title can be at most {MAX_TITLE} characters (got {len(title)}).")
    return title


class Store(MessageTables, StateTables, McpServerTables):
    """One database file; safe to share between the kernel's threads and with other processes."""

    def __init__(self, path: Path | str | None = None, changes: Changes | None = None) -> None:
        self.path = Path(path) if path is not None else data_dir() / DB_NAME
        # Read-only when the file or its folder cannot be written: everything can still be read.
        self.db, self.writable = store_files.connect(self.path)
        self._lock = threading.RLock()
        self._wal = store_files.WalEmptier(self.path)
        self.changes = changes if changes is not None else Changes()  # what each write changed, as it is done

    def close(self) -> None:
        """Close the file, trying once more, without waiting, to empty a WAL a reader held on to."""
        owed = self._wal.stop()
        with self._lock:
            if owed:
                store_files.checkpoint(self.db.conn, wait_s=0)
            self.db.close()

    def pragma(self, name: str) -> Any:
        return self.db.execute(f"PRAGMA {name}").fetchone()[0]

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One ``BEGIN IMMEDIATE`` transaction: other kernels wait for it instead of failing."""
        if not self.writable:
            raise store_files.read_only_error(self.path)
        with self._lock, store_files.transaction(self.db.conn, self.path) as conn:
            if not store_files.SECURE_DELETE:  # another kernel's newer SQLite may have rewritten it
                store_files.tune_search_index(conn)
            yield conn

    def _forget(self) -> None:
        """Empty the WAL after a delete, so earlier copies of the deleted pages do not stay in it.

        When another process's reader holds on past the first try, the WAL is emptied in the background
        once it lets go; a try while that is already under way does not wait.
        """
        retrying = self._wal.pending
        with self._lock:
            emptied = store_files.checkpoint(self.db.conn, wait_s=0 if retrying else 1.0)
        if not emptied:
            self._wal.start()

    def compact(self) -> dict:
        """Merge the search index and rebuild the file without free pages: its bytes before and after."""
        before = store_files.file_size(self.path)
        with self._write() as conn:
            store_files.merge_index(conn)
        with self._lock:
            store_files.vacuum(self.db.conn, self.path)
        return {"path": str(self.path), "bytes_before": before, "bytes_after": store_files.file_size(self.path)}

    def _query(self, sql: str, params: Iterable[Any] = ()) -> list[dict]:
        with self._lock:
            try:
                cursor = self.db.conn.execute(sql, list(params))
                names = [d[0] for d in cursor.description]
                rows = cursor.fetchall()
            except sqlite3.Error as e:
                raise store_files.store_error(self.path, e, "read") from e
        return decode_rows(names, rows)

    # -- chats ------------------------------------------------------------------------------------

    def create_chat(self, title: str, **fields: Any) -> dict:
        now = time.time()
        row = {"title": _title(title), "created_at": now, "updated_at": now, "options": {}}
        row.update({k: v for k, v in fields.items() if k in CHAT_FIELDS and k != "title"})
        with self._write():
            chat_id = insert_row(self.db.table("chats"), encode_row(row))
        self.changes.publish(ChatCreated(chat_id))
        return self.get_chat(chat_id)

    def get_chat(self, chat_id: int) -> dict:
        rows = self._query(
            "SELECT c.*, (SELECT count(*) FROM messages m WHERE m.chat_id = c.id) AS message_count "
            "FROM chats c WHERE c.id = ?",
            [self._chat_id(chat_id)],
        )
        if not rows:
            raise NotFoundError(f"No chat with id {chat_id!r}. `ancia.chats.list()` shows the chats there are.")
        return rows[0]

    def has_chat(self, chat_id: int) -> bool:
        """Whether the chat is there: one indexed look, without the message count ``get_chat`` adds."""
        return bool(self._query("SELECT 1 FROM chats WHERE id = ?", [self._chat_id(chat_id)]))

    def list_chats(self) -> list[dict]:
        return self._query(
            "SELECT c.*, (SELECT count(*) FROM messages m WHERE m.chat_id = c.id) AS message_count "
            "FROM chats c ORDER BY c.updated_at DESC, c.id DESC"
        )

    def update_chat(self, chat_id: int, **fields: Any) -> dict:
        chat = self.get_chat(chat_id)
        unknown = set(fields) - set(CHAT_FIELDS)
        if unknown:
            raise InvalidValueError(f"Unknown chat field(s): {', '.join(sorted(unknown))}.")
        if "title" in fields:
            fields["title"] = _title(fields["title"])
        fields["updated_at"] = time.time()
        with self._write():
            self.db.table("chats").update(chat["id"], encode_row(fields))
        self.changes.publish(ChatUpdated(chat["id"], tuple(sorted(fields))))
        return self.get_chat(chat["id"])

    def delete_chat(self, chat_id: int) -> None:
        chat = self.get_chat(chat_id)
        with self._write() as conn:
            store_files.delete_messages(conn, "chat_id = ?", [chat["id"]])
            conn.execute("DELETE FROM chats WHERE id = ?", [chat["id"]])
        self._forget()
        self.changes.publish(ChatDeleted(chat["id"]))

    def duplicate_chat(self, chat_id: int, title: str | None = None) -> dict:
        """A deep copy: new chat, new messages (with their attachments), same order."""
        chat = self.get_chat(chat_id)
        now = time.time()
        fields = {k: chat[k] for k in CHAT_FIELDS if k != "title"}
        with self._write():
            new_id = insert_row(self.db.table("chats"),
                                encode_row({**fields, "title": _title(title or f"{chat['title']} (copy)"),
                                            "created_at": now, "updated_at": now}))
            for message in self.db.query("SELECT * FROM messages WHERE chat_id = ? ORDER BY id", [chat["id"]]):
                old_id = message.pop("id")
                message["chat_id"] = new_id
                new_message_id = insert_row(self.db.table("messages"), message)
                self.db.execute(
                    "INSERT INTO attachments (message_id, mime, path, data) "
                    "SELECT ?, mime, path, data FROM attachments WHERE message_id = ? ORDER BY id",
                    [new_message_id, old_id],
                )
        self.changes.publish(ChatCreated(new_id))
        return self.get_chat(new_id)

    def _chat_id(self, chat_id: object) -> int:
        if isinstance(chat_id, bool) or not isinstance(chat_id, (int, str)):
            raise NotFoundError(f"No chat with id {chat_id!r}: a chat id is an integer.")
        try:
            return int(chat_id)
        except ValueError:
            raise NotFoundError(f"No chat with id {chat_id!r}: a chat id is an integer.") from None

    # -- everything --------------------------------------------------------------------------------

    def wipe(self) -> None:
        """Delete every chat, message, setting, parameter and state row (``ancia.reset``)."""
        with self._write() as conn:
            store_files.delete_messages(conn, "1", [])
            for table in ("attachments", "notebook_chats", "chats", "settings", "model_params", "tool_state",
                          "local_models", "plugins", "mcp_servers"):
                conn.execute(f"DELETE FROM {table}")
        self._forget()
        self.changes.publish(Reset())
