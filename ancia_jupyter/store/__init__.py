"""The store: the per-user SQLite database, the only code that writes SQL.

``database`` is the ``Store`` every part of ancia shares; ``files`` opens, checks, checkpoints and compacts
the file and turns SQLite errors into one line; ``state`` holds the settings, params, tool, model and
plugin tables; ``migrations`` are the append-only schema changes.
"""
