"""The store: the per-user SQLite database, the only code that writes SQL.

``database`` is the ``Store`` every part of ancia shares, and its chats; ``messages`` holds the messages,
their attachments and the search; ``state`` the settings, params, tool, model and plugin tables; ``rows``
encodes their JSON columns; ``files`` opens, checks, checkpoints and compacts the file and turns SQLite
errors into one line; ``migrations`` are the append-only schema changes.
"""

import sys as _sys


def _import_sqlite_utils() -> None:
    """Import sqlite-utils without pandas. sqlite-utils imports pandas whenever it is installed, only to map
    pandas' types to column types, which the store never writes: in a kernel that has not imported pandas
    itself, that is ~110 MB of resident memory and half a second for nothing. pandas is hidden only for the
    time of this one import, and only when nothing has imported it yet."""
    if "sqlite_utils" in _sys.modules or "pandas" in _sys.modules:
        return
    _sys.modules["pandas"] = None  # type: ignore[assignment]  # an import of pandas now raises ImportError
    try:
        import sqlite_utils  # noqa: F401
    finally:
        if _sys.modules.get("pandas", 0) is None:
            del _sys.modules["pandas"]


_import_sqlite_utils()
