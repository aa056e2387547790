"""Schema changes, append-only: each migration runs once per database, in order, recorded by name.

Never edit a migration that has shipped; add a new one. Each runs in a transaction with the record of
it having run, so a failure leaves the database as it was.
"""

from __future__ import annotations

from sqlite_utils import Database, Migrations

migrations = Migrations("ancia")


@migrations()
def m001_initial(db: Database) -> None:
    # Chats own their messages: ON DELETE CASCADE removes them with the chat.
    db.execute(
        """
        CREATE TABLE chats (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            title TEXT NOT NULL,
            model_id TEXT,
            system_prompt TEXT,
            mood TEXT,
            options TEXT NOT NULL DEFAULT '{}',
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL
        )"""
    )
    db.execute(
        """
        CREATE TABLE messages (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            chat_id INTEGER NOT NULL REFERENCES chats(id) ON DELETE CASCADE,
            role TEXT NOT NULL CHECK (role IN ('system', 'user', 'assistant', 'tool')),
            content TEXT NOT NULL DEFAULT '',
            status TEXT NOT NULL DEFAULT 'complete'
                CHECK (status IN ('complete', 'partial', 'stopped', 'error')),
            model_id TEXT,
            params TEXT,
            tool_calls TEXT,
            tool_call_id TEXT,
            tool_name TEXT,
            error TEXT,
            prompt_tokens INTEGER,
            completion_tokens INTEGER,
            timings TEXT,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL
        )"""
    )
    db.execute("CREATE INDEX messages_by_chat ON messages(chat_id, id)")
    db.execute(
        """
        CREATE TABLE attachments (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            message_id INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
            mime TEXT,
            path TEXT,
            data BLOB
        )"""
    )
    db.execute("CREATE INDEX attachments_by_message ON attachments(message_id)")
    db.execute("CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    db.execute("CREATE TABLE model_params (model_id TEXT PRIMARY KEY, params TEXT NOT NULL)")
    db.execute(
        """
        CREATE TABLE local_models (
            id TEXT PRIMARY KEY,
            path TEXT NOT NULL,
            format TEXT NOT NULL CHECK (format IN ('mlx', 'gguf')),
            title TEXT,
            vision INTEGER NOT NULL DEFAULT 0,
            added_at REAL NOT NULL
        )"""
    )
    db.execute("CREATE TABLE tool_state (name TEXT PRIMARY KEY, enabled INTEGER NOT NULL)")
    db.execute(
        """
        CREATE TABLE plugins (
            id TEXT PRIMARY KEY,
            version TEXT,
            enabled INTEGER NOT NULL DEFAULT 1,
            path TEXT,
            sha256 TEXT,
            error TEXT,
            installed_at REAL NOT NULL,
            updated_at REAL NOT NULL
        )"""
    )


@migrations()
def m002_message_search(db: Database) -> None:
    # Full-text search over message content, kept in sync by triggers on insert, update and delete.
    db.table("messages").enable_fts(["content"], fts_version="FTS5", create_triggers=True, tokenize="porter")


@migrations()
def m003_server_models(db: Database) -> None:
    # A registered model may be an OpenAI-compatible server: its URL in path, the model's name there, and
    # the name of the environment variable holding its key (never the key). SQLite cannot change a CHECK,
    # so the table is rebuilt.
    db.execute(
        """
        CREATE TABLE local_models_new (
            id TEXT PRIMARY KEY,
            path TEXT NOT NULL,
            format TEXT NOT NULL CHECK (format IN ('mlx', 'gguf', 'openai')),
            title TEXT,
            vision INTEGER NOT NULL DEFAULT 0,
            added_at REAL NOT NULL,
            remote_model TEXT,
            api_key_env TEXT
        )"""
    )
    db.execute("INSERT INTO local_models_new (id, path, format, title, vision, added_at) "
               "SELECT id, path, format, title, vision, added_at FROM local_models")
    db.execute("DROP TABLE local_models")
    db.execute("ALTER TABLE local_models_new RENAME TO local_models")


@migrations()
def m004_finish_reason(db: Database) -> None:
    # Why an answer's generation ended ("stop", "length", "stopped", "tool_calls"): an answer cut at the
    # max_tokens limit can be continued.
    db.execute("ALTER TABLE messages ADD COLUMN finish_reason TEXT")


@migrations()
def m005_mcp_servers(db: Database) -> None:
    # MCP servers the user added: a stdio command (a JSON list) or a streamable-HTTP URL. env and headers map
    # to references to the kernel's environment ("$NAME"), read when the server starts: a secret's value is
    # never written here. tools keeps what the server listed when it last ran, so its tools are shown before
    # it starts again.
    db.execute(
        """
        CREATE TABLE mcp_servers (
            name TEXT PRIMARY KEY,
            kind TEXT NOT NULL CHECK (kind IN ('stdio', 'http')),
            command TEXT,
            url TEXT,
            env TEXT NOT NULL DEFAULT '{}',
            headers TEXT NOT NULL DEFAULT '{}',
            enabled INTEGER NOT NULL DEFAULT 1,
            trusted INTEGER NOT NULL DEFAULT 0,
            tools TEXT NOT NULL DEFAULT '[]',
            added_at REAL NOT NULL,
            updated_at REAL NOT NULL
        )"""
    )


@migrations()
def m006_notebook_chats(db: Database) -> None:
    # Each notebook's current chat, so a notebook reopened (or its kernel restarted) goes on in the chat it was
    # in; a chat deleted takes its notebooks' links with it.
    db.execute(
        """
        CREATE TABLE notebook_chats (
            notebook TEXT PRIMARY KEY,
            chat_id INTEGER NOT NULL REFERENCES chats(id) ON DELETE CASCADE,
            updated_at REAL NOT NULL
        )"""
    )
