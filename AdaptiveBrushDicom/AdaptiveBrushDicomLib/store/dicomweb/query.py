"""QIDO-RS / WADO-RS metadata queries: the SEG series in the study of an image series whose
ReferencedSeriesSequence names that series."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any, Sequence

from AdaptiveBrushDicomLib.store.dicomweb.auth import Auth
from AdaptiveBrushDicomLib.store.dicomweb.connection import DicomWebConnection, RetryPolicy, _value
from AdaptiveBrushDicomLib.store.remote_errors import AuthError, ServerUnreachableError
from AdaptiveBrushDicomLib.store.series_kind import SEG_MODALITY

if TYPE_CHECKING:  # pragma: no cover
    from AdaptiveBrushDicomLib.store.records import SegSeriesInfo


# ---------------------------------------------------------------------- query
#: Top-level attributes a SEG summary needs (SOPClassUID, SOPInstanceUID, InstanceNumber,
#: ContentLabel, ContentDescription, SegmentationType, ReferencedSeriesSequence, SegmentSequence).
SEG_SUMMARY_TAGS = ("00080016", "00080018", "00200013", "00700080", "00700081", "00620001", "00081115",
                    "00620002")


def _dataset_from_json(item: dict[str, Any], keep: Sequence[str] | None = SEG_SUMMARY_TAGS) -> Any:
    """pydicom Dataset from DICOM JSON; bulk data (pixels) is not fetched.

    Only the ``keep`` attributes are converted: pydicom's conversion of a large
    PerFrameFunctionalGroupsSequence costs ~0.2 s per 100 frames and is not needed.
    """
    from pydicom import Dataset

    if keep is not None:
        item = {k: v for k, v in item.items() if k.upper() in keep}
    return Dataset.from_json(item, bulk_data_uri_handler=lambda *args: b"")


def _seg_infos(conn: DicomWebConnection, study_uid: str, study_description: str,
               series_rows: Sequence[dict[str, Any]]) -> list["SegSeriesInfo"]:
    """:class:`SegSeriesInfo` of SEG series rows (QIDO-RS) via their WADO-RS metadata."""
    from AdaptiveBrushDicomLib.store.seg_records import build_seg_info, seg_summary_from_dataset

    out = []
    for row in series_rows:
        series_uid = _value(row, "0020000E")
        if not series_uid:
            continue
        metadata = conn.series_metadata(study_uid, series_uid)
        instances, summaries = [], []
        content_label = ""
        for item in metadata:
            ds = _dataset_from_json(item)
            if "00620002" not in item and "00081115" not in item:
                # servers configured to answer metadata from an index (Orthanc
                # "SeriesMetadata": "MainDicomTags" / "Extrapolate") leave out the
                # sequences: read the header of the instance itself
                ds = _header_of_instance(conn, study_uid, series_uid, str(getattr(ds, "SOPInstanceUID", "")), ds)
            summaries.append(seg_summary_from_dataset(ds))
            content_label = content_label or str(getattr(ds, "ContentLabel", "") or "")
            instances.append({
                "sop_instance_uid": str(getattr(ds, "SOPInstanceUID", "")),
                "path": "",
                "sop_class_uid": str(getattr(ds, "SOPClassUID", "")),
                "instance_number": getattr(ds, "InstanceNumber", None),
            })
        info = build_seg_info(
            {"series_instance_uid": series_uid, "study_instance_uid": study_uid,
             "study_description": study_description or _value(row, "00081030"),
             "series_description": _value(row, "0008103E"), "series_number": _value(row, "00200011"),
             "content_label": content_label},
            instances, summaries)
        out.append(replace(info, files=()))  # remote: no local files
    return out


def _header_of_instance(conn: DicomWebConnection, study_uid: str, series_uid: str, sop_uid: str,
                        fallback: Any) -> Any:
    """Header (no pixels) of one instance, retrieved with WADO-RS; ``fallback`` if that fails.

    Raises
    ------
    AuthError
        Credentials refused (not a reason to fall back).
    ServerUnreachableError
        The server cannot be reached (not a reason to fall back).
    """
    import io

    import pydicom

    if not sop_uid:
        return fallback
    try:
        blob, _ = conn.retrieve_instance_bytes(study_uid, series_uid, sop_uid)
        return pydicom.dcmread(io.BytesIO(blob), stop_before_pixels=True, force=True)
    except (AuthError, ServerUnreachableError):
        raise
    except Exception:  # a header we cannot read: keep what the metadata said
        return fallback


def _seg_series_rows(conn: DicomWebConnection, study_uid: str) -> list[dict[str, Any]]:
    rows = conn.search_series(study_uid, filters={"Modality": SEG_MODALITY},
                              fields=["SeriesDescription", "SeriesNumber", "StudyDescription",
                                      "NumberOfSeriesRelatedInstances"])
    return [r for r in rows if _value(r, "00080060").upper() in ("", SEG_MODALITY)]


def segs_for(
    series_uid: str,
    url: str,
    auth: "Auth | tuple[str, str] | None" = None,
    *,
    retry: RetryPolicy | None = None,
) -> list["SegSeriesInfo"]:
    """SEG series on a DICOMweb server that reference an image series.

    QIDO-RS finds the study of ``series_uid`` and its series with Modality SEG; the WADO-RS
    series metadata of each gives ReferencedSeriesSequence (0008,1115) and the segments.
    One metadata request per SEG series of the study.

    Returns
    -------
    list of SegSeriesInfo
        Sorted as :func:`~AdaptiveBrushDicomLib.store.seg_order.sort_segs` (gold first, then trials by number);
        ``files`` is empty (use :func:`pull`), ``segment_labels`` lists the segments.

    Raises
    ------
    UnknownUIDError
        The server does not have ``series_uid``.
    AuthError, ServerUnreachableError, RemoteError
    """
    from AdaptiveBrushDicomLib.store.seg_order import referencing, sort_segs

    conn = DicomWebConnection(url, auth, retry=retry)
    row = conn.study_of_series(series_uid)
    study_uid = _value(row, "0020000D")
    segs = _seg_infos(conn, study_uid, _value(row, "00081030"), _seg_series_rows(conn, study_uid))
    return sort_segs(referencing(segs, series_uid))
