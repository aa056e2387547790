"""The database file itself: opening it safely, one writer at a time, and deleted text leaving it.

Several kernels of one user share the file, so every write transaction is ``BEGIN IMMEDIATE``: the
write lock is taken up front, where SQLite's busy timeout applies, instead of at the upgrade from a
read, where SQLite answers "database is locked" at once. A file ancia cannot use is never repaired
or overwritten: the error names it and leaves it as it was.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from ..errors import StoreError
from ..paths import private_dir, private_file
from .migrations import migrations

BUSY_TIMEOUT_S = 30
# FTS5 can drop a deleted row's words from the index in place since SQLite 3.42; older versions only
# add a delete marker, and the words stay in the file until the index is merged ("optimize").
SECURE_DELETE = sqlite3.sqlite_version_info >= (3, 42, 0)
# Above this many rows, merging the whole index once is faster than removing words in place.
IN_PLACE_LIMIT = 200
FTS = "messages_fts"
ELSEWHERE = "set ANCIA_DATA_DIR to another folder"


def connect(path: Path) -> tuple[Database, bool]:
    """Open ``path`` read-write, or read-only when the file or its folder cannot be written."""
    writable = _can_write(path)
    try:
        if writable:
            private_dir(path.parent)
            private_file(path)
            conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=BUSY_TIMEOUT_S)
        elif path.exists():
            conn = _connect_read_only(path)
        else:
            raise StoreError(f"Cannot create the database {path}: its folder is not writable. Make it "
                             f"writable, or {ELSEWHERE}.")
    except OSError as e:
        raise StoreError(f"Cannot open the database {path}: {e.strerror or e}. Check the folder's "
                         f"permissions, or {ELSEWHERE}.") from e
    except sqlite3.Error as e:
        raise store_error(path, e, "open") from e
    db = Database(conn)
    try:
        _check_is_ancia(db, path)
        for pragma in ("foreign_keys=ON", "secure_delete=ON", "synchronous=NORMAL"):
            conn.execute(f"PRAGMA {pragma}")
        if writable and conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            conn.execute("PRAGMA journal_mode=WAL")
        _prepare(db, path, writable)
    except sqlite3.Error as e:
        conn.close()
        raise store_error(path, e, "open") from e
    except BaseException:
        conn.close()
        raise
    return db, writable


def _can_write(path: Path) -> bool:
    if path.exists():
        return os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)
    folder = next(p for p in path.parents if p.exists())
    return os.access(folder, os.W_OK)


def _connect_read_only(path: Path) -> sqlite3.Connection:
    uri = path.resolve().as_uri()
    conn = sqlite3.connect(f"{uri}?mode=ro", uri=True, check_same_thread=False, isolation_level=None,
                           timeout=BUSY_TIMEOUT_S)
    try:
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        return conn
    except sqlite3.OperationalError:  # a WAL file needs its -shm, which a read-only folder cannot hold
        conn.close()
    return sqlite3.connect(f"{uri}?mode=ro&immutable=1", uri=True, check_same_thread=False, isolation_level=None)


def _check_is_ancia(db: Database, path: Path) -> None:
    """Refuse, untouched, an SQLite file some other program made."""
    tables = db.table_names()
    if not tables or (migrations.migrations_table in tables and migrations.applied(db)):
        return
    raise StoreError(f"{path} is an SQLite database but not ancia's (tables: {', '.join(tables[:5])}). "
                     f"Nothing was changed: move it aside, or {ELSEWHERE}.")


def _prepare(db: Database, path: Path, writable: bool) -> None:
    """Bring schema and search index up to date once, whichever process opens the file first.

    The check is repeated inside one ``BEGIN IMMEDIATE`` transaction: a second process opening a new
    database waits there for the first and then finds nothing left to do.
    """
    if not writable:
        if migrations.pending(db):
            raise StoreError(f"{path} needs an upgrade but is read-only. Open it once with write access, "
                             f"or {ELSEWHERE}.")
        return
    if not migrations.pending(db) and not _index_needs_work(db.conn):
        return
    with transaction(db.conn, path):
        migrations.apply(db)
        tune_search_index(db.conn)


def _index_needs_work(conn: sqlite3.Connection) -> bool:
    settings = dict(conn.execute(f"SELECT k, v FROM {FTS}_config").fetchall())
    if SECURE_DELETE:
        return settings.get("secure-delete") != 1
    return int(settings.get("version", 4)) > 4


def tune_search_index(conn: sqlite3.Connection) -> None:
    """Turn on in-place deletes where SQLite has them; rebuild an index only a newer SQLite can read."""
    if not _index_needs_work(conn):
        return
    if SECURE_DELETE:
        conn.execute(f"INSERT INTO {FTS}({FTS}, rank) VALUES('secure-delete', 1)")
        conn.execute(f"INSERT INTO {FTS}({FTS}) VALUES('optimize')")  # words of rows deleted before
    else:
        # A newer SQLite deleted in place (index format 5), which this one cannot read: rebuild the
        # index from the messages in the format it knows. Nothing but the index is touched.
        conn.execute(f"UPDATE {FTS}_config SET v = 4 WHERE k = 'version'")
        conn.execute(f"INSERT INTO {FTS}({FTS}) VALUES('rebuild')")


@contextmanager
def transaction(conn: sqlite3.Connection, path: Path) -> Iterator[sqlite3.Connection]:
    """One write transaction that takes the write lock first; any SQLite error becomes a StoreError."""
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            _roll_back(conn)
            raise
        conn.execute("COMMIT")
    except sqlite3.Error as e:
        _roll_back(conn)
        raise store_error(path, e, "write to") from e


def _roll_back(conn: sqlite3.Connection) -> None:
    try:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
    except sqlite3.ProgrammingError:  # the connection was closed (ancia closed meanwhile): nothing was written
        pass


def read_only_error(path: Path) -> StoreError:
    return StoreError(f"Cannot write to {path}: the file or its folder is read-only. Make both writable, "
                      f"or {ELSEWHERE}; nothing was changed.")


def store_error(path: Path, error: sqlite3.Error, doing: str) -> StoreError:
    """One line naming the file, what SQLite said, and what the user can do about it."""
    text = str(error)
    if "readonly" in text:
        advice = f"The file or its folder is read-only: make both writable, or {ELSEWHERE}"
    elif "full" in text:
        advice = "The disk is full: free some space and try again"
    elif "locked" in text or "busy" in text:
        advice = f"Another process held the database for {BUSY_TIMEOUT_S} s: try again"
    elif "closed database" in text:
        advice = "ancia was closed (`ancia.close()`, or the kernel shutting down) while this ran: run it again"
    elif "not a database" in text or "malformed" in text or "corrupt" in text:
        advice = f"The file is damaged or not ancia's: move it aside or restore a backup, or {ELSEWHERE}"
    else:
        advice = f"If this repeats, move the file aside or restore a backup, or {ELSEWHERE}"
    changed = "; nothing was changed" if doing != "read" else ""
    return StoreError(f"Cannot {doing} {path} ({text}). {advice}{changed}.")


def delete_messages(conn: sqlite3.Connection, where: str, params: Iterable[Any]) -> int:
    """Delete messages so that their words leave the file, not just the search results.

    secure_delete zeroes the rows; the search index drops their words in place for a few rows where
    SQLite can, and otherwise is merged once, which rewrites it without them.
    """
    params = list(params)
    rows = conn.execute(f"SELECT count(*) FROM messages WHERE {where}", params).fetchone()[0]
    in_place = SECURE_DELETE and rows <= IN_PLACE_LIMIT
    if SECURE_DELETE and not in_place:
        conn.execute(f"INSERT INTO {FTS}({FTS}, rank) VALUES('secure-delete', 0)")
    conn.execute(f"DELETE FROM messages WHERE {where}", params)
    if SECURE_DELETE and not in_place:
        conn.execute(f"INSERT INTO {FTS}({FTS}, rank) VALUES('secure-delete', 1)")
    if rows and not in_place:
        merge_index(conn)
    return rows


def merge_index(conn: sqlite3.Connection) -> None:
    """Rewrite the search index as one segment, leaving out every deleted or replaced entry."""
    conn.execute(f"INSERT INTO {FTS}({FTS}) VALUES('optimize')")


def checkpoint(conn: sqlite3.Connection, wait_s: float = 1.0) -> bool:
    """Copy the WAL into the database and truncate it, so frames holding deleted text go with it.

    Waits at most ``wait_s`` for other processes' readers, and returns whether SQLite's answer says
    the WAL was emptied: not busy, and every frame of the log copied back (``WalEmptier`` retries).
    """
    conn.execute(f"PRAGMA busy_timeout = {int(wait_s * 1000)}")
    try:
        busy, log, copied = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()[0]
    except sqlite3.OperationalError:
        return False
    finally:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_S * 1000}")
    return busy == 0 and log == copied


class WalEmptier:
    """Retries, in the background, a checkpoint that gave way to another process's reader.

    One daemon thread per store at most, on a connection of its own: it never takes the store's lock or
    touches its connection. An attempt waits for nobody (a waiting TRUNCATE checkpoint holds back every
    writer); they back off to one per ``RETRY_MAX_S`` and stop quietly after ``RETRY_FOR_S``.
    """

    RETRY_FIRST_S = 0.05
    RETRY_MAX_S = 0.5
    RETRY_FOR_S = 300.0

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._owed = self._emptied = 0  # deletes that found the WAL held; those a later checkpoint covered
        self._until = 0.0

    @property
    def pending(self) -> bool:
        return self._thread is not None

    def start(self) -> None:
        """Empty the WAL as soon as other processes let go of it; one thread however often it is called."""
        with self._lock:
            if self._stop.is_set():
                return
            self._owed += 1
            self._until = time.monotonic() + self.RETRY_FOR_S
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="ancia-empty-wal", daemon=True)
                self._thread.start()

    def stop(self) -> bool:
        """End the thread (it never waits on SQLite); returns, once, whether the WAL may still hold deleted text."""
        with self._lock:
            self._stop.set()
            thread = self._thread
        if thread is not None:
            thread.join(timeout=5)
        with self._lock:
            owed, self._emptied = self._emptied != self._owed, self._owed
        return owed

    def _run(self) -> None:
        delay, conn = self.RETRY_FIRST_S, None
        uri = f"{self.path.resolve().as_uri()}?mode=rw"  # never creates a file that went away
        try:
            while not self._stop.wait(delay):
                with self._lock:
                    owed = self._owed
                try:
                    if conn is None:
                        conn = sqlite3.connect(uri, uri=True, isolation_level=None)
                    emptied = checkpoint(conn, wait_s=0)
                except sqlite3.Error:
                    emptied = False
                with self._lock:  # a delete since this attempt began needs one more
                    if emptied:
                        self._emptied = owed
                    if self._emptied == self._owed or time.monotonic() > self._until:
                        self._thread = None
                        return
                delay = min(delay * 2, self.RETRY_MAX_S)
        finally:
            with self._lock:
                if self._thread is threading.current_thread():
                    self._thread = None
            if conn is not None:
                conn.close()


def file_size(path: Path) -> int:
    """Bytes of the database with its WAL, what the data takes on disk."""
    return sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists())


def vacuum(conn: sqlite3.Connection, path: Path) -> None:
    """Rebuild the file without its free pages, then empty the WAL the rebuild went through."""
    try:
        conn.execute("VACUUM")
    except sqlite3.Error as e:
        raise store_error(path, e, "compact") from e
    checkpoint(conn)
