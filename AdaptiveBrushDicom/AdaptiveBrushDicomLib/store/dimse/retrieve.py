"""C-GET from a DIMSE peer: pull a series as Part 10 files, and the SEG series referencing an image series.

C-GET sub-operations come back on our association: we take the SCP role for the SEG and
image SOP classes and accept each instance in the transfer syntax the peer stored it in.
Everything of a pull is received into a temporary folder first, so nothing is written
half-pulled (:func:`~..pull_files.store_pulled` keeps identical files and refuses
different ones unless ``force``).
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Iterable

from AdaptiveBrushDicomLib.dicom.compression import Compression, ReadOnlySyntax
from AdaptiveBrushDicomLib.dicom.sop_class import SegSopClass
from AdaptiveBrushDicomLib.errors import UserError
from AdaptiveBrushDicomLib.store.dimse.association import (
    STUDY_ROOT_GET,
    UNKNOWN_SOP_HINT,
    DimsePeer,
    associate,
    status_text,
    uncompressed,
)
from AdaptiveBrushDicomLib.store.dimse.find import find, find_contexts, permission_hint, series_rows
from AdaptiveBrushDicomLib.store.pull_files import PullReport, store_pulled
from AdaptiveBrushDicomLib.store.records import SegSeriesInfo
from AdaptiveBrushDicomLib.store.remote_errors import RemoteError
from AdaptiveBrushDicomLib.store.seg_order import referencing, sort_segs
from AdaptiveBrushDicomLib.store.seg_records import build_seg_info, seg_summary_from_dataset
from AdaptiveBrushDicomLib.store.series_kind import SEG_MODALITY


def _get_syntaxes() -> list[str]:
    """Transfer syntaxes we take in a C-GET (the peer sends what it stored when we accept it)."""
    return [Compression.EXPLICIT.uid, ReadOnlySyntax.IMPLICIT.uid, Compression.DEFLATE.uid, Compression.RLE.uid,
            Compression.JPEG2000.uid, Compression.JPEGLS.uid, ReadOnlySyntax.JPEG_LOSSLESS_SV1.uid,
            ReadOnlySyntax.JPEG2000_LOSSY.uid, ReadOnlySyntax.JPEG_BASELINE.uid]


def _get_series(peer: DimsePeer, study_uid: str, series_uid: str, on_instance: Callable[[str, bytes], None],
                sop_classes: Iterable[str]) -> int:
    """C-GET a series; ``on_instance(sop_uid, part10_bytes)`` per received instance; returns the count.

    Raises
    ------
    RemoteError
        The association could not be made, the C-GET failed, or sub-operations failed.
    """
    from pydicom import Dataset
    from pynetdicom import evt

    classes = sorted(set(sop_classes)) or [SegSopClass.LABELMAP.uid, SegSopClass.SEGMENTATION.uid]
    received: list[str] = []

    def on_store(event: Any) -> int:
        sop = str(event.request.AffectedSOPInstanceUID)
        on_instance(sop, event.encoded_dataset(include_meta=True))
        received.append(sop)
        return 0x0000

    # one context per (class, syntax): the peer can send each instance as it stored it
    contexts = [(STUDY_ROOT_GET, uncompressed())] + [(c, [ts]) for c in classes for ts in _get_syntaxes()]
    with associate(peer, contexts, roles=classes, handlers=[(evt.EVT_C_STORE, on_store)],
                    what="C-GET") as assoc:
        for cx in assoc.accepted_contexts:
            if cx.abstract_syntax in classes and not cx.as_scp:
                # Orthanc 1.10 does not answer the SCP/SCU role selection for SOP classes its
                # toolkit does not know (66.7), yet sends the C-STORE sub-operations on these
                # contexts: take them (we asked for the SCP role; refusing loses the instances)
                cx._as_scp = True
        query = Dataset()
        query.QueryRetrieveLevel = "SERIES"
        query.StudyInstanceUID = study_uid
        query.SeriesInstanceUID = series_uid
        failed = 0
        for status, _ident in assoc.send_c_get(query, STUDY_ROOT_GET):
            code = int(getattr(status, "Status", -1)) if status else -1
            if code not in (0x0000, 0xFF00, 0xB000):
                hint = permission_hint(peer, "Get") if code == -1 else (
                    f"if it refused the storage sub-operations, {UNKNOWN_SOP_HINT}")
                raise RemoteError(f"DIMSE peer {peer}: C-GET of series {series_uid} failed (status "
                                  f"{status_text(status)}); {hint}")
            if code == 0xB000:
                failed = int(getattr(status, "NumberOfFailedSuboperations", 0) or 0)
        if failed:
            raise RemoteError(f"DIMSE peer {peer}: {failed} instances of series {series_uid} could not be "
                              f"sent back (C-GET sub-operations failed); {UNKNOWN_SOP_HINT}")
    return len(received)


def pull(series_uid: str, out_dir: str | Path, peer: DimsePeer, *, force: bool = False) -> PullReport:
    """C-GET a series into ``out_dir`` as ``<SOPInstanceUID>.dcm`` files.

    Files already present with the same bytes are left alone (repeatable); writes are
    atomic.

    Raises
    ------
    UnknownUIDError
        The series is not on the peer.
    OutputExistsError
        A different file with the same name exists and ``force`` is not given.
    UserError
        The output folder cannot be created.
    RemoteError
        The peer refused the association, the query or the retrieve.
    """
    t0 = time.perf_counter()
    study, images = series_rows(peer, series_uid)
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create the output folder: {exc.strerror or exc}", out) from None
    report = PullReport(series_uid, study, out)
    with tempfile.TemporaryDirectory(prefix=".abdicom-cget-", dir=out) as tmp:
        blobs: dict[str, Path] = {}

        def keep(sop: str, blob: bytes) -> None:
            p = Path(tmp) / f"{len(blobs)}.dcm"
            p.write_bytes(blob)
            blobs[sop] = p

        _get_series(peer, study, series_uid, keep, [str(getattr(r, "SOPClassUID", "")) for r in images])
        for sop, p in blobs.items():  # all received before anything is written: nothing half-pulled
            store_pulled(out / f"{sop}.dcm", p.read_bytes(), report, force=force)
    report.files.sort()
    report.seconds = time.perf_counter() - t0
    return report


def segs_for(series_uid: str, peer: DimsePeer) -> list[SegSeriesInfo]:
    """SEG series on the peer that reference an image series.

    C-FIND finds the study of ``series_uid`` and its series with Modality SEG; each is
    retrieved (C-GET, into a temporary folder that is deleted again) to read its
    ReferencedSeriesSequence and segments -- DIMSE queries do not return sequences.

    Returns
    -------
    list of SegSeriesInfo
        Sorted gold first, then trials by number; ``files`` is empty (use :func:`pull`).

    Raises
    ------
    UnknownUIDError
        The image series is not on the peer.
    RemoteError
        The peer refused the association, a query or a retrieve.
    """
    study, _images = series_rows(peer, series_uid)
    with associate(peer, find_contexts(), what="C-FIND") as assoc:
        rows = find(assoc, peer, "SERIES", {"StudyInstanceUID": study, "Modality": SEG_MODALITY},
                    ["SeriesInstanceUID", "SeriesDescription", "SeriesNumber", "StudyDescription"])
    return sort_segs(referencing([_seg_info(peer, study, row) for row in rows], series_uid))


def _seg_info(peer: DimsePeer, study: str, row: Any) -> SegSeriesInfo:
    """The :class:`SegSeriesInfo` of the SEG series of C-FIND ``row``, from its retrieved headers.

    Raises
    ------
    RemoteError
        The retrieve failed.
    """
    seg_series = str(row.SeriesInstanceUID)
    headers: list[Any] = []
    _get_series(peer, study, seg_series, lambda _sop, blob: headers.append(_header(blob)),
                [SegSopClass.LABELMAP.uid, SegSopClass.SEGMENTATION.uid])
    instances = [{"sop_instance_uid": str(ds.SOPInstanceUID), "path": "", "sop_class_uid": str(ds.SOPClassUID),
                  "instance_number": getattr(ds, "InstanceNumber", None)} for ds in headers]
    info = build_seg_info(
        {"series_instance_uid": seg_series, "study_instance_uid": study,
         "study_description": str(getattr(row, "StudyDescription", "") or ""),
         "series_description": str(getattr(row, "SeriesDescription", "") or ""),
         "series_number": str(getattr(row, "SeriesNumber", "") or ""),
         "content_label": str(getattr(headers[0], "ContentLabel", "") if headers else "")},
        instances, [seg_summary_from_dataset(ds) for ds in headers])
    return replace(info, files=())


def _header(blob: bytes) -> Any:
    """The header (no pixels) of a Part 10 file in memory."""
    import io

    import pydicom

    return pydicom.dcmread(io.BytesIO(blob), stop_before_pixels=True, force=True)
