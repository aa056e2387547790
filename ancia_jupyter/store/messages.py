"""Messages: adding, saving, editing and deleting them with their attachments, and searching them all.

A mixin of `Store`, which provides the write transaction, the query helper, the change channel and the chats.
What a delete removes leaves the file too: the search index forgets the words and the WAL is emptied.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from sqlite_utils import Database

from ..changes import Changes, HistoryChanged, MessageAdded, MessageUpdated
from ..errors import InvalidValueError, NotFoundError
from . import files as store_files
from .rows import encode_row, insert_row

MESSAGE_STATUSES = ("complete", "partial", "stopped", "error")
ROLES = ("system", "user", "assistant", "tool")
MESSAGE_FIELDS = (
    "content", "status", "model_id", "params", "tool_calls", "tool_call_id", "tool_name", "error",
    "prompt_tokens", "completion_tokens", "timings", "finish_reason",
)
MAX_SEARCH_RESULTS = 1000


class MessageTables:
    """The messages of every chat; every write is one transaction and one notification."""

    db: Database

    if TYPE_CHECKING:  # provided by `Store`
        def _write(self) -> AbstractContextManager[sqlite3.Connection]: ...

        def _query(self, sql: str, params: Iterable[Any] = ()) -> list[dict]: ...

        def _forget(self) -> None: ...

        changes: Changes

        def get_chat(self, chat_id: int) -> dict: ...

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
            message_id = insert_row(self.db.table("messages"), encode_row(row))
            for attachment in attachments:
                self.db.table("attachments").insert({"message_id": message_id, "mime": attachment.get("mime"),
                                                     "path": attachment.get("path"), "data": attachment.get("data")})
            self.db.execute("UPDATE chats SET updated_at = ? WHERE id = ?", [now, chat["id"]])
        self.changes.publish(MessageAdded(chat["id"], message_id))
        return self.get_message(message_id)

    def update_message(self, message_id: int, *, notify: bool = True, **fields: Any) -> None:
        """Write fields of a message; ``notify=False`` for the engine's own frequent partial saves."""
        self._check_fields(fields)
        with self._write() as conn:
            fields = self._update_message(conn, message_id, fields)
        if notify:
            self.changes.publish(MessageUpdated(message_id, tuple(sorted(fields))))

    def _update_message(self, conn: sqlite3.Connection, message_id: int, fields: dict) -> dict:
        fields = {**fields, "updated_at": time.time()}
        cursor = conn.execute("UPDATE messages SET " + ", ".join(f"{k} = ?" for k in fields) + " WHERE id = ?",
                              [*encode_row(fields).values(), message_id])
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
        self.changes.publish(HistoryChanged(message["chat_id"], message["id"]))
        return self.get_message(message["id"])

    def delete_message(self, chat_id: int, message_id: int) -> None:
        message = self._chat_message(chat_id, message_id)
        with self._write() as conn:
            store_files.delete_messages(conn, "id = ?", [message["id"]])
        self._forget()
        self.changes.publish(HistoryChanged(message["chat_id"], message["id"]))

    def delete_messages_from(self, chat_id: int, message_id: int) -> int:
        """Drop a message and everything after it (regenerate, edit-and-resend); returns how many."""
        message = self._chat_message(chat_id, message_id)
        with self._write() as conn:
            count = store_files.delete_messages(conn, "chat_id = ? AND id >= ?",
                                                [message["chat_id"], message["id"]])
        self._forget()
        self.changes.publish(HistoryChanged(message["chat_id"], message["id"]))
        return count

    def clear_messages(self, chat_id: int) -> int:
        chat = self.get_chat(chat_id)
        with self._write() as conn:
            count = store_files.delete_messages(conn, "chat_id = ?", [chat["id"]])
        self._forget()
        self.changes.publish(HistoryChanged(chat["id"], None))
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
