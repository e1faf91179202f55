"""The read side of the index: the :class:`~..database_protocol.DicomDatabase` queries in SQL.

Every answer comes from the database without opening a file. SEG series are assembled by
:func:`~..seg_records.build_seg_info` and ordered by :mod:`~..seg_order`, like every other
database does.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any, Sequence

from AdaptiveBrushDicomLib.dicom.sop_class import SEG_SOP_CLASS_UIDS
from AdaptiveBrushDicomLib.store.database_protocol import UnknownUIDError
from AdaptiveBrushDicomLib.store.records import SegSeriesInfo, SegSummary, SeriesInfo, StudyInfo
from AdaptiveBrushDicomLib.store.seg_order import gold_only, sort_segs, trials_in_order
from AdaptiveBrushDicomLib.store.seg_records import build_seg_info
from AdaptiveBrushDicomLib.store.sqlite.connection import chunks, placeholders, rows

#: SQL selecting the SEG series that reference the image series given as parameter.
_REFERENCING = ("se.series_uid IN (SELECT DISTINCT i.series_uid FROM seg_references r JOIN instances i "
                "ON i.sop_uid = r.sop_uid WHERE r.referenced_series_uid = ?)")


def studies(conn: sqlite3.Connection) -> list[StudyInfo]:
    """All studies, by patient, study description and UID."""
    found = rows(
        conn,
        "SELECT st.study_uid, st.patient_id, p.patient_name, st.study_description, st.study_date, "
        "(SELECT count(*) FROM series se WHERE se.study_uid = st.study_uid) AS n_series, "
        "(SELECT count(*) FROM instances i JOIN series se ON i.series_uid = se.series_uid "
        " WHERE se.study_uid = st.study_uid) AS n_instances "
        "FROM studies st JOIN patients p ON p.patient_id = st.patient_id "
        "ORDER BY st.patient_id, st.study_description, st.study_uid")
    return [StudyInfo(r["study_uid"], r["patient_id"], r["patient_name"], r["study_description"],
                      r["study_date"], r["n_series"], r["n_instances"]) for r in found]


def series_for_study(conn: sqlite3.Connection, study_uid: str) -> list[SeriesInfo]:
    """Series of a study, by SeriesNumber (absent first), then UID."""
    found = rows(
        conn,
        "SELECT se.series_uid, se.study_uid, se.modality, se.series_description, se.series_number, "
        "count(i.sop_uid) AS n, group_concat(DISTINCT i.sop_class_uid) AS classes "
        "FROM series se LEFT JOIN instances i ON i.series_uid = se.series_uid WHERE se.study_uid = ? "
        "GROUP BY se.series_uid ORDER BY coalesce(se.series_number, -1), se.series_uid", (study_uid,))
    return [SeriesInfo(r["series_uid"], r["study_uid"], r["modality"], r["series_description"],
                       r["series_number"], r["n"], tuple(sorted((r["classes"] or "").split(",")) if r["classes"]
                                                         else ())) for r in found]


def seg_infos(conn: sqlite3.Connection, where: str, params: Sequence[Any]) -> list[SegSeriesInfo]:
    """SegSeriesInfo for the SEG series selected by ``where`` (SQL on alias ``se``), unordered."""
    series_rows = rows(
        conn,
        "SELECT se.series_uid AS series_instance_uid, se.study_uid AS study_instance_uid, "
        "st.study_description, se.series_description, se.series_number, se.content_label, "
        "se.content_description "
        f"FROM series se JOIN studies st ON st.study_uid = se.study_uid WHERE {where}", params)
    if not series_rows:
        return []
    by_series = {r["series_instance_uid"]: r for r in series_rows}
    instances: dict[str, list[dict[str, Any]]] = {uid: [] for uid in by_series}
    refs: dict[str, list[str]] = {}
    segs: dict[str, list[tuple[int, str, str, str]]] = {}
    for chunk in chunks(list(by_series), 500):
        marks = placeholders(len(chunk))
        for r in rows(conn, "SELECT sop_uid AS sop_instance_uid, series_uid, path, sop_class_uid, instance_number "
                            f"FROM instances WHERE series_uid IN ({marks})", chunk):
            instances[r["series_uid"]].append(r)
        for sop, ref in conn.execute(
                "SELECT r.sop_uid, r.referenced_series_uid FROM seg_references r JOIN instances i "
                f"ON i.sop_uid = r.sop_uid WHERE i.series_uid IN ({marks})", chunk):
            refs.setdefault(sop, []).append(ref)
        for sop, num, label, algo, typ in conn.execute(
                "SELECT g.sop_uid, g.segment_number, g.label, g.algorithm_name, g.algorithm_type "
                "FROM seg_segments g JOIN instances i ON i.sop_uid = g.sop_uid "
                f"WHERE i.series_uid IN ({marks}) ORDER BY g.sop_uid, g.segment_number", chunk):
            segs.setdefault(sop, []).append((num, label, algo, typ))
    return [build_seg_info(row, instances[uid], [_summary(refs, segs, inst["sop_instance_uid"])
                                                 for inst in instances[uid]])
            for uid, row in by_series.items()]


def _summary(refs: dict[str, list[str]], segs: dict[str, list[tuple[int, str, str, str]]],
             sop_uid: str) -> SegSummary:
    """The :class:`SegSummary` of one instance from its reference and segment rows."""
    items = segs.get(sop_uid, [])
    algos: list[str] = []
    for _, _, a, _ in items:
        if a and a not in algos:
            algos.append(a)
    return SegSummary(
        referenced_series_uids=tuple(sorted(refs.get(sop_uid, []))),
        segment_numbers=tuple(i[0] for i in items), segment_labels=tuple(i[1] for i in items),
        algorithm_names=tuple(algos), algorithm_types=tuple(i[3] for i in items))


def segs_for_series(conn: sqlite3.Connection, volume_series_uid: str) -> list[SegSeriesInfo]:
    """SEG series whose ReferencedSeriesSequence names ``volume_series_uid``, grouped by study
    (run name), gold first, then trials in order (:func:`~..seg_order.sort_segs`)."""
    return sort_segs(seg_infos(conn, _REFERENCING, (volume_series_uid,)))


def trials_for_run(conn: sqlite3.Connection, study_uid: str) -> list[SegSeriesInfo]:
    """Trial SEGs of one run (study), by trial number."""
    return trials_in_order(seg_infos(conn, "se.study_uid = ? AND se.kind = 'trial'", (study_uid,)))


def gold_for_volume(conn: sqlite3.Connection, volume_series_uid: str) -> list[SegSeriesInfo]:
    """Gold-standard SEGs referencing ``volume_series_uid`` (usually zero or one)."""
    return gold_only(seg_infos(conn, f"se.kind = 'gold' AND {_REFERENCING}", (volume_series_uid,)))


def files_for_series(conn: sqlite3.Connection, series_uid: str) -> list[Path]:
    """Files of a series, by InstanceNumber (absent as 0), then path."""
    found = conn.execute("SELECT path FROM instances WHERE series_uid = ? "
                         "ORDER BY coalesce(instance_number, 0), path", (series_uid,)).fetchall()
    return [Path(r[0]) for r in found]


def file_for_instance(conn: sqlite3.Connection, sop_instance_uid: str) -> Path | None:
    """File of one instance, None if it is not indexed."""
    row = conn.execute("SELECT path FROM instances WHERE sop_uid = ?", (sop_instance_uid,)).fetchone()
    return Path(row[0]) if row else None


def counts(conn: sqlite3.Connection) -> dict[str, int]:
    """Number of rows per table."""
    return {t: int(conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0])
            for t in ("patients", "studies", "series", "instances", "seg_references", "seg_segments")}


def show(conn: sqlite3.Connection, uid: str, path: Path) -> dict[str, Any]:
    """Everything indexed about ``uid`` (SOP instance, series, study UID or PatientID).

    Raises
    ------
    UnknownUIDError
        ``uid`` is none of these in the index database ``path``.
    """
    for level in (_show_instance, _show_series, _show_study, _show_patient):
        found = level(conn, uid)
        if found is not None:
            return found
    raise UnknownUIDError(f"UID {uid} is not in the index database {path}; "
                          "import its files with 'abdicom db import DIR'")


def _show_instance(conn: sqlite3.Connection, uid: str) -> dict[str, Any] | None:
    """:func:`show` of a SOP Instance UID (None if it is not one)."""
    found = rows(conn, "SELECT * FROM instances WHERE sop_uid = ?", (uid,))
    if not found:
        return None
    out = {"level": "instance", **found[0]}
    out["sop_instance_uid"] = out.pop("sop_uid")
    out["series_instance_uid"] = out.pop("series_uid")
    refs = [x[0] for x in conn.execute("SELECT referenced_series_uid FROM seg_references WHERE sop_uid = ?", (uid,))]
    if refs:
        out["referenced_series_uids"] = refs
        out["segments"] = rows(conn, "SELECT segment_number, label, algorithm_name, algorithm_type "
                                     "FROM seg_segments WHERE sop_uid = ? ORDER BY segment_number", (uid,))
    return out


def _show_series(conn: sqlite3.Connection, uid: str) -> dict[str, Any] | None:
    """:func:`show` of a Series Instance UID (None if it is not one)."""
    found = rows(conn, "SELECT * FROM series WHERE series_uid = ?", (uid,))
    if not found:
        return None
    r = found[0]
    out = {"level": "series", "series_instance_uid": uid, "study_instance_uid": r["study_uid"],
           "modality": r["modality"], "series_description": r["series_description"],
           "series_number": r["series_number"], "frame_of_reference_uid": r["frame_of_reference_uid"],
           "files": [str(p) for p in files_for_series(conn, uid)]}
    segs = seg_infos(conn, "se.series_uid = ?", (uid,))
    if segs and (r["modality"].upper() == "SEG" or segs[0].sop_class_uid in SEG_SOP_CLASS_UIDS):
        out["seg"] = segs[0].to_dict()
    out["referencing_segs"] = conn.execute(
        "SELECT count(DISTINCT i.series_uid) FROM seg_references r JOIN instances i ON i.sop_uid = r.sop_uid "
        "WHERE r.referenced_series_uid = ?", (uid,)).fetchone()[0]
    return out


def _show_study(conn: sqlite3.Connection, uid: str) -> dict[str, Any] | None:
    """:func:`show` of a Study Instance UID (None if it is not one)."""
    found = rows(conn, "SELECT * FROM studies WHERE study_uid = ?", (uid,))
    if not found:
        return None
    r = found[0]
    return {"level": "study", "study_instance_uid": uid, "patient_id": r["patient_id"],
            "study_description": r["study_description"], "study_date": r["study_date"],
            "series": [s.to_dict() for s in series_for_study(conn, uid)]}


def _show_patient(conn: sqlite3.Connection, uid: str) -> dict[str, Any] | None:
    """:func:`show` of a PatientID (None if it is not one)."""
    found = rows(conn, "SELECT * FROM patients WHERE patient_id = ?", (uid,))
    if not found:
        return None
    return {"level": "patient", "patient_id": uid, "patient_name": found[0]["patient_name"],
            "studies": [s.to_dict() for s in studies(conn) if s.patient_id == uid]}
