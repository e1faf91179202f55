"""An import into the index: read the new files (in parallel for big batches), then write their rows.

Identity is the SOPInstanceUID. Importing a file whose UID is indexed with the same SHA-256
changes nothing (or records its new path when the indexed file is gone); with different
bytes it is reported as a *conflict* and the indexed instance is kept. Duplicates inside
one batch: the first file wins. :func:`write_parsed` runs inside the caller's write
transaction, so its duplicate checks see every committed import of other processes.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any, Callable, Iterable

from AdaptiveBrushDicomLib.store.records import FileIssue, ImportReport, SegSummary
from AdaptiveBrushDicomLib.store.series_kind import KIND_TRIAL, classify_series, run_name_from_content
from AdaptiveBrushDicomLib.store.sqlite.connection import chunks, placeholders
from AdaptiveBrushDicomLib.store.sqlite.parse import ParsedFile, ParseOutcome, parse_outcome

#: Smallest batch for which ``import_paths(workers > 1)`` starts worker processes.
PARALLEL_MIN_FILES = 200

#: ``progress(phase, done, total)``; phase ``"read"`` (no transaction open) or ``"write"``.
ProgressCallback = Callable[[str, int, int], None]

#: SOPInstanceUID -> (sha256, path) of the indexed instances a batch touches.
_Known = dict[str, tuple[str, str]]


def read_files(conn: sqlite3.Connection, files: list[Path], report: ImportReport,
               progress: ProgressCallback | None, workers: int = 1, rehash: bool = False) -> list[ParsedFile]:
    """Read, hash and parse ``files`` outside any transaction; count what is skipped in ``report``.

    Parameters
    ----------
    conn : sqlite3.Connection
        The index (read only here: which files are known with the same size and mtime).
    files : list of Path
        Regular files to import.
    report : ImportReport
        Updated in place: ``unchanged`` (known files not re-read), ``non_dicom``, ``errors``.
    progress : callable, optional
        Called per file with phase ``"read"``.
    workers : int
        Worker processes for batches of at least :data:`PARALLEL_MIN_FILES` files.
    rehash : bool
        Read every file, also those indexed with the same path, size and mtime.

    Returns
    -------
    list of ParsedFile
        The DICOM files to write, in ``files`` order.
    """
    if not rehash:
        files = _skip_known(conn, files, report)
    parsed: list[ParsedFile] = []
    workers = max(1, int(workers or 1))
    if workers > 1 and len(files) >= PARALLEL_MIN_FILES:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(max_workers=workers) as pool:
            outcomes: Iterable[tuple[ParseOutcome, Any]] = pool.map(parse_outcome, files, chunksize=64)
            _collect(files, outcomes, parsed, report, progress)
    else:
        _collect(files, map(parse_outcome, files), parsed, report, progress)
    return parsed


def _skip_known(conn: sqlite3.Connection, files: list[Path], report: ImportReport) -> list[Path]:
    """Files not indexed with the same path, size and mtime; the others count as unchanged."""
    known = {path: (size, mtime) for path, size, mtime in
             conn.execute("SELECT path, size, mtime_ns FROM instances")}
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


def _collect(files: list[Path], outcomes: Iterable[tuple[ParseOutcome, Any]], parsed: list[ParsedFile],
             report: ImportReport, progress: ProgressCallback | None) -> None:
    """Sort the parse outcomes into ``parsed`` and the report's counts."""
    for n, (f, (kind, value)) in enumerate(zip(files, outcomes), start=1):
        if kind == ParseOutcome.OK:
            parsed.append(value)
        elif kind == ParseOutcome.NON_DICOM:
            report.non_dicom += 1
        else:
            report.errors.append(FileIssue(str(f), value[0], value[1]))
        if progress:
            progress("read", n, len(files))


def write_parsed(conn: sqlite3.Connection, parsed: list[ParsedFile], report: ImportReport,
                 progress: ProgressCallback | None) -> None:
    """Write the rows of ``parsed`` (in the caller's write transaction); count them in ``report``."""
    now = time.time()
    known = _known_instances(conn, [p.header["SOPInstanceUID"] for p in parsed])
    seen: set[tuple[str, str]] = set()  # (table, key) rows written by this batch
    for n, p in enumerate(parsed, start=1):
        uid = p.header["SOPInstanceUID"]
        if uid in known:
            _write_known(conn, p, known, report)
        else:
            _write_parents(conn, p, seen)
            _write_instance(conn, p, now)
            known[uid] = (p.sha256, p.path)
            report.added += 1
        if progress:
            progress("write", n, len(parsed))


def _known_instances(conn: sqlite3.Connection, uids: list[str]) -> _Known:
    """The indexed (sha256, path) of those of ``uids`` the index has."""
    known: _Known = {}
    for chunk in chunks(uids, 500):
        q = f"SELECT sop_uid, sha256, path FROM instances WHERE sop_uid IN ({placeholders(len(chunk))})"
        for sop, sha, path in conn.execute(q, chunk):
            known[sop] = (sha, path)
    return known


def _write_known(conn: sqlite3.Connection, p: ParsedFile, known: _Known, report: ImportReport) -> None:
    """A file whose SOPInstanceUID is indexed: conflict, relocation or unchanged."""
    uid = p.header["SOPInstanceUID"]
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


def _write_parents(conn: sqlite3.Connection, p: ParsedFile, seen: set[tuple[str, str]]) -> None:
    """The patient, study and series rows of a new instance (once per batch each)."""
    h = p.header
    pid, study, series = h["PatientID"], h["StudyInstanceUID"], h["SeriesInstanceUID"]
    if ("patient", pid) not in seen:
        conn.execute("INSERT INTO patients(patient_id, patient_name) VALUES (?, ?) "
                     "ON CONFLICT(patient_id) DO UPDATE SET patient_name = "
                     "CASE WHEN patients.patient_name = '' THEN excluded.patient_name "
                     "ELSE patients.patient_name END", (pid, h["PatientName"]))
        seen.add(("patient", pid))
    if ("study", study) not in seen:
        conn.execute("INSERT OR IGNORE INTO studies(study_uid, patient_id, study_date, study_description, "
                     "study_id) VALUES (?, ?, ?, ?, ?)",
                     (study, pid, h["StudyDate"], h["StudyDescription"], h["StudyID"]))
        seen.add(("study", study))
    if ("series", series) not in seen:
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
        seen.add(("series", series))


def _write_instance(conn: sqlite3.Connection, p: ParsedFile, now: float) -> None:
    """The instance row of a new instance, and for a SEG its references and segments."""
    h = p.header
    uid = h["SOPInstanceUID"]
    # a different instance previously indexed at this path: the file now holds this one
    conn.execute("DELETE FROM instances WHERE path = ?", (p.path,))
    conn.execute(
        "INSERT INTO instances(sop_uid, series_uid, sop_class_uid, transfer_syntax_uid, instance_number, "
        "path, size, sha256, mtime_ns, indexed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (uid, h["SeriesInstanceUID"], h["SOPClassUID"], p.transfer_syntax_uid, _int_or_none(h["InstanceNumber"]),
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


def _segment_algorithms(seg: SegSummary) -> dict[int, str]:
    """Segment number -> algorithm name: a single name applies to all segments."""
    if len(seg.algorithm_names) == 1:
        return {n: seg.algorithm_names[0] for n in seg.segment_numbers}
    # several names: keep the order of first appearance; best effort per segment
    return {n: (seg.algorithm_names[i] if i < len(seg.algorithm_names) else "")
            for i, n in enumerate(seg.segment_numbers)}


def _int_or_none(value: str) -> int | None:
    """``value`` as an int (``"12"``, ``"12.0"``), None when it is not a number."""
    try:
        return int(value)
    except (TypeError, ValueError):
        try:
            return int(float(value))
        except (TypeError, ValueError):
            return None
