"""The store: the per-user SQLite database, the only code that writes SQL.

``database`` is the ``Store`` every part of ancia shares, and its chats; ``messages`` holds the messages,
their attachments and the search; ``state`` the settings, params, tool, model and plugin tables; ``rows``
encodes their JSON columns; ``files`` opens, checks, checkpoints and compacts the file and turns SQLite
errors into one line; ``migrations`` are the append-only schema changes.
"""
