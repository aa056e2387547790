"""Rows as SQLite holds them: the JSON columns encoded and decoded, and inserts that return the new id."""

from __future__ import annotations

import functools
import json
from typing import cast

from sqlite_utils.db import Table

JSON_COLUMNS = ("params", "tool_calls", "timings", "options")


def encode_row(row: dict) -> dict:
    return {k: json.dumps(v) if k in JSON_COLUMNS and v is not None else v for k, v in row.items()}


def decode_rows(names: list[str], rows: list[tuple]) -> list[dict]:
    """Rows as dicts, their JSON columns decoded. Only the columns the query returned are looked at: a long
    chat's history is ten thousand rows."""
    decoded = list(map(dict, map(functools.partial(zip, names), rows)))  # (in C: no Python frame a row)
    encoded = [k for k in names if k in JSON_COLUMNS]
    for row in decoded if encoded else ():
        for k in encoded:
            if type(value := row[k]) is str:
                row[k] = json.loads(value)
    return decoded


def insert_row(table: Table, row: dict) -> int:
    """Insert one row into a table keyed by its integer rowid: the new row's id."""
    return cast(int, table.insert(row).last_pk)  # sqlite-utils types it for any primary key
