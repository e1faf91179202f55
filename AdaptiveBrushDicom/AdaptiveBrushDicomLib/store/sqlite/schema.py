"""The index's tables, its schema version and the migrations between versions.

The schema version is in ``PRAGMA user_version``; a file from a newer version is refused
(:class:`~.connection.NewerSchemaError`). A file that is an SQLite database but not ours
(no ``meta.created_by`` naming AdaptiveBrushDicom) is refused before anything changes it.
The gold/trial classification of SEG series (:mod:`~..series_kind`) is cached in the
``series`` table and recomputed when its rules change (``meta.classifier_version``).

The functions take an open connection; the ones that write expect the caller's write
transaction (:class:`~.connection.WriteTransaction`).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from AdaptiveBrushDicomLib import __version__
from AdaptiveBrushDicomLib.store.series_kind import (
    CLASSIFIER_VERSION,
    KIND_TRIAL,
    classify_series,
    run_name_from_content,
)
from AdaptiveBrushDicomLib.store.sqlite.connection import IndexDatabaseError, NewerSchemaError
from AdaptiveBrushDicomLib.store.sqlite.parse import header_text

#: Version of the schema this code writes. Bump it (and add a migration) on every change.
SCHEMA_VERSION = 2

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


def schema_version(conn: sqlite3.Connection) -> int:
    """``PRAGMA user_version`` of the open database (0: new or not ours)."""
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def check_is_ours(conn: sqlite3.Connection, version: int, path: Path) -> None:
    """Refuse an SQLite file that is not an AdaptiveBrushDicom index, reading only.

    An empty database (no tables, ``user_version`` 0) becomes a new index; tables
    without a ``meta`` table whose ``created_by`` names AdaptiveBrushDicom are someone
    else's file, which must not be switched to WAL mode or given our schema.

    Raises
    ------
    IndexDatabaseError
        The file has tables but is not an AdaptiveBrushDicom index.
    """
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
            f"tables {', '.join(sorted(tables)[:5])}); it was not changed: choose another with --db", path)


def create_or_migrate(conn: sqlite3.Connection, path: Path) -> None:
    """Create the tables in an empty database, or migrate an older schema to :data:`SCHEMA_VERSION`.

    Runs inside the caller's write transaction, so the version is re-read under the lock.

    Raises
    ------
    NewerSchemaError
        Another process wrote a newer schema meanwhile.
    IndexDatabaseError
        The database has tables but ``user_version`` 0 (not an index of ours).
    """
    version = schema_version(conn)
    if version > SCHEMA_VERSION:
        raise NewerSchemaError(f"index database has schema version {version}, newer than "
                               f"{SCHEMA_VERSION}; upgrade AdaptiveBrushDicom", path)
    if version == 0:
        has_tables = conn.execute("SELECT count(*) FROM sqlite_master WHERE type='table'").fetchone()[0]
        if has_tables:
            raise IndexDatabaseError("file is an SQLite database but not an AdaptiveBrushDicom index "
                                     "(user_version 0 with tables); choose another with --db", path)
        for stmt in _SCHEMA.split(";"):
            if stmt.strip():
                conn.execute(stmt)
        conn.execute("INSERT INTO meta(key, value) VALUES ('created_by', ?)",
                     (f"AdaptiveBrushDicom {__version__}",))
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    elif version == 1:
        _migrate_1_to_2(conn)
    # future: if version <= 2: migrate to 3 ...


def _migrate_1_to_2(conn: sqlite3.Connection) -> None:
    """Schema 2 adds series.content_description and series.run_name; the values are read
    from the first existing file of every SEG series (inside the caller's transaction)."""
    import pydicom

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
                     (header_text(ds, "ContentDescription"), series_uid))
        done.add(series_uid)
    conn.execute("DELETE FROM meta WHERE key = 'classifier_version'")  # recompute kind and run names
    conn.execute("PRAGMA user_version = 2")


def classification_is_current(conn: sqlite3.Connection) -> bool:
    """Whether the cached gold/trial classification was made by the current rules."""
    row = conn.execute("SELECT value FROM meta WHERE key = 'classifier_version'").fetchone()
    return row is not None and row[0] == str(CLASSIFIER_VERSION)


def reclassify(conn: sqlite3.Connection) -> None:
    """Recompute the cached gold/trial classification of every SEG series (in the caller's
    write transaction) and record the rules' version."""
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
