"""Rows as SQLite holds them: the JSON columns encoded and decoded, and inserts that return the new id."""

from __future__ import annotations

import json
from typing import cast

from sqlite_utils.db import Table

JSON_COLUMNS = ("params", "tool_calls", "timings", "options")


def encode_row(row: dict) -> dict:
    return {k: json.dumps(v) if k in JSON_COLUMNS and v is not None else v for k, v in row.items()}


def decode_row(row: dict) -> dict:
    for k in JSON_COLUMNS:
        if isinstance(row.get(k), str):
            row[k] = json.loads(row[k])
    return row


def insert_row(table: Table, row: dict) -> int:
    """Insert one row into a table keyed by its integer rowid: the new row's id."""
    return cast(int, table.insert(row).last_pk)  # sqlite-utils types it for any primary key
