"""Embedded DICOM index: one SQLite file answering the :class:`~.database.DicomDatabase` queries.

Only the standard library (``sqlite3``, ``hashlib``) and pydicom are used. Headers are read
once at import time (without pixel data, and for big SEG headers only the top-level
elements we need); every later query is answered from the database without opening files.

Decisions (details in ``docs/database.md``)
------------------------------------------
* **Identity** is the SOPInstanceUID. Importing a file whose UID is indexed with the same
  SHA-256 changes nothing; with different bytes it is reported as a *conflict* and the
  indexed instance is kept.
* **Transactions**: files are read and hashed first, outside any transaction; then all
  rows of one :meth:`SqliteDicomIndex.import_paths` call are written in one
  ``BEGIN IMMEDIATE`` transaction. A crash or exception before ``COMMIT`` leaves the
  previous state (SQLite rolls back / the WAL frames are never committed).
* **Concurrency**: WAL journal (readers never block the writer) and a busy timeout, so a
  second process importing at the same time waits for the first commit instead of
  failing; duplicate checks run inside the write transaction, so two importers of the
  same files never create duplicates.
* **Schema version** in ``PRAGMA user_version``; a file from a newer version is refused.
"""

from __future__ import annotations

import hashlib
import io
import os
import sqlite3
import struct
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Literal, Sequence

from AdaptiveBrushDicomLib import __version__
from AdaptiveBrushDicomLib.dicom.sop_class import SEG_SOP_CLASS_UIDS
from AdaptiveBrushDicomLib.io.digest import sha256_file, sha256_stream
from AdaptiveBrushDicomLib.store.database import (
    CLASSIFIER_VERSION,
    KIND_TRIAL,
    FileIssue,
    ImportReport,
    RemoveReport,
    SegSeriesInfo,
    SegSummary,
    SeriesInfo,
    StudyInfo,
    UnknownUIDError,
    VerifyReport,
    build_seg_info,
    classify_series,
    gold_only,
    iter_files,
    looks_like_dicom,
    run_name_from_content,
    seg_summary_from_dataset,
    sort_segs,
    trials_in_order,
)
from AdaptiveBrushDicomLib.dicom import walker
from AdaptiveBrushDicomLib.errors import InputFileError, UserError

#: Version of the schema this code writes. Bump it (and add a migration) on every change.
SCHEMA_VERSION = 2
#: Environment variable overriding the default database location.
DB_ENV_VAR = "ABDICOM_DB"
#: Smallest batch for which ``import_paths(workers > 1)`` starts worker processes.
PARALLEL_MIN_FILES = 200
#: Milliseconds a connection waits for another process's write transaction.
BUSY_TIMEOUT_MS = 60_000

#: Top-level tags read from every file (SEG sequences included; per-frame groups skipped).
HEADER_TAGS = [
    "PatientID", "PatientName", "StudyInstanceUID", "StudyDate", "StudyDescription", "StudyID",
    "SeriesInstanceUID", "SeriesDescription", "SeriesNumber", "Modality", "FrameOfReferenceUID",
    "SOPClassUID", "SOPInstanceUID", "InstanceNumber", "ContentLabel", "ContentDescription", "SegmentationType",
    "ReferencedSeriesSequence", "SegmentSequence",
]

_SCHEMA = """
CREATE TABLE patients (
    patient_id      TEXT PRIMARY KEY,          -- PatientID (0010,0020), '' if absent
    patient_name    TEXT NOT NULL DEFAULT ''
);
CREATE TABLE studies (
    study_uid         TEXT PRIMARY KEY,
    patient_id        TEXT NOT NULL REFERENCES patients(patient_id),
    study_date        TEXT NOT NULL DEFAULT '',
    study_description TEXT NOT NULL DEFAULT '', -- run name for optimisation runs
    study_id          TEXT NOT NULL DEFAULT ''
);
CREATE INDEX studies_patient ON studies(patient_id);
CREATE TABLE series (
    series_uid          TEXT PRIMARY KEY,
    study_uid           TEXT NOT NULL REFERENCES studies(study_uid),
    modality            TEXT NOT NULL DEFAULT '',
    series_description  TEXT NOT NULL DEFAULT '',
    series_number       INTEGER,
    frame_of_reference_uid TEXT NOT NULL DEFAULT '',
    content_label       TEXT NOT NULL DEFAULT '',
    kind                TEXT NOT NULL DEFAULT 'other',   -- gold / trial / other (SEG only)
    trial_number        INTEGER,
    trial_algorithm     TEXT,
    content_description TEXT NOT NULL DEFAULT '',        -- schema 2
    run_name            TEXT NOT NULL DEFAULT ''         -- schema 2: '<run>' of '<run> trial <n>'
);
CREATE INDEX series_study ON series(study_uid);
CREATE TABLE instances (
    sop_uid             TEXT PRIMARY KEY,
    series_uid          TEXT NOT NULL REFERENCES series(series_uid),
    sop_class_uid       TEXT NOT NULL DEFAULT '',
    transfer_syntax_uid TEXT NOT NULL DEFAULT '',
    instance_number     INTEGER,
    path                TEXT NOT NULL UNIQUE,
    size                INTEGER NOT NULL,
    sha256              TEXT NOT NULL,
    mtime_ns            INTEGER NOT NULL,
    indexed_at          REAL NOT NULL
);
CREATE INDEX instances_series ON instances(series_uid);
CREATE TABLE seg_references (
    sop_uid             TEXT NOT NULL REFERENCES instances(sop_uid) ON DELETE CASCADE,
    referenced_series_uid TEXT NOT NULL,
    PRIMARY KEY (sop_uid, referenced_series_uid)
) WITHOUT ROWID;
CREATE INDEX seg_references_target ON seg_references(referenced_series_uid);
CREATE TABLE seg_segments (
    sop_uid             TEXT NOT NULL REFERENCES instances(sop_uid) ON DELETE CASCADE,
    segment_number      INTEGER NOT NULL,
    label               TEXT NOT NULL DEFAULT '',
    algorithm_name      TEXT NOT NULL DEFAULT '',
    algorithm_type      TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (sop_uid, segment_number)
) WITHOUT ROWID;
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


class IndexDatabaseError(UserError):
    """The index database cannot be used (newer schema, read-only, corrupt)."""


class ReadOnlyIndexError(IndexDatabaseError):
    """The index database file (or its folder) is not writable."""


class NewerSchemaError(IndexDatabaseError):
    """The index database was written by a newer AdaptiveBrushDicom."""


def default_database_path() -> Path:
    """``$ABDICOM_DB``, else ``$XDG_DATA_HOME/AdaptiveBrushDicom/index.sqlite``
    (``~/.local/share/AdaptiveBrushDicom/index.sqlite`` without XDG_DATA_HOME)."""
    env = os.environ.get(DB_ENV_VAR)
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base).expanduser() / "AdaptiveBrushDicom" / "index.sqlite"


def _is_writable(path: Path) -> bool:
    """Whether this process may write ``path`` (or create it in its folder)."""
    if path.exists():
        return os.access(path, os.W_OK)
    return os.access(path.parent, os.W_OK)


# ---------------------------------------------------------------------- parsing one file
@dataclass
class ParsedFile:
    """What import keeps of one file (built outside any transaction)."""

    path: str
    size: int
    mtime_ns: int
    sha256: str
    header: dict[str, Any]
    transfer_syntax_uid: str
    seg: SegSummary | None


class _NotDicom(Exception):
    pass


class _BadDicom(Exception):
    def __init__(self, reason: str, uid: str | None = None) -> None:
        super().__init__(reason)
        self.uid = uid


def _s(ds: Any, name: str) -> str:
    """Top-level text value of ``name`` ("" if absent), decoding plain ASCII values straight
    from the raw element (pydicom's keyword lookup and value conversion dominate import time)."""
    from pydicom.datadict import tag_for_keyword
    from pydicom.dataelem import RawDataElement

    tag = _TAG_CACHE.get(name)
    if tag is None:
        tag = _TAG_CACHE[name] = int(tag_for_keyword(name))  # type: ignore[arg-type]
    elem = ds.get_item(tag)
    if elem is None:
        return ""
    if isinstance(elem, RawDataElement):
        raw = elem.value
        if raw is None:
            return ""
        if isinstance(raw, bytes) and raw.isascii():
            return raw.decode("ascii").strip("\x00 ").strip()
        elem = ds[tag]  # non-ASCII text: let pydicom apply SpecificCharacterSet
    value = elem.value
    return "" if value is None else str(value).strip()


_TAG_CACHE: dict[str, int] = {}


def _int_or_none(value: str) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        try:
            return int(float(value))
        except (TypeError, ValueError):
            return None


_LONG_VRS = walker.LONG_VRS


def _pixel_data_truncated(head: bytes, offset: int, total: int, tail: bytes, explicit_vr: bool) -> bool:
    """True if the (7FE0,xxxx) element whose first bytes ``head`` start at ``offset`` runs past
    ``total`` bytes (little endian). ``tail`` = the last bytes of the file, where an
    encapsulated pixel data element must end with its sequence delimitation item."""
    if offset >= total:
        return False  # no pixel data at all (SR, headers only...)
    if len(head) < 8:
        return True
    if head[0:2] != b"\xe0\x7f":
        return False  # not a pixel data element: nothing to check
    if explicit_vr and head[4:6] in _LONG_VRS:
        if len(head) < 12:
            return True
        length, start = struct.unpack("<I", head[8:12])[0], offset + 12
    elif explicit_vr:
        length, start = struct.unpack("<H", head[6:8])[0], offset + 8
    else:
        length, start = struct.unpack("<I", head[4:8])[0], offset + 8
    if length == 0xFFFFFFFF:  # encapsulated
        return b"\xfe\xff\xdd\xe0" not in tail
    return start + length > total


#: Files up to this size are read into memory once (hash + parse); larger ones are hashed
#: in chunks and parsed from disk.
IN_MEMORY_MAX_BYTES = 64 * 1024 * 1024
_TAIL_BYTES = 4096


def parse_file(path: Path) -> ParsedFile:
    """Read, hash and parse one file.

    Raises
    ------
    _NotDicom
        No DICOM preamble or an unparseable header.
    _BadDicom
        A DICOM file we cannot index (truncated, no SOPInstanceUID...).
    """
    st = path.stat()
    with open(path, "rb") as fh:
        if st.st_size <= IN_MEMORY_MAX_BYTES:
            data = fh.read()
            if not looks_like_dicom(path, data[:132]):
                raise _NotDicom()
            digest = hashlib.sha256(data).hexdigest()
            return _parse_open(path, st, io.BytesIO(data), len(data), digest)
        if not looks_like_dicom(path, fh.read(132)):
            raise _NotDicom()
        fh.seek(0)
        digest = sha256_stream(fh)
        fh.seek(0)
        return _parse_open(path, st, fh, st.st_size, digest)


def _parse_open(path: Path, st: os.stat_result, fp: Any, total: int, digest: str) -> ParsedFile:
    """Parse the header from the open binary file object ``fp`` (``total`` bytes long)."""
    from pydicom.errors import InvalidDicomError

    try:
        ds = walker.dcmread(path, fh=fp, stop_before_pixels=True, specific_tags=HEADER_TAGS)
    except InputFileError as exc:  # the walker's: corrupt Deflated data, a deflate bomb
        raise _BadDicom(exc.message) from None
    except InvalidDicomError as exc:
        raise _BadDicom(f"not a valid DICOM file ({exc})") from None
    except Exception as exc:  # EOFError, struct/zlib errors, ValueError on truncated files
        raise _BadDicom(f"truncated or corrupt DICOM header ({type(exc).__name__}: {exc}); "
                        "copy the file again from its source") from None
    meta = getattr(ds, "file_meta", None)
    ts = str(getattr(meta, "TransferSyntaxUID", "") or "")
    uid = _s(ds, "SOPInstanceUID") or str(getattr(meta, "MediaStorageSOPInstanceUID", "") or "")
    end_of_header = fp.tell()
    if not uid:
        if end_of_header >= total:
            raise _BadDicom("truncated: the header ends before SOPInstanceUID (0008,0018); "
                            "copy the file again from its source")
        raise _BadDicom("no SOPInstanceUID (0008,0018); the file cannot be identified, fix or remove it")
    if not _s(ds, "SeriesInstanceUID") or not _s(ds, "StudyInstanceUID"):
        raise _BadDicom("no StudyInstanceUID (0020,000D) or SeriesInstanceUID (0020,000E); fix or remove it", uid)
    try:
        from pydicom.uid import UID

        tsu = UID(ts) if ts else None
        deflated = tsu is not None and tsu.is_deflated
        if tsu is not None and not deflated and tsu.is_little_endian and end_of_header < total:
            fp.seek(end_of_header)
            head = fp.read(12)
            fp.seek(max(end_of_header, total - _TAIL_BYTES))
            tail = fp.read()
            if _pixel_data_truncated(head, end_of_header, total, tail, tsu.is_implicit_VR is False):
                raise _BadDicom("truncated: the pixel data ends before its declared length; "
                                "copy the file again from its source", uid)
    except _BadDicom:
        raise
    except Exception:  # unknown transfer syntax: keep the header-level check only
        pass
    header = {name: _s(ds, name) for name in HEADER_TAGS if name not in ("ReferencedSeriesSequence",
                                                                           "SegmentSequence")}
    header["SOPInstanceUID"] = uid
    seg = None
    if header["SOPClassUID"] in SEG_SOP_CLASS_UIDS or header["Modality"].upper() == "SEG":
        seg = seg_summary_from_dataset(ds)
    return ParsedFile(str(path.resolve()), st.st_size, st.st_mtime_ns, digest, header, ts, seg)


def _parse_outcome(path: Path) -> tuple[str, Any]:
    """:func:`parse_file` with its outcome as a picklable value (for worker processes)."""
    try:
        return "ok", parse_file(path)
    except _NotDicom:
        return "non_dicom", None
    except _BadDicom as exc:
        return "error", (str(exc), exc.uid)
    except OSError as exc:
        return "error", (f"cannot read ({exc.strerror or exc})", None)


# ---------------------------------------------------------------------- the index
ProgressCallback = Callable[[str, int, int], None]


class SqliteDicomIndex:
    """The embedded SQLite index (implements :class:`~.database.DicomDatabase`).

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
        path = self.path
        if path.exists() and path.is_dir():
            raise IndexDatabaseError("is a folder; give the index database file (e.g. index.sqlite)", path)
        if not path.exists():
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise ReadOnlyIndexError(f"cannot create the database folder ({exc.strerror}); "
                                         "choose another location with --db or ABDICOM_DB", path) from None
        self.read_only = not _is_writable(path)
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
        try:
            conn.execute(f"PRAGMA busy_timeout = {self.timeout_ms}")
            conn.execute("PRAGMA foreign_keys = ON")
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise NewerSchemaError(
                    f"index database has schema version {version}, this AdaptiveBrushDicom {__version__} reads up "
                    f"to {SCHEMA_VERSION}; upgrade AdaptiveBrushDicom or use another database with --db", path)
            if not self.read_only:
                self._check_is_ours(version)  # before anything changes the file (WAL, schema)
                self._set_wal()
                conn.execute("PRAGMA synchronous = NORMAL")
                if version < SCHEMA_VERSION:
                    self._create_or_migrate()
                self._reclassify_if_needed()
            elif version == 0:
                raise ReadOnlyIndexError("index database is read-only and not initialised; make it writable "
                                         "(chmod u+w) or choose another with --db", path)
            elif version < SCHEMA_VERSION:
                raise ReadOnlyIndexError(f"index database has the older schema {version} and is read-only, so it "
                                         f"cannot be upgraded to {SCHEMA_VERSION}; make it writable (chmod u+w) once",
                                         path)
        except sqlite3.DatabaseError as exc:
            conn.close()
            self._conn = None
            raise IndexDatabaseError(f"not a usable SQLite index database ({exc}); move it away or choose another "
                              "with --db", path) from None
        except UserError:
            conn.close()
            self._conn = None
            raise

    def _check_is_ours(self, version: int) -> None:
        """Refuse an SQLite file that is not an AdaptiveBrushDicom index, reading only.

        An empty database (no tables, ``user_version`` 0) becomes a new index; tables
        without a ``meta`` table whose ``created_by`` names AdaptiveBrushDicom are someone
        else's file, which must not be switched to WAL mode or given our schema.
        """
        conn = self.conn
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if not tables and version == 0:
            return
        created_by = None
        if "meta" in tables:
            row = conn.execute("SELECT value FROM meta WHERE key = 'created_by'").fetchone()
            created_by = None if row is None else str(row[0])
        if created_by is None or not created_by.startswith("AdaptiveBrushDicom"):
            raise IndexDatabaseError(
                f"file is an SQLite database but not an AdaptiveBrushDicom index (user_version {version}, "
                f"tables {', '.join(sorted(tables)[:5])}); it was not changed: choose another with --db", self.path)

    def _set_wal(self) -> None:
        assert self._conn is not None
        deadline = time.monotonic() + self.timeout_ms / 1000.0
        while True:
            try:
                self._conn.execute("PRAGMA journal_mode = WAL").fetchone()
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def _create_or_migrate(self) -> None:
        conn = self.conn
        with self._write():
            version = conn.execute("PRAGMA user_version").fetchone()[0]  # re-read under the lock
            if version > SCHEMA_VERSION:
                raise NewerSchemaError(f"index database has schema version {version}, newer than "
                                       f"{SCHEMA_VERSION}; upgrade AdaptiveBrushDicom", self.path)
            if version == 0:
                has_tables = conn.execute("SELECT count(*) FROM sqlite_master WHERE type='table'").fetchone()[0]
                if has_tables:
                    raise IndexDatabaseError("file is an SQLite database but not an AdaptiveBrushDicom index "
                                      "(user_version 0 with tables); choose another with --db", self.path)
                for stmt in _SCHEMA.split(";"):
                    if stmt.strip():
                        conn.execute(stmt)
                conn.execute("INSERT INTO meta(key, value) VALUES ('created_by', ?)",
                             (f"AdaptiveBrushDicom {__version__}",))
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            elif version == 1:
                self._migrate_1_to_2()
            # future: if version <= 2: migrate to 3 ...

    def _migrate_1_to_2(self) -> None:
        """Schema 2 adds series.content_description and series.run_name; the values are read
        from the first existing file of every SEG series (inside the caller's transaction)."""
        import pydicom

        conn = self.conn
        conn.execute("ALTER TABLE series ADD COLUMN content_description TEXT NOT NULL DEFAULT ''")
        conn.execute("ALTER TABLE series ADD COLUMN run_name TEXT NOT NULL DEFAULT ''")
        rows = conn.execute("SELECT se.series_uid, i.path FROM series se JOIN instances i ON i.series_uid = "
                            "se.series_uid WHERE se.modality = 'SEG' ORDER BY se.series_uid, i.path").fetchall()
        done: set[str] = set()
        for series_uid, path in rows:
            if series_uid in done:
                continue
            try:
                ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["ContentDescription"])
            except Exception:  # gone or unreadable: try the next file of the series
                continue
            conn.execute("UPDATE series SET content_description = ? WHERE series_uid = ?",
                         (_s(ds, "ContentDescription"), series_uid))
            done.add(series_uid)
        conn.execute("DELETE FROM meta WHERE key = 'classifier_version'")  # recompute kind and run names
        conn.execute("PRAGMA user_version = 2")

    def _reclassify_if_needed(self) -> None:
        """Recompute the cached gold/trial classification of SEG series when the rules changed."""
        conn = self.conn
        row = conn.execute("SELECT value FROM meta WHERE key = 'classifier_version'").fetchone()
        if row is not None and row[0] == str(CLASSIFIER_VERSION):
            return
        with self._write():
            rows = conn.execute("SELECT series_uid, series_description, content_label, content_description "
                                "FROM series WHERE series_uid IN (SELECT DISTINCT i.series_uid FROM seg_references r "
                                "JOIN instances i ON i.sop_uid = r.sop_uid) OR modality = 'SEG'").fetchall()
            for uid, desc, label, content in rows:
                tag = classify_series(desc, label)
                run = run_name_from_content(content) if tag.kind == KIND_TRIAL else ""
                conn.execute("UPDATE series SET kind = ?, trial_number = ?, trial_algorithm = ?, run_name = ? "
                             "WHERE series_uid = ?", (tag.kind, tag.trial_number, tag.algorithm, run, uid))
            conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('classifier_version', ?)",
                         (str(CLASSIFIER_VERSION),))

    @property
    def conn(self) -> sqlite3.Connection:
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

    def _write(self) -> "_WriteTransaction":
        if self.read_only:
            raise ReadOnlyIndexError("index database is read-only; make it writable (chmod u+w) or choose "
                                     "another with --db", self.path)
        return _WriteTransaction(self)

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        cur = self.conn.execute(sql, params)
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row)) for row in cur.fetchall()]

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
            :data:`PARALLEL_MIN_FILES` files); the database is still written by this process
            in one transaction.
        rehash : bool
            Read and hash every file. By default a file already indexed at the same path
            with the same size and modification time (ns) is counted as unchanged without
            being read, like ``verify``'s quick mode.

        Returns
        -------
        ImportReport
        """
        t0 = time.perf_counter()
        report = ImportReport()
        files = list(iter_files(paths))
        report.files_seen = len(files)
        if not rehash:
            files = self._skip_known(files, report)
        parsed: list[ParsedFile] = []
        workers = max(1, int(workers or 1))
        if workers > 1 and len(files) >= PARALLEL_MIN_FILES:
            from concurrent.futures import ProcessPoolExecutor

            with ProcessPoolExecutor(max_workers=workers) as pool:
                outcomes: Iterable[tuple[str, Any]] = pool.map(_parse_outcome, files, chunksize=64)
                self._collect(files, outcomes, parsed, report, progress)
        else:
            self._collect(files, map(_parse_outcome, files), parsed, report, progress)
        # duplicates inside the batch: first file wins, the rest are unchanged or conflicts
        with self._write():
            self._write_batch(parsed, report, progress)
        report.seconds = time.perf_counter() - t0
        return report

    def _skip_known(self, files: list[Path], report: ImportReport) -> list[Path]:
        """Files not indexed with the same path, size and mtime; the others count as unchanged."""
        known = {path: (size, mtime) for path, size, mtime in
                 self.conn.execute("SELECT path, size, mtime_ns FROM instances")}
        if not known:
            return files
        todo = []
        for f in files:
            entry = known.get(str(f.resolve()))
            if entry is not None:
                try:
                    st = f.stat()
                except OSError:
                    st = None
                if st is not None and (st.st_size, st.st_mtime_ns) == entry:
                    report.unchanged += 1
                    continue
            todo.append(f)
        return todo

    @staticmethod
    def _collect(files: list[Path], outcomes: Iterable[tuple[str, Any]], parsed: list[ParsedFile],
                 report: ImportReport, progress: ProgressCallback | None) -> None:
        for n, (f, (kind, value)) in enumerate(zip(files, outcomes), start=1):
            if kind == "ok":
                parsed.append(value)
            elif kind == "non_dicom":
                report.non_dicom += 1
            else:
                report.errors.append(FileIssue(str(f), value[0], value[1]))
            if progress:
                progress("read", n, len(files))

    def _write_batch(self, parsed: list[ParsedFile], report: ImportReport,
                     progress: ProgressCallback | None) -> None:
        conn = self.conn
        now = time.time()
        uids = [p.header["SOPInstanceUID"] for p in parsed]
        known: dict[str, tuple[str, str]] = {}
        for chunk in _chunks(uids, 500):
            q = f"SELECT sop_uid, sha256, path FROM instances WHERE sop_uid IN ({','.join('?' * len(chunk))})"
            for sop, sha, path in conn.execute(q, chunk):
                known[sop] = (sha, path)
        seen_patients: set[str] = set()
        seen_studies: set[str] = set()
        seen_series: set[str] = set()
        for n, p in enumerate(parsed, start=1):
            h = p.header
            uid = h["SOPInstanceUID"]
            if uid in known:
                sha, old_path = known[uid]
                if sha != p.sha256 and old_path == p.path:
                    report.conflicts.append(FileIssue(
                        p.path, "file changed since it was indexed (same SOPInstanceUID, different bytes); the "
                        "index keeps the old record and 'abdicom db verify' reports it: restore the file or give "
                        "the new content a new SOPInstanceUID", uid))
                elif sha != p.sha256:
                    report.conflicts.append(FileIssue(
                        p.path, f"same SOPInstanceUID as indexed file {old_path} but different content; "
                        "not imported (give one of them a new SOPInstanceUID or remove the wrong one)", uid))
                elif old_path != p.path and not Path(old_path).exists():
                    conn.execute("DELETE FROM instances WHERE path = ? AND sop_uid != ?", (p.path, uid))
                    conn.execute("UPDATE instances SET path = ?, mtime_ns = ?, size = ? WHERE sop_uid = ?",
                                 (p.path, p.mtime_ns, p.size, uid))
                    known[uid] = (sha, p.path)
                    report.relocated += 1
                else:
                    report.unchanged += 1
            else:
                pid = h["PatientID"]
                if pid not in seen_patients:
                    conn.execute("INSERT INTO patients(patient_id, patient_name) VALUES (?, ?) "
                                 "ON CONFLICT(patient_id) DO UPDATE SET patient_name = "
                                 "CASE WHEN patients.patient_name = '' THEN excluded.patient_name "
                                 "ELSE patients.patient_name END", (pid, h["PatientName"]))
                    seen_patients.add(pid)
                study = h["StudyInstanceUID"]
                if study not in seen_studies:
                    conn.execute("INSERT OR IGNORE INTO studies(study_uid, patient_id, study_date, study_description, "
                                 "study_id) VALUES (?, ?, ?, ?, ?)",
                                 (study, pid, h["StudyDate"], h["StudyDescription"], h["StudyID"]))
                    seen_studies.add(study)
                series = h["SeriesInstanceUID"]
                if series not in seen_series:
                    tag = classify_series(h["SeriesDescription"], h["ContentLabel"]) if p.seg else None
                    run = run_name_from_content(h["ContentDescription"]) if tag and tag.kind == KIND_TRIAL else ""
                    conn.execute(
                        "INSERT OR IGNORE INTO series(series_uid, study_uid, modality, series_description, "
                        "series_number, frame_of_reference_uid, content_label, kind, trial_number, trial_algorithm, "
                        "content_description, run_name) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (series, study, h["Modality"], h["SeriesDescription"], _int_or_none(h["SeriesNumber"]),
                         h["FrameOfReferenceUID"], h["ContentLabel"], tag.kind if tag else "other",
                         tag.trial_number if tag else None, tag.algorithm if tag else None,
                         h["ContentDescription"], run))
                    seen_series.add(series)
                # a different instance previously indexed at this path: the file now holds this one
                conn.execute("DELETE FROM instances WHERE path = ?", (p.path,))
                conn.execute(
                    "INSERT INTO instances(sop_uid, series_uid, sop_class_uid, transfer_syntax_uid, instance_number, "
                    "path, size, sha256, mtime_ns, indexed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (uid, series, h["SOPClassUID"], p.transfer_syntax_uid, _int_or_none(h["InstanceNumber"]),
                     p.path, p.size, p.sha256, p.mtime_ns, now))
                if p.seg is not None:
                    conn.executemany("INSERT OR IGNORE INTO seg_references(sop_uid, referenced_series_uid) "
                                     "VALUES (?, ?)", [(uid, r) for r in p.seg.referenced_series_uids])
                    algo_by_number = _segment_algorithms(p.seg)
                    conn.executemany(
                        "INSERT OR IGNORE INTO seg_segments(sop_uid, segment_number, label, algorithm_name, "
                        "algorithm_type) VALUES (?, ?, ?, ?, ?)",
                        [(uid, num, lab, algo_by_number.get(num, ""), typ) for num, lab, typ in
                         zip(p.seg.segment_numbers, p.seg.segment_labels, p.seg.algorithm_types)])
                known[uid] = (p.sha256, p.path)
                report.added += 1
            if progress:
                progress("write", n, len(parsed))

    # ------------------------------------------------------------------ queries
    def studies(self) -> list[StudyInfo]:
        rows = self._rows(
            "SELECT st.study_uid, st.patient_id, p.patient_name, st.study_description, st.study_date, "
            "(SELECT count(*) FROM series se WHERE se.study_uid = st.study_uid) AS n_series, "
            "(SELECT count(*) FROM instances i JOIN series se ON i.series_uid = se.series_uid "
            " WHERE se.study_uid = st.study_uid) AS n_instances "
            "FROM studies st JOIN patients p ON p.patient_id = st.patient_id "
            "ORDER BY st.patient_id, st.study_description, st.study_uid")
        return [StudyInfo(r["study_uid"], r["patient_id"], r["patient_name"], r["study_description"],
                          r["study_date"], r["n_series"], r["n_instances"]) for r in rows]

    def series_for_study(self, study_uid: str) -> list[SeriesInfo]:
        rows = self._rows(
            "SELECT se.series_uid, se.study_uid, se.modality, se.series_description, se.series_number, "
            "count(i.sop_uid) AS n, group_concat(DISTINCT i.sop_class_uid) AS classes "
            "FROM series se LEFT JOIN instances i ON i.series_uid = se.series_uid WHERE se.study_uid = ? "
            "GROUP BY se.series_uid ORDER BY coalesce(se.series_number, -1), se.series_uid", (study_uid,))
        return [SeriesInfo(r["series_uid"], r["study_uid"], r["modality"], r["series_description"],
                           r["series_number"], r["n"], tuple(sorted((r["classes"] or "").split(",")) if r["classes"]
                                                             else ())) for r in rows]

    def _seg_infos(self, where: str, params: Sequence[Any]) -> list[SegSeriesInfo]:
        """SegSeriesInfo for the SEG series selected by ``where`` (SQL on alias ``se``)."""
        series_rows = self._rows(
            "SELECT se.series_uid AS series_instance_uid, se.study_uid AS study_instance_uid, "
            "st.study_description, se.series_description, se.series_number, se.content_label, "
            "se.content_description "
            f"FROM series se JOIN studies st ON st.study_uid = se.study_uid WHERE {where}", params)
        if not series_rows:
            return []
        by_series = {r["series_instance_uid"]: r for r in series_rows}
        instances: dict[str, list[dict]] = {uid: [] for uid in by_series}
        refs: dict[str, list[str]] = {}
        segs: dict[str, list[tuple]] = {}
        for chunk in _chunks(list(by_series), 500):
            marks = ",".join("?" * len(chunk))
            for r in self._rows(
                    "SELECT sop_uid AS sop_instance_uid, series_uid, path, sop_class_uid, instance_number "
                    f"FROM instances WHERE series_uid IN ({marks})", chunk):
                instances[r["series_uid"]].append(r)
            for sop, ref in self.conn.execute(
                    "SELECT r.sop_uid, r.referenced_series_uid FROM seg_references r JOIN instances i "
                    f"ON i.sop_uid = r.sop_uid WHERE i.series_uid IN ({marks})", chunk):
                refs.setdefault(sop, []).append(ref)
            for sop, num, label, algo, typ in self.conn.execute(
                    "SELECT g.sop_uid, g.segment_number, g.label, g.algorithm_name, g.algorithm_type "
                    "FROM seg_segments g JOIN instances i ON i.sop_uid = g.sop_uid "
                    f"WHERE i.series_uid IN ({marks}) ORDER BY g.sop_uid, g.segment_number", chunk):
                segs.setdefault(sop, []).append((num, label, algo, typ))
        out = []
        for uid, row in by_series.items():
            summaries = []
            for inst in instances[uid]:
                items = segs.get(inst["sop_instance_uid"], [])
                algos: list[str] = []
                for _, _, a, _ in items:
                    if a and a not in algos:
                        algos.append(a)
                summaries.append(SegSummary(
                    referenced_series_uids=tuple(sorted(refs.get(inst["sop_instance_uid"], []))),
                    segment_numbers=tuple(i[0] for i in items), segment_labels=tuple(i[1] for i in items),
                    algorithm_names=tuple(algos), algorithm_types=tuple(i[3] for i in items)))
            out.append(build_seg_info(row, instances[uid], summaries))
        return out

    def segs_for_series(self, volume_series_uid: str) -> list[SegSeriesInfo]:
        """SEG series whose ReferencedSeriesSequence names ``volume_series_uid``, grouped by study
        (run name), gold first, then trials in order (:func:`~.database.sort_segs`)."""
        return sort_segs(self._seg_infos(
            "se.series_uid IN (SELECT DISTINCT i.series_uid FROM seg_references r JOIN instances i "
            "ON i.sop_uid = r.sop_uid WHERE r.referenced_series_uid = ?)", (volume_series_uid,)))

    def trials_for_run(self, study_uid: str) -> list[SegSeriesInfo]:
        """Trial SEGs of one run (study), by trial number."""
        return trials_in_order(self._seg_infos("se.study_uid = ? AND se.kind = 'trial'", (study_uid,)))

    def gold_for_volume(self, volume_series_uid: str) -> list[SegSeriesInfo]:
        """Gold-standard SEGs referencing ``volume_series_uid`` (usually zero or one)."""
        return gold_only(self._seg_infos(
            "se.kind = 'gold' AND se.series_uid IN (SELECT DISTINCT i.series_uid FROM seg_references r "
            "JOIN instances i ON i.sop_uid = r.sop_uid WHERE r.referenced_series_uid = ?)", (volume_series_uid,)))

    def files_for_series(self, series_uid: str) -> list[Path]:
        rows = self.conn.execute("SELECT path FROM instances WHERE series_uid = ? "
                                 "ORDER BY coalesce(instance_number, 0), path", (series_uid,)).fetchall()
        return [Path(r[0]) for r in rows]

    def file_for_instance(self, sop_instance_uid: str) -> Path | None:
        row = self.conn.execute("SELECT path FROM instances WHERE sop_uid = ?", (sop_instance_uid,)).fetchone()
        return Path(row[0]) if row else None

    def counts(self) -> dict[str, int]:
        """Number of rows per table."""
        return {t: self.conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                for t in ("patients", "studies", "series", "instances", "seg_references", "seg_segments")}

    def show(self, uid: str) -> dict[str, Any]:
        """Everything indexed about ``uid`` (SOP instance, series, study UID or PatientID).

        Raises
        ------
        UnknownUIDError
        """
        rows = self._rows("SELECT * FROM instances WHERE sop_uid = ?", (uid,))
        if rows:
            r = rows[0]
            out = {"level": "instance", **r}
            out["sop_instance_uid"] = out.pop("sop_uid")
            out["series_instance_uid"] = out.pop("series_uid")
            refs = [x[0] for x in self.conn.execute(
                "SELECT referenced_series_uid FROM seg_references WHERE sop_uid = ?", (uid,))]
            if refs:
                out["referenced_series_uids"] = refs
                out["segments"] = self._rows("SELECT segment_number, label, algorithm_name, algorithm_type "
                                             "FROM seg_segments WHERE sop_uid = ? ORDER BY segment_number", (uid,))
            return out
        rows = self._rows("SELECT * FROM series WHERE series_uid = ?", (uid,))
        if rows:
            r = rows[0]
            out = {"level": "series", "series_instance_uid": uid, "study_instance_uid": r["study_uid"],
                   "modality": r["modality"], "series_description": r["series_description"],
                   "series_number": r["series_number"], "frame_of_reference_uid": r["frame_of_reference_uid"],
                   "files": [str(p) for p in self.files_for_series(uid)]}
            segs = self._seg_infos("se.series_uid = ?", (uid,))
            if segs and (r["modality"].upper() == "SEG" or segs[0].sop_class_uid in SEG_SOP_CLASS_UIDS):
                out["seg"] = segs[0].to_dict()
            referencing = self.conn.execute(
                "SELECT count(DISTINCT i.series_uid) FROM seg_references r JOIN instances i ON i.sop_uid = r.sop_uid "
                "WHERE r.referenced_series_uid = ?", (uid,)).fetchone()[0]
            out["referencing_segs"] = referencing
            return out
        rows = self._rows("SELECT * FROM studies WHERE study_uid = ?", (uid,))
        if rows:
            r = rows[0]
            return {"level": "study", "study_instance_uid": uid, "patient_id": r["patient_id"],
                    "study_description": r["study_description"], "study_date": r["study_date"],
                    "series": [s.to_dict() for s in self.series_for_study(uid)]}
        rows = self._rows("SELECT * FROM patients WHERE patient_id = ?", (uid,))
        if rows:
            return {"level": "patient", "patient_id": uid, "patient_name": rows[0]["patient_name"],
                    "studies": [s.to_dict() for s in self.studies() if s.patient_id == uid]}
        raise UnknownUIDError(f"UID {uid} is not in the index database {self.path}; "
                              "import its files with 'abdicom db import DIR'")

    # ------------------------------------------------------------------ maintenance
    def verify(self, full: bool = False) -> VerifyReport:
        """Check every indexed file exists and holds the indexed bytes.

        Files whose size and modification time are unchanged are trusted unless ``full``;
        the others are re-hashed.
        """
        report = VerifyReport()
        for sop, path, size, mtime_ns, sha in self.conn.execute(
                "SELECT sop_uid, path, size, mtime_ns, sha256 FROM instances ORDER BY path").fetchall():
            report.checked += 1
            p = Path(path)
            try:
                st = p.stat()
            except OSError:
                report.missing.append(FileIssue(path, "file no longer exists", sop))
                continue
            if not full and st.st_size == size and st.st_mtime_ns == mtime_ns:
                report.ok += 1
                continue
            try:
                same = st.st_size == size and sha256_file(p) == sha
            except OSError as exc:
                report.missing.append(FileIssue(path, f"cannot read ({exc.strerror or exc})", sop))
                continue
            if same:
                report.ok += 1
            else:
                report.changed.append(FileIssue(path, "content differs from what was indexed", sop))
        return report

    def remove_missing(self) -> RemoveReport:
        """Forget instances whose files are gone, then series, studies and patients left empty
        (one transaction)."""
        report = RemoveReport()
        rows = self.conn.execute("SELECT sop_uid, path FROM instances").fetchall()
        gone = [(sop, path) for sop, path in rows if not Path(path).exists()]
        with self._write():
            conn = self.conn
            for chunk in _chunks([sop for sop, _ in gone], 500):
                conn.execute(f"DELETE FROM instances WHERE sop_uid IN ({','.join('?' * len(chunk))})", chunk)
            report.instances = len(gone)
            report.paths = [p for _, p in gone]
            report.series = conn.execute("DELETE FROM series WHERE series_uid NOT IN "
                                         "(SELECT series_uid FROM instances)").rowcount
            report.studies = conn.execute("DELETE FROM studies WHERE study_uid NOT IN "
                                          "(SELECT study_uid FROM series)").rowcount
            report.patients = conn.execute("DELETE FROM patients WHERE patient_id NOT IN "
                                           "(SELECT patient_id FROM studies)").rowcount
        return report


def _segment_algorithms(seg: SegSummary) -> dict[int, str]:
    """Segment number -> algorithm name: a single name applies to all segments."""
    if len(seg.algorithm_names) == 1:
        return {n: seg.algorithm_names[0] for n in seg.segment_numbers}
    # several names: keep the order of first appearance; best effort per segment
    return {n: (seg.algorithm_names[i] if i < len(seg.algorithm_names) else "")
            for i, n in enumerate(seg.segment_numbers)}


class _WriteTransaction:
    """``BEGIN IMMEDIATE`` ... ``COMMIT``; rollback on any exception; read-only errors made clear."""

    def __init__(self, index: SqliteDicomIndex) -> None:
        self.index = index

    def __enter__(self) -> sqlite3.Connection:
        try:
            self.index.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise _translate(exc, self.index.path) from None
        return self.index.conn

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> Literal[False]:
        conn = self.index.conn
        if exc_type is None:
            try:
                conn.execute("COMMIT")
                return False
            except sqlite3.OperationalError as err:
                conn.execute("ROLLBACK")
                raise _translate(err, self.index.path) from None
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        if isinstance(exc, sqlite3.OperationalError):
            raise _translate(exc, self.index.path) from None
        return False


def _translate(exc: sqlite3.Error, path: Path) -> Exception:
    msg = str(exc)
    if "readonly" in msg or "read-only" in msg:
        return ReadOnlyIndexError("index database is read-only; make it writable (chmod u+w) or choose another "
                                  "with --db", path)
    if "locked" in msg or "busy" in msg:
        return IndexDatabaseError("index database is busy (another process holds the write lock too long); "
                           "try again", path)
    return exc


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]
