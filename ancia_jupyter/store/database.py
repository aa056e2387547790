"""The per-user SQLite database: with `store_files` and `store_state`, the only code that writes SQL.

Every chat, message, setting, model parameter, tool and plugin state lives here, so a reopened
notebook, a second panel, another kernel and the CLI all see the same thing. Connections are hardened
(WAL, foreign keys, secure_delete), the files are private to their owner, and what is deleted leaves
the file; `store_files` opens the file and runs the transactions.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

from sqlite_utils.db import Table

from ..errors import InvalidValueError, NotFoundError
from ..paths import data_dir
from . import files as store_files
from .state import StateTables

DB_NAME = "ancia.db"
MESSAGE_STATUSES = ("complete", "partial", "stopped", "error")
ROLES = ("system", "user", "assistant", "tool")
JSON_COLUMNS = ("params", "tool_calls", "timings", "options")
MESSAGE_FIELDS = (
    "content", "status", "model_id", "params", "tool_calls", "tool_call_id", "tool_name", "error",
    "prompt_tokens", "completion_tokens", "timings",
)
CHAT_FIELDS = ("title", "model_id", "system_prompt", "mood", "options")
MAX_TITLE = 200
MAX_SEARCH_RESULTS = 1000

Listener = Callable[[str, dict], None]


def _encode(row: dict) -> dict:
    return {k: json.dumps(v) if k in JSON_COLUMNS and v is not None else v for k, v in row.items()}


def _decode(row: dict) -> dict:
    for k in JSON_COLUMNS:
        if isinstance(row.get(k), str):
            row[k] = json.loads(row[k])
    return row


def _insert(table: Table, row: dict) -> int:
    """Insert one row into a table keyed by its integer rowid: the new row's id."""
    return cast(int, table.insert(row).last_pk)  # sqlite-utils types it for any primary key


def _title(title: object) -> str:
    if not isinstance(title, str) or not title.strip():
        raise InvalidValueError("A chat title must be a non-empty string.")
    title = " ".join(title.split())
    if len(title) > MAX_TITLE:
        raise InvalidValueError(f"A chat title can be at most {MAX_TITLE} characters (got {len(title)}).")
    return title


class Store(StateTables):
    """One database file; safe to share between the kernel's threads and with other processes."""

    def __init__(self, path: Path | str | None = None) -> None:
        self.path = Path(path) if path is not None else data_dir() / DB_NAME
        # Read-only when the file or its folder cannot be written: everything can still be read.
        self.db, self.writable = store_files.connect(self.path)
        self._lock = threading.RLock()
        self._listeners: list[Listener] = []

    def close(self) -> None:
        with self._lock:
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
        """Empty the WAL after a delete, so earlier copies of the deleted pages do not stay in it."""
        with self._lock:
            store_files.checkpoint(self.db.conn)

    def compact(self) -> dict:
        """Merge the search index and rebuild the file without free pages: its bytes before and after."""
        before = store_files.file_size(self.path)
        with self._write() as conn:
            store_files.merge_index(conn)
        with self._lock:
            store_files.vacuum(self.db.conn, self.path)
        return {"path": str(self.path), "bytes_before": before, "bytes_after": store_files.file_size(self.path)}

    # -- change notifications: panels and caches follow what code does -------------------------

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def notify(self, kind: str, **data: Any) -> None:
        """Tell every listener (panels, caches) that something changed."""
        for listener in list(self._listeners):
            try:
                listener(kind, data)
            except Exception:  # a broken view must never break a write
                pass

    def _query(self, sql: str, params: Iterable[Any] = ()) -> list[dict]:
        with self._lock:
            try:
                cursor = self.db.conn.execute(sql, list(params))
                names = [d[0] for d in cursor.description]
                rows = cursor.fetchall()
            except sqlite3.Error as e:
                raise store_files.store_error(self.path, e, "read") from e
        return [_decode(dict(zip(names, row, strict=False))) for row in rows]

    # -- chats ------------------------------------------------------------------------------------

    def create_chat(self, title: str, **fields: Any) -> dict:
        now = time.time()
        row = {"title": _title(title), "created_at": now, "updated_at": now, "options": {}}
        row.update({k: v for k, v in fields.items() if k in CHAT_FIELDS and k != "title"})
        with self._write():
            chat_id = _insert(self.db.table("chats"), _encode(row))
        self.notify("chat_created", chat_id=chat_id)
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
            self.db.table("chats").update(chat["id"], _encode(fields))
        self.notify("chat_updated", chat_id=chat["id"], fields=sorted(fields))
        return self.get_chat(chat["id"])

    def delete_chat(self, chat_id: int) -> None:
        chat = self.get_chat(chat_id)
        with self._write() as conn:
            store_files.delete_messages(conn, "chat_id = ?", [chat["id"]])
            conn.execute("DELETE FROM chats WHERE id = ?", [chat["id"]])
        self._forget()
        self.notify("chat_deleted", chat_id=chat["id"])

    def duplicate_chat(self, chat_id: int, title: str | None = None) -> dict:
        """A deep copy: new chat, new messages (with their attachments), same order."""
        chat = self.get_chat(chat_id)
        now = time.time()
        fields = {k: chat[k] for k in CHAT_FIELDS if k != "title"}
        with self._write():
            new_id = _insert(self.db.table("chats"),
                             _encode({**fields, "title": _title(title or f"{chat['title']} (copy)"),
                                      "created_at": now, "updated_at": now}))
            for message in self.db.query("SELECT * FROM messages WHERE chat_id = ? ORDER BY id", [chat["id"]]):
                old_id = message.pop("id")
                message["chat_id"] = new_id
                new_message_id = _insert(self.db.table("messages"), message)
                self.db.execute(
                    "INSERT INTO attachments (message_id, mime, path, data) "
                    "SELECT ?, mime, path, data FROM attachments WHERE message_id = ? ORDER BY id",
                    [new_message_id, old_id],
                )
        self.notify("chat_created", chat_id=new_id)
        return self.get_chat(new_id)

    def _chat_id(self, chat_id: object) -> int:
        if isinstance(chat_id, bool) or not isinstance(chat_id, (int, str)):
            raise NotFoundError(f"No chat with id {chat_id!r}: a chat id is an integer.")
        try:
            return int(chat_id)
        except ValueError:
            raise NotFoundError(f"No chat with id {chat_id!r}: a chat id is an integer.") from None

    # -- messages ---------------------------------------------------------------------------------

    def add_message(self, chat_id: int, role: str, content: str = "", *,
                    attachments: Iterable[dict] = (), **fields: Any) -> dict:
        chat = self.get_chat(chat_id)
        if role not in ROLES:
            raise InvalidValueError(f"A message role is one of {', '.join(ROLES)} (got {role!r}).")
        if not isinstance(content, str):
            raise InvalidValueError("Message content must be a string.")
        self._check_fields(fields)
        now = time.time()
        row = {"chat_id": chat["id"], "role": role, "content": content, "created_at": now, "updated_at": now,
               **fields}
        with self._write() as conn:
            if not conn.execute("SELECT 1 FROM chats WHERE id = ?", [chat["id"]]).fetchone():
                raise NotFoundError(f"Chat {chat['id']} was deleted (by another kernel?); nothing was added.")
            message_id = _insert(self.db.table("messages"), _encode(row))
            for attachment in attachments:
                self.db.table("attachments").insert({"message_id": message_id, "mime": attachment.get("mime"),
                                                     "path": attachment.get("path"), "data": attachment.get("data")})
            self.db.execute("UPDATE chats SET updated_at = ? WHERE id = ?", [now, chat["id"]])
        self.notify("message_added", chat_id=chat["id"], message_id=message_id)
        return self.get_message(message_id)

    def update_message(self, message_id: int, *, notify: bool = True, **fields: Any) -> None:
        """Write fields of a message; ``notify=False`` for the engine's own frequent partial saves."""
        self._check_fields(fields)
        with self._write() as conn:
            fields = self._update_message(conn, message_id, fields)
        if notify:
            self.notify("message_updated", message_id=message_id, fields=sorted(fields))

    def _update_message(self, conn: sqlite3.Connection, message_id: int, fields: dict) -> dict:
        fields = {**fields, "updated_at": time.time()}
        cursor = conn.execute("UPDATE messages SET " + ", ".join(f"{k} = ?" for k in fields) + " WHERE id = ?",
                              [*_encode(fields).values(), message_id])
        if cursor.rowcount == 0:
            raise NotFoundError(f"No message with id {message_id!r}.")
        return fields

    def get_message(self, message_id: int) -> dict:
        rows = self._query("SELECT * FROM messages WHERE id = ?", [message_id])
        if not rows:
            raise NotFoundError(f"No message with id {message_id!r}.")
        return self._with_attachments(rows)[0]

    def history(self, chat_id: int) -> list[dict]:
        chat = self.get_chat(chat_id)
        messages = self._query("SELECT * FROM messages WHERE chat_id = ? ORDER BY id", [chat["id"]])
        return self._with_attachments(messages, "JOIN messages m ON m.id = a.message_id WHERE m.chat_id = ?",
                                      [chat["id"]])

    def _with_attachments(self, messages: list[dict], where: str | None = None,
                          params: list | None = None) -> list[dict]:
        by_id = {m["id"]: m for m in messages}
        for m in messages:
            m["attachments"] = []
        if where is None:
            where, params = f"WHERE a.message_id IN ({','.join('?' * len(by_id))})", list(by_id)
        if by_id:
            for a in self._query(f"SELECT a.* FROM attachments a {where} ORDER BY a.id", params or []):
                by_id[a["message_id"]]["attachments"].append({"mime": a["mime"], "path": a["path"],
                                                              "data": a["data"]})
        return messages

    def _chat_message(self, chat_id: int, message_id: int) -> dict:
        chat = self.get_chat(chat_id)
        message = self.get_message(message_id)
        if message["chat_id"] != chat["id"]:
            raise NotFoundError(f"Message {message_id} is not in chat {chat['id']}.")
        return message

    def edit_message(self, chat_id: int, message_id: int, content: str) -> dict:
        message = self._chat_message(chat_id, message_id)
        if not isinstance(content, str):
            raise InvalidValueError("Message content must be a string.")
        with self._write() as conn:
            self._update_message(conn, message["id"], {"content": content})
            if not store_files.SECURE_DELETE:  # the replaced words stay in the index until it is merged
                store_files.merge_index(conn)
        self._forget()
        self.notify("history_changed", chat_id=message["chat_id"], from_message_id=message["id"])
        return self.get_message(message["id"])

    def delete_message(self, chat_id: int, message_id: int) -> None:
        message = self._chat_message(chat_id, message_id)
        with self._write() as conn:
            store_files.delete_messages(conn, "id = ?", [message["id"]])
        self._forget()
        self.notify("history_changed", chat_id=message["chat_id"], from_message_id=message["id"])

    def delete_messages_from(self, chat_id: int, message_id: int) -> int:
        """Drop a message and everything after it (regenerate, edit-and-resend); returns how many."""
        message = self._chat_message(chat_id, message_id)
        with self._write() as conn:
            count = store_files.delete_messages(conn, "chat_id = ? AND id >= ?",
                                                [message["chat_id"], message["id"]])
        self._forget()
        self.notify("history_changed", chat_id=message["chat_id"], from_message_id=message["id"])
        return count

    def clear_messages(self, chat_id: int) -> int:
        chat = self.get_chat(chat_id)
        with self._write() as conn:
            count = store_files.delete_messages(conn, "chat_id = ?", [chat["id"]])
        self._forget()
        self.notify("history_changed", chat_id=chat["id"], from_message_id=None)
        return count

    def search(self, query: str, limit: int = 20) -> list[dict]:
        """Full-text search over every message; each hit names its chat and a highlighted snippet."""
        if not isinstance(query, str) or not query.strip():
            raise InvalidValueError("Search needs a non-empty query string.")
        if "\x00" in query:
            raise InvalidValueError("A search query cannot contain a NUL character (\\x00); remove it.")
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_SEARCH_RESULTS:
            raise InvalidValueError(f"A search limit is a whole number from 1 to {MAX_SEARCH_RESULTS} "
                                    f"(got {limit!r}).")
        terms = " ".join('"' + word.replace('"', '""') + '"' for word in query.split())
        return self._query(
            "SELECT m.id AS message_id, m.chat_id, c.title AS chat_title, m.role, m.created_at, "
            "snippet(messages_fts, 0, '**', '**', '…', 12) AS snippet "
            "FROM messages_fts JOIN messages m ON m.rowid = messages_fts.rowid "
            "JOIN chats c ON c.id = m.chat_id WHERE messages_fts MATCH ? ORDER BY rank LIMIT ?",
            [terms, limit],
        )

    def _check_fields(self, fields: dict) -> None:
        unknown = set(fields) - set(MESSAGE_FIELDS)
        if unknown:
            raise InvalidValueError(f"Unknown message field(s): {', '.join(sorted(unknown))}.")
        if "status" in fields and fields["status"] not in MESSAGE_STATUSES:
            raise InvalidValueError(f"A message status is one of {', '.join(MESSAGE_STATUSES)}.")

    # -- everything --------------------------------------------------------------------------------

    def wipe(self) -> None:
        """Delete every chat, message, setting, parameter and state row (``ancia.reset``)."""
        with self._write() as conn:
            store_files.delete_messages(conn, "1", [])
            for table in ("attachments", "chats", "settings", "model_params", "tool_state",
                          "local_models", "plugins"):
                conn.execute(f"DELETE FROM {table}")
        self._forget()
        self.notify("reset")
