"""``SqliteDicomIndex``: the embedded DICOM index, one SQLite file (implements the
:class:`~..database_protocol.DicomDatabase` protocol).

Only the standard library (``sqlite3``, ``hashlib``) and pydicom are used. Headers are read
once at import time (without pixel data, and for big SEG headers only the top-level
elements we need); every later query is answered from the database without opening files.
This class opens the file and hands each question to its part of :mod:`..sqlite`.

Decisions (details in ``docs/database.md``)
------------------------------------------
* **Identity** is the SOPInstanceUID. Importing a file whose UID is indexed with the same
  SHA-256 changes nothing; with different bytes it is reported as a *conflict* and the
  indexed instance is kept (:mod:`.ingest`).
* **Transactions**: files are read and hashed first, outside any transaction; then all
  rows of one :meth:`SqliteDicomIndex.import_paths` call are written in one
  ``BEGIN IMMEDIATE`` transaction. A crash or exception before ``COMMIT`` leaves the
  previous state (SQLite rolls back / the WAL frames are never committed).
* **Concurrency**: WAL journal (readers never block the writer) and a busy timeout, so a
  second process importing at the same time waits for the first commit instead of
  failing; duplicate checks run inside the write transaction, so two importers of the
  same files never create duplicates.
* **Schema version** in ``PRAGMA user_version``; a file from a newer version is refused
  (:mod:`.schema`).
"""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path
from typing import Any, Iterable

from AdaptiveBrushDicomLib import __version__
from AdaptiveBrushDicomLib.store.dicom_files import iter_files
from AdaptiveBrushDicomLib.store.records import (
    ImportReport,
    RemoveReport,
    SegSeriesInfo,
    SeriesInfo,
    StudyInfo,
    VerifyReport,
)
from AdaptiveBrushDicomLib.store.sqlite import ingest, maintenance, queries, schema
from AdaptiveBrushDicomLib.store.sqlite.connection import (
    BUSY_TIMEOUT_MS,
    READ_ONLY_MESSAGE,
    IndexDatabaseError,
    NewerSchemaError,
    ReadOnlyIndexError,
    WriteTransaction,
    is_writable,
    set_wal,
)
from AdaptiveBrushDicomLib.store.sqlite.ingest import ProgressCallback

#: Environment variable overriding the default database location.
DB_ENV_VAR = "ABDICOM_DB"


def default_database_path() -> Path:
    """``$ABDICOM_DB``, else ``$XDG_DATA_HOME/AdaptiveBrushDicom/index.sqlite``
    (``~/.local/share/AdaptiveBrushDicom/index.sqlite`` without XDG_DATA_HOME)."""
    env = os.environ.get(DB_ENV_VAR)
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base).expanduser() / "AdaptiveBrushDicom" / "index.sqlite"


class SqliteDicomIndex:
    """The embedded SQLite index (implements :class:`~..database_protocol.DicomDatabase`).

    Parameters
    ----------
    path : str or Path, optional
        Database file; default :func:`default_database_path`. Created (with its folder)
        on first use.
    timeout_ms : int
        How long to wait for another process's write transaction.

    Raises
    ------
    NewerSchemaError
        The file was written by a newer version of this package.
    ReadOnlyIndexError
        The file or its folder is not writable (queries still work on an existing file;
        imports and removals raise).
    IndexDatabaseError
        The file is not an SQLite database.
    """

    def __init__(self, path: str | Path | None = None, *, timeout_ms: int = BUSY_TIMEOUT_MS) -> None:
        self.path = Path(path).expanduser() if path is not None else default_database_path()
        self.timeout_ms = int(timeout_ms)
        self.read_only = False
        self._conn: sqlite3.Connection | None = None
        self._open()

    # ------------------------------------------------------------------ connection
    def _open(self) -> None:
        """Connect, check the file is an index of a schema we read, create or migrate it.

        Raises
        ------
        IndexDatabaseError
            A folder, not an SQLite database, or an SQLite file that is not ours.
        ReadOnlyIndexError
            The folder cannot be created or written, or a read-only file needs a new or
            upgraded schema.
        NewerSchemaError
            The file was written by a newer version of this package.
        """
        path = self.path
        if path.exists() and path.is_dir():
            raise IndexDatabaseError("is a folder; give the index database file (e.g. index.sqlite)", path)
        if not path.exists():
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise ReadOnlyIndexError(f"cannot create the database folder ({exc.strerror}); "
                                         "choose another location with --db or ABDICOM_DB", path) from None
        self.read_only = not is_writable(path)
        if self.read_only and not path.exists():
            raise ReadOnlyIndexError("folder is not writable, cannot create the index database; "
                                     "choose another location with --db or ABDICOM_DB", path)
        uri = path.resolve().as_uri() + ("?mode=ro" if self.read_only else "")
        try:
            conn = sqlite3.connect(uri, uri=True, timeout=self.timeout_ms / 1000.0, isolation_level=None,
                                   check_same_thread=False)
        except sqlite3.Error as exc:
            raise IndexDatabaseError(f"cannot open the index database ({exc})", path) from None
        self._conn = conn
        prepared = False
        try:
            self._prepare(conn)
            prepared = True
        except sqlite3.DatabaseError as exc:
            raise IndexDatabaseError(f"not a usable SQLite index database ({exc}); move it away or choose another "
                                     "with --db", path) from None
        finally:
            if not prepared:
                self.close()

    def _prepare(self, conn: sqlite3.Connection) -> None:
        """Pragmas, schema checks, creation / migration and reclassification of a new connection.

        Raises
        ------
        NewerSchemaError
            The file was written by a newer version of this package.
        ReadOnlyIndexError
            A read-only file that is not initialised or has an older schema.
        IndexDatabaseError
            An SQLite file that is not an AdaptiveBrushDicom index.
        """
        path = self.path
        conn.execute(f"PRAGMA busy_timeout = {self.timeout_ms}")
        conn.execute("PRAGMA foreign_keys = ON")
        version = schema.schema_version(conn)
        if version > schema.SCHEMA_VERSION:
            raise NewerSchemaError(
                f"index database has schema version {version}, this AdaptiveBrushDicom {__version__} reads up "
                f"to {schema.SCHEMA_VERSION}; upgrade AdaptiveBrushDicom or use another database with --db", path)
        if not self.read_only:
            schema.check_is_ours(conn, version, path)  # before anything changes the file (WAL, schema)
            set_wal(conn, self.timeout_ms)
            conn.execute("PRAGMA synchronous = NORMAL")
            if version < schema.SCHEMA_VERSION:
                with self._write():
                    schema.create_or_migrate(conn, path)
            if not schema.classification_is_current(conn):
                with self._write():
                    schema.reclassify(conn)
        elif version == 0:
            raise ReadOnlyIndexError("index database is read-only and not initialised; make it writable "
                                     "(chmod u+w) or choose another with --db", path)
        elif version < schema.SCHEMA_VERSION:
            raise ReadOnlyIndexError(f"index database has the older schema {version} and is read-only, so it "
                                     f"cannot be upgraded to {schema.SCHEMA_VERSION}; make it writable (chmod u+w) "
                                     "once", path)

    @property
    def conn(self) -> sqlite3.Connection:
        """The open connection.

        Raises
        ------
        IndexDatabaseError
            The index was closed.
        """
        if self._conn is None:
            raise IndexDatabaseError("index database is closed", self.path)
        return self._conn

    def close(self) -> None:
        """Close the connection (idempotent)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> "SqliteDicomIndex":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _write(self) -> WriteTransaction:
        """A write transaction on this index.

        Raises
        ------
        ReadOnlyIndexError
            The database file is read-only.
        """
        if self.read_only:
            raise ReadOnlyIndexError(READ_ONLY_MESSAGE, self.path)
        return WriteTransaction(self.conn, self.path)

    # ------------------------------------------------------------------ import
    def import_paths(self, paths: Iterable[str | Path], progress: ProgressCallback | None = None,
                     workers: int = 1, rehash: bool = False) -> ImportReport:
        """Index every file under ``paths`` in one transaction.

        Parameters
        ----------
        paths : files and/or folders (searched recursively).
        progress : callable ``(phase, done, total)``, optional
            Called per file with phase ``"read"`` (hashing / parsing, no transaction open)
            and ``"write"`` (inside the transaction). An exception raised by it aborts
            the import and rolls everything back.
        workers : int
            Processes reading and parsing files in parallel (used for batches of at least
            :data:`~.ingest.PARALLEL_MIN_FILES` files); the database is still written by
            this process in one transaction.
        rehash : bool
            Read and hash every file. By default a file already indexed at the same path
            with the same size and modification time (ns) is counted as unchanged without
            being read, like ``verify``'s quick mode.

        Returns
        -------
        ImportReport

        Raises
        ------
        UserError
            A path does not exist or is not a regular file / folder.
        ReadOnlyIndexError
            The database file is read-only.
        IndexDatabaseError
            Another process holds the write lock too long.
        """
        t0 = time.perf_counter()
        report = ImportReport()
        files = list(iter_files(paths))
        report.files_seen = len(files)
        parsed = ingest.read_files(self.conn, files, report, progress, workers=workers, rehash=rehash)
        with self._write():
            ingest.write_parsed(self.conn, parsed, report, progress)
        report.seconds = time.perf_counter() - t0
        return report

    # ------------------------------------------------------------------ queries
    def studies(self) -> list[StudyInfo]:
        """All studies, by patient, study description and UID."""
        return queries.studies(self.conn)

    def series_for_study(self, study_uid: str) -> list[SeriesInfo]:
        """Series of a study, by SeriesNumber."""
        return queries.series_for_study(self.conn, study_uid)

    def segs_for_series(self, volume_series_uid: str) -> list[SegSeriesInfo]:
        """SEG series whose ReferencedSeriesSequence names ``volume_series_uid``, grouped by study
        (run name), gold first, then trials in order (:func:`~..seg_order.sort_segs`)."""
        return queries.segs_for_series(self.conn, volume_series_uid)

    def trials_for_run(self, study_uid: str) -> list[SegSeriesInfo]:
        """Trial SEGs of one run (study), by trial number."""
        return queries.trials_for_run(self.conn, study_uid)

    def gold_for_volume(self, volume_series_uid: str) -> list[SegSeriesInfo]:
        """Gold-standard SEGs referencing ``volume_series_uid`` (usually zero or one)."""
        return queries.gold_for_volume(self.conn, volume_series_uid)

    def files_for_series(self, series_uid: str) -> list[Path]:
        """Files of a series, by InstanceNumber."""
        return queries.files_for_series(self.conn, series_uid)

    def file_for_instance(self, sop_instance_uid: str) -> Path | None:
        """File of one instance, None if unknown."""
        return queries.file_for_instance(self.conn, sop_instance_uid)

    def counts(self) -> dict[str, int]:
        """Number of rows per table."""
        return queries.counts(self.conn)

    def show(self, uid: str) -> dict[str, Any]:
        """Everything indexed about ``uid`` (SOP instance, series, study UID or PatientID).

        Raises
        ------
        UnknownUIDError
            ``uid`` is not in the index.
        """
        return queries.show(self.conn, uid, self.path)

    # ------------------------------------------------------------------ maintenance
    def verify(self, full: bool = False) -> VerifyReport:
        """Check every indexed file exists and holds the indexed bytes.

        Files whose size and modification time are unchanged are trusted unless ``full``;
        the others are re-hashed.
        """
        return maintenance.verify(self.conn, full)

    def remove_missing(self) -> RemoveReport:
        """Forget instances whose files are gone, then series, studies and patients left empty
        (one transaction).

        Raises
        ------
        ReadOnlyIndexError
            The database file is read-only.
        IndexDatabaseError
            Another process holds the write lock too long.
        """
        gone = maintenance.missing_instances(self.conn)
        with self._write():
            return maintenance.forget(self.conn, gone)
