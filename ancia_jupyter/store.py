"""The per-user SQLite database: the only module that writes SQL.

Every chat, message, setting, model parameter, tool and plugin state lives here, so a reopened
notebook, a second panel and the CLI all see the same thing. Connections are hardened (WAL, foreign
keys, secure_delete) and the files are private to their owner.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from .errors import InvalidValueError, NotFoundError
from .migrations import migrations
from .paths import data_dir, private_dir, private_file

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

Listener = Callable[[str, dict], None]


def _encode(row: dict) -> dict:
    return {k: json.dumps(v) if k in JSON_COLUMNS and v is not None else v for k, v in row.items()}


def _decode(row: dict) -> dict:
    for k in JSON_COLUMNS:
        if isinstance(row.get(k), str):
            row[k] = json.loads(row[k])
    return row


def _title(title: object) -> str:
    if not isinstance(title, str) or not title.strip():
        raise InvalidValueError("A chat title must be a non-empty string.")
    title = " ".join(title.split())
    if len(title) > MAX_TITLE:
        raise InvalidValueError(f"A chat title can be at most {MAX_TITLE} characters (got {len(title)}).")
    return title


class Store:
    """One database file; safe to share between the kernel's threads."""

    def __init__(self, path: Path | str | None = None) -> None:
        if path is None:
            path = private_dir(data_dir()) / DB_NAME
        self.path = Path(path)
        private_dir(self.path.parent)
        private_file(self.path)
        conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
        self.db = Database(conn)
        self._lock = threading.RLock()
        self._listeners: list[Listener] = []
        for pragma in ("journal_mode=WAL", "foreign_keys=ON", "secure_delete=ON", "synchronous=NORMAL"):
            conn.execute(f"PRAGMA {pragma}")
        with self._lock:
            migrations.apply(self.db)

    def close(self) -> None:
        with self._lock:
            self.db.close()

    def pragma(self, name: str) -> Any:
        return self.db.execute(f"PRAGMA {name}").fetchone()[0]

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
            cursor = self.db.conn.execute(sql, list(params))
            names = [d[0] for d in cursor.description]
            return [_decode(dict(zip(names, row, strict=False))) for row in cursor.fetchall()]

    # -- chats ------------------------------------------------------------------------------------

    def create_chat(self, title: str = "New chat", **fields: Any) -> dict:
        now = time.time()
        row = {"title": _title(title), "created_at": now, "updated_at": now, "options": {}}
        row.update({k: v for k, v in fields.items() if k in CHAT_FIELDS and k != "title"})
        with self._lock:
            chat_id = self.db["chats"].insert(_encode(row)).last_pk
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
        with self._lock:
            self.db["chats"].update(chat["id"], _encode(fields))
        self.notify("chat_updated", chat_id=chat["id"], fields=sorted(fields))
        return self.get_chat(chat["id"])

    def delete_chat(self, chat_id: int) -> None:
        chat = self.get_chat(chat_id)
        with self._lock:
            self.db.execute("DELETE FROM chats WHERE id = ?", [chat["id"]])
        self.notify("chat_deleted", chat_id=chat["id"])

    def duplicate_chat(self, chat_id: int, title: str | None = None) -> dict:
        """A deep copy: new chat, new messages (with their attachments), same order."""
        chat = self.get_chat(chat_id)
        now = time.time()
        fields = {k: chat[k] for k in CHAT_FIELDS if k != "title"}
        with self._lock, self.db.atomic():
            new_id = self.db["chats"].insert(
                _encode({**fields, "title": _title(title or f"{chat['title']} (copy)"),
                         "created_at": now, "updated_at": now})
            ).last_pk
            for message in self.db.query("SELECT * FROM messages WHERE chat_id = ? ORDER BY id", [chat["id"]]):
                old_id = message.pop("id")
                message["chat_id"] = new_id
                new_message_id = self.db["messages"].insert(message).last_pk
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
        with self._lock, self.db.atomic():
            message_id = self.db["messages"].insert(_encode(row)).last_pk
            for attachment in attachments:
                self.db["attachments"].insert({"message_id": message_id, "mime": attachment.get("mime"),
                                               "path": attachment.get("path"), "data": attachment.get("data")})
            self.db.execute("UPDATE chats SET updated_at = ? WHERE id = ?", [now, chat["id"]])
        self.notify("message_added", chat_id=chat["id"], message_id=message_id)
        return self.get_message(message_id)

    def update_message(self, message_id: int, *, notify: bool = True, **fields: Any) -> None:
        """Write fields of a message; ``notify=False`` for the engine's own frequent partial saves."""
        self._check_fields(fields)
        fields["updated_at"] = time.time()
        with self._lock:
            cursor = self.db.execute(
                "UPDATE messages SET " + ", ".join(f"{k} = ?" for k in fields) + " WHERE id = ?",
                [*_encode(fields).values(), message_id],
            )
        if cursor.rowcount == 0:
            raise NotFoundError(f"No message with id {message_id!r}.")
        if notify:
            self.notify("message_updated", message_id=message_id, fields=sorted(fields))

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
        self.update_message(message["id"], notify=False, content=content)
        self.notify("history_changed", chat_id=message["chat_id"], from_message_id=message["id"])
        return self.get_message(message["id"])

    def delete_message(self, chat_id: int, message_id: int) -> None:
        message = self._chat_message(chat_id, message_id)
        with self._lock:
            self.db.execute("DELETE FROM messages WHERE id = ?", [message["id"]])
        self.notify("history_changed", chat_id=message["chat_id"], from_message_id=message["id"])

    def delete_messages_from(self, chat_id: int, message_id: int) -> int:
        """Drop a message and everything after it (regenerate, edit-and-resend); returns how many."""
        message = self._chat_message(chat_id, message_id)
        with self._lock:
            count = self.db.execute("DELETE FROM messages WHERE chat_id = ? AND id >= ?",
                                    [message["chat_id"], message["id"]]).rowcount
        self.notify("history_changed", chat_id=message["chat_id"], from_message_id=message["id"])
        return count

    def clear_messages(self, chat_id: int) -> int:
        chat = self.get_chat(chat_id)
        with self._lock:
            count = self.db.execute("DELETE FROM messages WHERE chat_id = ?", [chat["id"]]).rowcount
        self.notify("history_changed", chat_id=chat["id"], from_message_id=None)
        return count

    def search(self, query: str, limit: int = 20) -> list[dict]:
        """Full-text search over every message; each hit names its chat and a highlighted snippet."""
        if not isinstance(query, str) or not query.strip():
            raise InvalidValueError("Search needs a non-empty query string.")
        terms = " ".join('"' + word.replace('"', '""') + '"' for word in query.split())
        return self._query(
            "SELECT m.id AS message_id, m.chat_id, c.title AS chat_title, m.role, m.created_at, "
            "snippet(messages_fts, 0, '**', '**', '…', 12) AS snippet "
            "FROM messages_fts JOIN messages m ON m.rowid = messages_fts.rowid "
            "JOIN chats c ON c.id = m.chat_id WHERE messages_fts MATCH ? ORDER BY rank LIMIT ?",
            [terms, int(limit)],
        )

    def _check_fields(self, fields: dict) -> None:
        unknown = set(fields) - set(MESSAGE_FIELDS)
        if unknown:
            raise InvalidValueError(f"Unknown message field(s): {', '.join(sorted(unknown))}.")
        if "status" in fields and fields["status"] not in MESSAGE_STATUSES:
            raise InvalidValueError(f"A message status is one of {', '.join(MESSAGE_STATUSES)}.")

    # -- key/value tables: settings, model params, tool state ------------------------------------

    def get_settings(self) -> dict:
        return {r["key"]: json.loads(r["value"]) for r in self._query("SELECT key, value FROM settings")}

    def set_settings(self, values: dict) -> None:
        with self._lock, self.db.atomic():
            for key, value in values.items():
                if value is None:
                    self.db.execute("DELETE FROM settings WHERE key = ?", [key])
                else:
                    self.db["settings"].upsert({"key": key, "value": json.dumps(value)}, pk="key")
        self.notify("settings_changed", keys=sorted(values))

    def get_params(self, model_id: str) -> dict:
        rows = self._query("SELECT params FROM model_params WHERE model_id = ?", [model_id])
        return rows[0]["params"] if rows else {}

    def set_params(self, model_id: str, params: dict) -> None:
        with self._lock:
            if params:
                self.db["model_params"].upsert({"model_id": model_id, "params": json.dumps(params)},
                                               pk="model_id")
            else:
                self.db.execute("DELETE FROM model_params WHERE model_id = ?", [model_id])
        self.notify("params_changed", model_id=model_id)

    def tool_states(self) -> dict[str, bool]:
        return {r["name"]: bool(r["enabled"]) for r in self._query("SELECT * FROM tool_state")}

    def set_tool_enabled(self, name: str, enabled: bool) -> None:
        with self._lock:
            self.db["tool_state"].upsert({"name": name, "enabled": int(enabled)}, pk="name")
        self.notify("tools_changed", name=name)

    # -- local models and plugins -----------------------------------------------------------------

    def local_models(self) -> list[dict]:
        return self._query("SELECT * FROM local_models ORDER BY added_at")

    def add_local_model(self, model_id: str, path: str, format: str, title: str | None = None,
                        vision: bool = False) -> None:
        with self._lock:
            self.db["local_models"].insert({"id": model_id, "path": path, "format": format, "title": title,
                                            "vision": int(vision), "added_at": time.time()}, replace=True)
        self.notify("models_changed", model_id=model_id)

    def remove_local_model(self, model_id: str) -> None:
        with self._lock:
            self.db.execute("DELETE FROM local_models WHERE id = ?", [model_id])
        self.notify("models_changed", model_id=model_id)

    def plugins(self) -> list[dict]:
        return self._query("SELECT * FROM plugins ORDER BY id")

    def upsert_plugin(self, plugin_id: str, **fields: Any) -> None:
        now = time.time()
        existing = self._query("SELECT installed_at FROM plugins WHERE id = ?", [plugin_id])
        row = {"id": plugin_id, "installed_at": existing[0]["installed_at"] if existing else now,
               "updated_at": now, **fields}
        with self._lock:
            self.db["plugins"].upsert(row, pk="id")
        self.notify("plugins_changed", plugin_id=plugin_id)

    def delete_plugin(self, plugin_id: str) -> None:
        with self._lock:
            self.db.execute("DELETE FROM plugins WHERE id = ?", [plugin_id])
        self.notify("plugins_changed", plugin_id=plugin_id)

    # -- everything --------------------------------------------------------------------------------

    def wipe(self) -> None:
        """Delete every chat, message, setting, parameter and state row (``ancia.reset``)."""
        with self._lock, self.db.atomic():
            for table in ("attachments", "messages", "chats", "settings", "model_params", "tool_state",
                          "local_models", "plugins"):
                self.db.execute(f"DELETE FROM {table}")
        self.notify("reset")
