"""Keeping the index true to the files: ``verify`` (gone or changed files) and ``remove-missing``."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from AdaptiveBrushDicomLib.io.digest import sha256_file
from AdaptiveBrushDicomLib.store.records import FileIssue, RemoveReport, VerifyReport
from AdaptiveBrushDicomLib.store.sqlite.connection import chunks, placeholders


def verify(conn: sqlite3.Connection, full: bool = False) -> VerifyReport:
    """Check every indexed file exists and holds the indexed bytes.

    Files whose size and modification time are unchanged are trusted unless ``full``;
    the others are re-hashed.
    """
    report = VerifyReport()
    for sop, path, size, mtime_ns, sha in conn.execute(
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


def missing_instances(conn: sqlite3.Connection) -> list[tuple[str, str]]:
    """(SOPInstanceUID, path) of the indexed instances whose file is gone."""
    found = conn.execute("SELECT sop_uid, path FROM instances").fetchall()
    return [(sop, path) for sop, path in found if not Path(path).exists()]


def forget(conn: sqlite3.Connection, gone: list[tuple[str, str]]) -> RemoveReport:
    """Delete the instances ``gone``, then series, studies and patients left empty (in the
    caller's write transaction)."""
    report = RemoveReport()
    for chunk in chunks([sop for sop, _ in gone], 500):
        conn.execute(f"DELETE FROM instances WHERE sop_uid IN ({placeholders(len(chunk))})", chunk)
    report.instances = len(gone)
    report.paths = [p for _, p in gone]
    report.series = conn.execute("DELETE FROM series WHERE series_uid NOT IN "
                                 "(SELECT series_uid FROM instances)").rowcount
    report.studies = conn.execute("DELETE FROM studies WHERE study_uid NOT IN "
                                  "(SELECT study_uid FROM series)").rowcount
    report.patients = conn.execute("DELETE FROM patients WHERE patient_id NOT IN "
                                   "(SELECT patient_id FROM studies)").rowcount
    return report
