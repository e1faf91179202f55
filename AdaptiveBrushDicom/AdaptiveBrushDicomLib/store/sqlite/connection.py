"""The SQLite connection of the index: its errors, write transactions and row helpers.

Every write goes through :class:`WriteTransaction` (``BEGIN IMMEDIATE`` ... ``COMMIT``,
rollback on any exception), so a crash or an exception before ``COMMIT`` leaves the
previous state. SQLite's "read-only" and "locked" errors become one-line
:class:`IndexDatabaseError` messages naming the file and what to do.
"""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path
from typing import Any, Iterator, Literal, Sequence

from AdaptiveBrushDicomLib.errors import UserError

#: Milliseconds a connection waits for another process's write transaction.
BUSY_TIMEOUT_MS = 60_000


class IndexDatabaseError(UserError):
    """The index database cannot be used (newer schema, read-only, corrupt)."""


class ReadOnlyIndexError(IndexDatabaseError):
    """The index database file (or its folder) is not writable."""


class NewerSchemaError(IndexDatabaseError):
    """The index database was written by a newer AdaptiveBrushDicom."""


def is_writable(path: Path) -> bool:
    """Whether this process may write ``path`` (or create it in its folder)."""
    if path.exists():
        return os.access(path, os.W_OK)
    return os.access(path.parent, os.W_OK)


#: The message of a :class:`ReadOnlyIndexError` raised by a write on a read-only database.
READ_ONLY_MESSAGE = "index database is read-only; make it writable (chmod u+w) or choose another with --db"


def set_wal(conn: sqlite3.Connection, timeout_ms: int) -> None:
    """Switch ``conn``'s database to the WAL journal, retrying while another process holds it.

    Raises
    ------
    sqlite3.OperationalError
        The switch failed for another reason than a lock, or the lock was held longer than
        ``timeout_ms``.
    """
    deadline = time.monotonic() + timeout_ms / 1000.0
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL").fetchone()
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


class WriteTransaction:
    """``BEGIN IMMEDIATE`` ... ``COMMIT``; rollback on any exception; read-only errors made clear.

    Parameters
    ----------
    conn : sqlite3.Connection
        An autocommit connection (``isolation_level=None``).
    path : Path
        The database file, named in error messages.
    """

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self.conn = conn
        self.path = path

    def __enter__(self) -> sqlite3.Connection:
        """Begin the transaction (taking the write lock now, not at the first write).

        Raises
        ------
        IndexDatabaseError
            The database is read-only, or another process holds the write lock too long.
        sqlite3.OperationalError
            Any other SQLite failure to begin.
        """
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            error = translate(exc, self.path)
            raise error from None
        return self.conn

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> Literal[False]:
        """Commit, or roll back when the block raised.

        Raises
        ------
        IndexDatabaseError
            The commit (or the block) failed because the database is read-only or locked.
        sqlite3.OperationalError
            Any other SQLite failure to commit.
        """
        conn = self.conn
        if exc_type is None:
            try:
                conn.execute("COMMIT")
                return False
            except sqlite3.OperationalError as err:
                conn.execute("ROLLBACK")
                error = translate(err, self.path)
                raise error from None
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        if isinstance(exc, sqlite3.OperationalError):
            error = translate(exc, self.path)
            raise error from None
        return False


def translate(exc: sqlite3.Error, path: Path) -> Exception:
    """The user-facing error for an SQLite error on ``path`` (``exc`` itself if it is not ours)."""
    msg = str(exc)
    if "readonly" in msg or "read-only" in msg:
        return ReadOnlyIndexError(READ_ONLY_MESSAGE, path)
    if "locked" in msg or "busy" in msg:
        return IndexDatabaseError("index database is busy (another process holds the write lock too long); "
                                  "try again", path)
    return exc


def rows(conn: sqlite3.Connection, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
    """The rows of one query as ``{column: value}`` dicts."""
    cur = conn.execute(sql, params)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row)) for row in cur.fetchall()]


def chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    """``items`` in slices of at most ``size`` (SQLite limits the parameters of one statement)."""
    for i in range(0, len(items), size):
        yield items[i:i + size]


def placeholders(n: int) -> str:
    """``?,?,...`` for an ``IN (...)`` of ``n`` parameters."""
    return ",".join("?" * n)
