"""Push, query and pull on a DIMSE peer (a PACS speaking DICOM networking, not DICOMweb).

* :func:`push` -- C-ECHO, then C-STORE of the DICOM files under the given paths, series by
  series. Each file is offered in its own transfer syntax (sent byte for byte when the
  peer accepts it) with Explicit / Implicit VR Little Endian as the fallback the peer may
  pick instead (the file is then decoded and re-encoded by pydicom). *Resume*: before a
  series is sent a C-FIND (IMAGE level) lists the SOPInstanceUIDs the peer already has;
  those are skipped, and after the series another C-FIND checks what arrived.
* :func:`segs_for` -- C-FIND (SERIES level) for the study of an image series and its
  series with Modality SEG; their headers (ReferencedSeriesSequence, segments) are read
  from a C-GET into a temporary folder.
* :func:`pull` -- C-GET of a series, written as ``<SOPInstanceUID>.dcm`` Part 10 files
  (the dataset bytes as the peer sent them).

All through pynetdicom (optional dependency, extra ``remote``; imported lazily). Errors
are :class:`~.errors.UserError` subclasses naming the peer (``AET@host:port``): a refused
association gives the peer's reason, a peer that does not accept the SOP class of a file
says so (for Orthanc: ``"UnknownSopClassAccepted": true`` for Label Map SEG, 66.7).
Reports are the :class:`~.dicomweb.PushReport` / :class:`~.dicomweb.PullReport` of the
DICOMweb commands, with ``url`` naming the peer.
"""

from __future__ import annotations

import re
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator

from AdaptiveBrushDicomLib.dicom.compression import Compression, ReadOnlySyntax
from AdaptiveBrushDicomLib.dicom.sop_class import SegSopClass
from AdaptiveBrushDicomLib.errors import UserError
from AdaptiveBrushDicomLib.store.dicomweb.connection import SEG_MODALITY, RemoteError, ServerUnreachableError
from AdaptiveBrushDicomLib.store.dicomweb.retrieve import PullReport, store_pulled
from AdaptiveBrushDicomLib.store.dicomweb.stow import (
    LocalInstance,
    PushIssue,
    PushProgress,
    PushReport,
    _series_order,
    scan_instances,
)

if TYPE_CHECKING:  # pragma: no cover
    from AdaptiveBrushDicomLib.store.records import SegSeriesInfo

#: Our AE title when the caller gives none.
DEFAULT_CALLING_AET = "ABDICOM"
#: What a peer that refuses SOP class 66.7 probably needs (Orthanc <= 1.12 does not know it).
UNKNOWN_SOP_HINT = ('the peer does not accept this SOP class; for Orthanc set "UnknownSopClassAccepted": true '
                    "in its configuration (Label Map Segmentation Storage 66.7 is newer than its DICOM toolkit)")
#: Waits (s) before retrying an association that failed before negotiation (TCP refused /
#: reset): a busy peer may accept a moment later. Rejections are never retried.
CONNECT_RETRY_DELAYS = (0.5, 1.5)
#: Verification SOP Class (C-ECHO) and the Study Root Query/Retrieve models (PS3.4).
VERIFICATION = "1.2.840.10008.1.1"
STUDY_ROOT_FIND = "1.2.840.10008.5.1.4.1.2.2.1"
STUDY_ROOT_GET = "1.2.840.10008.5.1.4.1.2.2.3"
_AET_RE = re.compile(r"^[\x20-\x7e]{1,16}$")


class AssociationRefusedError(RemoteError):
    """The peer rejected the association (wrong AE title, unknown caller, ...)."""


def _require_pynetdicom() -> Any:
    try:
        import pynetdicom
    except ImportError:
        raise UserError("DIMSE commands need the 'pynetdicom' package; install it with "
                        "pip install 'AdaptiveBrushDicom[remote]' (or pip install pynetdicom)") from None
    return pynetdicom


# ---------------------------------------------------------------------- peer
@dataclass(frozen=True)
class DimsePeer:
    """A DIMSE peer: called AE title, host, port, and our (calling) AE title."""

    ae_title: str
    host: str
    port: int
    calling_aet: str = DEFAULT_CALLING_AET

    @classmethod
    def parse(cls, text: str, calling_aet: str | None = None) -> "DimsePeer":
        """``AET@HOST:PORT`` (e.g. ``ORTHANC@127.0.0.1:4242``).

        Raises
        ------
        UserError
            Not of that form, AE title longer than 16 characters, port not 1..65535.
        """
        m = re.match(r"^(?P<aet>[^@]+)@(?P<host>\[[^\]]+\]|[^:]+):(?P<port>\d+)$", str(text).strip())
        if not m:
            raise UserError(f"--dimse must be AET@HOST:PORT such as ORTHANC@127.0.0.1:4242, got {text!r}")
        port = int(m["port"])
        if not 0 < port < 65536:
            raise UserError(f"--dimse {text!r}: port {port} is not 1..65535")
        calling = calling_aet or DEFAULT_CALLING_AET
        for what, aet in (("called AE title", m["aet"]), ("--calling-aet", calling)):
            if not _AET_RE.match(aet) or "\\" in aet:
                raise UserError(f"{what} {aet!r}: an AE title is 1 to 16 printable characters (no backslash)")
        return cls(m["aet"], m["host"].strip("[]"), port, calling)

    def __str__(self) -> str:
        return f"{self.ae_title}@{self.host}:{self.port}"


@contextmanager
def _associate(peer: DimsePeer, contexts: list[tuple[str, list[str]]], *, roles: Iterable[str] = (),
               handlers: list | None = None, what: str = "") -> Iterator[Any]:
    """An established association (released afterwards), or a one-line error naming the peer."""
    pn = _require_pynetdicom()
    from pynetdicom import evt

    ae = pn.AE(ae_title=peer.calling_aet)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 60
    for abstract, syntaxes in contexts:
        ae.add_requested_context(abstract, syntaxes)
    ext = [pn.build_role(uid, scp_role=True) for uid in roles]
    rejected: list[str] = []

    def on_acse(event: Any) -> None:
        rsp = event.primitive
        if getattr(rsp, "result", None) in (1, 2):
            rejected.append(f"{rsp.reason_str} ({rsp.result_str}, source: {rsp.source_str})")

    for delay in (*CONNECT_RETRY_DELAYS, None):
        assoc = ae.associate(peer.host, peer.port, ae_title=peer.ae_title, ext_neg=ext or None,
                             evt_handlers=[(evt.EVT_ACSE_RECV, on_acse), *(handlers or [])])
        unreachable = (not assoc.is_established and not rejected and not assoc.is_rejected
                       and not assoc.accepted_contexts and not assoc.rejected_contexts)
        if not unreachable or delay is None:
            break
        time.sleep(delay)  # connection refused / dropped before negotiation: may be transient
    if not assoc.is_established:
        if rejected or assoc.is_rejected:
            raise AssociationRefusedError(
                f"DIMSE peer {peer}: association refused{' for ' + what if what else ''}: "
                f"{rejected[0] if rejected else 'no reason given'}; check the called AE title and that the "
                f"peer knows the calling AE title {peer.calling_aet!r}")
        if unreachable:
            raise ServerUnreachableError(
                f"DIMSE peer {peer}: cannot connect (no answer or connection refused, "
                f"{len(CONNECT_RETRY_DELAYS) + 1} attempts); check host, port and that the peer is running")
        raise RemoteError(f"DIMSE peer {peer}: the peer accepted none of the proposed services "
                          f"({', '.join(sorted({c[0] for c in contexts}))}); {UNKNOWN_SOP_HINT}")
    try:
        yield assoc
    finally:
        if assoc.is_established:
            assoc.release()


def echo(peer: DimsePeer) -> None:
    """C-ECHO; raises :class:`RemoteError` (one line naming the peer) when it fails."""
    with _associate(peer, [(VERIFICATION, _uncompressed())], what="C-ECHO") as assoc:
        _check_echo(assoc, peer)


def _check_echo(assoc: Any, peer: DimsePeer) -> None:
    status = assoc.send_c_echo()
    if not status or int(getattr(status, "Status", -1)) != 0:
        raise RemoteError(f"DIMSE peer {peer}: C-ECHO failed (status {_status(status)})")


def _uncompressed() -> list[str]:
    return [Compression.EXPLICIT.uid, ReadOnlySyntax.IMPLICIT.uid]


def _status(status: Any) -> str:
    try:
        return f"0x{int(status.Status):04X}"
    except (AttributeError, TypeError, ValueError):
        return "none: the connection was lost"


# ---------------------------------------------------------------------- C-FIND
def _find(assoc: Any, peer: DimsePeer, level: str, keys: dict[str, str], returns: Iterable[str]) -> list[Any]:
    """C-FIND (Study Root) at ``level``; identifiers of the matches."""
    from pydicom import Dataset
    query = Dataset()
    query.QueryRetrieveLevel = level
    for key in returns:
        setattr(query, key, "")
    for key, value in keys.items():
        setattr(query, key, value)
    out = []
    for status, ident in assoc.send_c_find(query, STUDY_ROOT_FIND):
        code = int(getattr(status, "Status", -1)) if status else -1
        if code in (0xFF00, 0xFF01):
            if ident is not None:
                out.append(ident)
        elif code != 0:
            raise RemoteError(f"DIMSE peer {peer}: C-FIND at {level} level failed (status {_status(status)}); "
                              f"{_permission_hint(peer, 'Find')}")
    return out


def _permission_hint(peer: DimsePeer, service: str) -> str:
    return (f"the peer may not allow C-{service.upper()} from AE title {peer.calling_aet!r}: register it "
            f"there (Orthanc: DicomModalities, or \"DicomAlwaysAllow{service}\": true)")


def _find_contexts() -> list[tuple[str, list[str]]]:
    return [(STUDY_ROOT_FIND, _uncompressed())]


def sop_uids_of_series(assoc: Any, peer: DimsePeer, study_uid: str, series_uid: str) -> set[str]:
    """SOPInstanceUIDs the peer holds for a series (C-FIND, IMAGE level)."""
    rows = _find(assoc, peer, "IMAGE", {"StudyInstanceUID": study_uid, "SeriesInstanceUID": series_uid},
                 ["SOPInstanceUID"])
    return {str(r.SOPInstanceUID) for r in rows if getattr(r, "SOPInstanceUID", "")}


# ---------------------------------------------------------------------- push
def _store_contexts(meta: dict[Path, tuple[str, str]]) -> list[tuple[str, list[str]]]:
    """Per SOP class one context per own compressed transfer syntax plus the uncompressed
    fallback (Explicit / Implicit VR Little Endian)."""
    contexts: list[tuple[str, list[str]]] = []
    seen: set[tuple[str, str]] = set()
    uncompressed = set(_uncompressed())
    for ts, sop_class in meta.values():
        for key in ((sop_class, ts), (sop_class, "fallback")):
            if key in seen or key[1] in uncompressed:
                continue
            seen.add(key)
            contexts.append((sop_class, _uncompressed() if key[1] == "fallback" else [ts]))
    if len(contexts) > 128:
        raise UserError(f"{len(contexts)} SOP class / transfer syntax combinations: more than one DIMSE "
                        "association can propose (128); push fewer kinds of files at once")
    return contexts


def _file_meta(instances: list[LocalInstance]) -> dict[Path, tuple[str, str]]:
    """(transfer syntax, SOP class) of each file."""
    import pydicom

    out = {}
    for inst in instances:
        ds = pydicom.dcmread(inst.path, stop_before_pixels=True, specific_tags=["SOPClassUID"])
        sop_class = str(getattr(ds.file_meta, "MediaStorageSOPClassUID", "") or ds.SOPClassUID)
        out[inst.path] = (str(ds.file_meta.TransferSyntaxUID), sop_class)
    return out


def _send_one(assoc: Any, peer: DimsePeer, inst: LocalInstance, ts: str, sop_class: str) -> str:
    """C-STORE one file: '' when stored, else the reason."""
    import pydicom
    from pynetdicom import _config

    accepted = [cx for cx in assoc.accepted_contexts if cx.abstract_syntax == sop_class]
    if not accepted:
        name = f"{SegSopClass.LABELMAP.long_name} (66.7)" if sop_class == SegSopClass.LABELMAP.uid else sop_class
        return f"SOP class {name} refused by {peer}: {UNKNOWN_SOP_HINT}"
    exact = any(cx.transfer_syntax[0] == ts for cx in accepted)
    old = _config.STORE_SEND_CHUNKED_DATASET
    try:
        if exact:
            _config.STORE_SEND_CHUNKED_DATASET = True  # the file's bytes as stored
            status = assoc.send_c_store(inst.path)
        else:
            ds = pydicom.dcmread(inst.path)
            if ds.file_meta.TransferSyntaxUID.is_compressed:
                ds.decompress()
            ds.file_meta.TransferSyntaxUID = accepted[0].transfer_syntax[0]
            status = assoc.send_c_store(ds)
    except (ValueError, AttributeError, OSError) as exc:
        return f"cannot send: {exc}"
    finally:
        _config.STORE_SEND_CHUNKED_DATASET = old
    code = int(getattr(status, "Status", -1)) if status else -1
    if code == 0 or 0xB000 <= code <= 0xBFFF:
        return ""
    if code == 0x0122:
        return f"C-STORE refused by {peer}: SOP class not supported (0x0122); {UNKNOWN_SOP_HINT}"
    return f"C-STORE refused by {peer} (status {_status(status)})"


def push(
    paths: Iterable[str | Path] | str | Path,
    peer: DimsePeer,
    *,
    resume: bool = True,
    verify: bool = True,
    progress: Callable[[PushProgress], None] | None = None,
) -> PushReport:
    """C-STORE the DICOM files under ``paths`` to a DIMSE peer (after a C-ECHO).

    Parameters
    ----------
    paths : files or folders (searched recursively); non-DICOM files are ignored.
    peer : the called AE (see :meth:`DimsePeer.parse`).
    resume : C-FIND (IMAGE level) per series first and skip instances the peer has. A
        peer that refuses C-FIND gets everything (noted in ``report.notes``).
    verify : C-FIND each series after sending; instances not listed are reported failed.
    progress : called with a :class:`~.dicomweb.PushProgress` after each instance.

    Returns
    -------
    PushReport
        ``url`` is ``AET@host:port``; ``requests`` counts C-STORE requests. When the
        association breaks, the push stops, ``aborted`` says why and every instance not
        confirmed is listed in ``failed`` (a second call resumes).

    Raises
    ------
    AssociationRefusedError, ServerUnreachableError, RemoteError
        Before anything was sent: refused association, no connection, failed C-ECHO.
    """
    t0 = time.perf_counter()
    if isinstance(paths, (str, Path)):
        paths = [paths]
    report = PushReport(url=str(peer))
    instances, report.non_dicom, report.files_seen, unreadable = scan_instances(paths)
    report.failed.extend(unreadable)
    groups = _series_order(instances)
    report.instances = sum(len(g) for g in groups) + len(unreadable)
    report.series = [g[0].series_uid for g in groups]
    meta = _file_meta([i for g in groups for i in g])
    echo(peer)
    present = _present(peer, groups, report, "so nothing was skipped") if resume else {}
    todo = [[i for i in g if i.sop_uid not in present.get(g[0].series_uid, set())] for g in groups]
    report.skipped = sum(len(g) - len(t) for g, t in zip(groups, todo))
    sent: list[LocalInstance] = []
    try:
        if any(todo):
            with _associate(peer, _store_contexts(meta), what="C-STORE") as assoc:
                for n, inst in enumerate(i for t in todo for i in t):
                    if not assoc.is_established:
                        report.aborted = f"the association with {peer} was lost"
                        rest = [i for t in todo for i in t][n:]
                        report.failed += [PushIssue(str(i.path), "not sent: " + report.aborted, i.sop_uid)
                                          for i in rest]
                        break
                    reason = _send_one(assoc, peer, inst, *meta[inst.path])
                    report.requests += 1
                    if reason:
                        report.failed.append(PushIssue(str(inst.path), reason, inst.sop_uid))
                    else:
                        report.sent += 1
                        report.bytes_sent += inst.size
                        sent.append(inst)
                    if progress is not None:
                        progress(PushProgress(report.instances, report.sent + report.skipped + len(report.failed),
                                              report.sent, report.skipped, len(report.failed), inst.series_uid,
                                              (inst.path,)))
        if verify and sent and not report.aborted:
            _verify(peer, [g for g in groups if any(i in sent for i in g)], sent, report)
    finally:
        report.seconds = time.perf_counter() - t0
    return report


def _present(peer: DimsePeer, groups: list[list[LocalInstance]], report: PushReport,
             why: str) -> dict[str, set[str]]:
    """SOPInstanceUIDs the peer holds, per series (one association); {} when C-FIND is refused."""
    out: dict[str, set[str]] = {}
    try:
        with _associate(peer, _find_contexts(), what="C-FIND") as assoc:
            for g in groups:
                out[g[0].series_uid] = sop_uids_of_series(assoc, peer, g[0].study_uid, g[0].series_uid)
    except (AssociationRefusedError, ServerUnreachableError):
        raise
    except RemoteError as exc:
        report.notes.append(f"no C-FIND, {why}: {exc}")
        return {}
    return out


def _verify(peer: DimsePeer, groups: list[list[LocalInstance]], sent: list[LocalInstance],
            report: PushReport) -> None:
    """C-FIND after sending; instances the peer does not list are moved to ``failed``."""
    try:
        now = _present(peer, groups, report, "so what arrived was not checked")
    except RemoteError as exc:  # the peer went away after the last C-STORE
        report.notes.append(f"what arrived was not checked: {exc}")
        return
    if not now:
        return
    for inst in sent:
        if inst.sop_uid not in now.get(inst.series_uid, set()):
            report.sent -= 1
            report.bytes_sent -= inst.size
            report.failed.append(PushIssue(str(inst.path), f"not listed by {peer} after C-STORE", inst.sop_uid))


# ---------------------------------------------------------------------- C-GET
#: Transfer syntaxes we take in a C-GET (the peer sends what it stored when we accept it).
def _get_syntaxes() -> list[str]:
    return [Compression.EXPLICIT.uid, ReadOnlySyntax.IMPLICIT.uid, Compression.DEFLATE.uid, Compression.RLE.uid,
            Compression.JPEG2000.uid, Compression.JPEGLS.uid, ReadOnlySyntax.JPEG_LOSSLESS_SV1.uid,
            ReadOnlySyntax.JPEG2000_LOSSY.uid, ReadOnlySyntax.JPEG_BASELINE.uid]


def _get_series(peer: DimsePeer, study_uid: str, series_uid: str, on_instance: Callable[[str, bytes], None],
                sop_classes: Iterable[str]) -> int:
    """C-GET a series; ``on_instance(sop_uid, part10_bytes)`` per received instance; returns the count."""
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
    contexts = [(STUDY_ROOT_GET, _uncompressed())] + [(c, [ts]) for c in classes for ts in _get_syntaxes()]
    with _associate(peer, contexts, roles=classes, handlers=[(evt.EVT_C_STORE, on_store)],
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
                hint = _permission_hint(peer, "Get") if code == -1 else (
                    f"if it refused the storage sub-operations, {UNKNOWN_SOP_HINT}")
                raise RemoteError(f"DIMSE peer {peer}: C-GET of series {series_uid} failed (status "
                                  f"{_status(status)}); {hint}")
            if code == 0xB000:
                failed = int(getattr(status, "NumberOfFailedSuboperations", 0) or 0)
        if failed:
            raise RemoteError(f"DIMSE peer {peer}: {failed} instances of series {series_uid} could not be "
                              f"sent back (C-GET sub-operations failed); {UNKNOWN_SOP_HINT}")
    return len(received)


def _series_rows(peer: DimsePeer, series_uid: str) -> tuple[str, list[Any]]:
    """(StudyInstanceUID, IMAGE-level rows with SOPInstanceUID, SOPClassUID) of a series."""
    from AdaptiveBrushDicomLib.store.database_protocol import UnknownUIDError

    with _associate(peer, _find_contexts(), what="C-FIND") as assoc:
        rows = _find(assoc, peer, "SERIES", {"SeriesInstanceUID": series_uid}, ["StudyInstanceUID"])
        if not rows:
            raise UnknownUIDError(f"DIMSE peer {peer}: series {series_uid} is not on the peer; push it first "
                                  "(abdicom push --dimse) or check the UID")
        study = str(rows[0].StudyInstanceUID)
        images = _find(assoc, peer, "IMAGE", {"StudyInstanceUID": study, "SeriesInstanceUID": series_uid},
                       ["SOPInstanceUID", "SOPClassUID", "InstanceNumber"])
    return study, images


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
    """

    t0 = time.perf_counter()
    study, images = _series_rows(peer, series_uid)
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


def segs_for(series_uid: str, peer: DimsePeer) -> list["SegSeriesInfo"]:
    """SEG series on the peer that reference an image series.

    C-FIND finds the study of ``series_uid`` and its series with Modality SEG; each is
    retrieved (C-GET, into a temporary folder that is deleted again) to read its
    ReferencedSeriesSequence and segments -- DIMSE queries do not return sequences.

    Returns
    -------
    list of SegSeriesInfo
        Sorted gold first, then trials by number; ``files`` is empty (use :func:`pull`).
    """
    from AdaptiveBrushDicomLib.store.seg_order import referencing, sort_segs
    from AdaptiveBrushDicomLib.store.seg_records import build_seg_info, seg_summary_from_dataset

    study, _images = _series_rows(peer, series_uid)
    with _associate(peer, _find_contexts(), what="C-FIND") as assoc:
        rows = _find(assoc, peer, "SERIES", {"StudyInstanceUID": study, "Modality": SEG_MODALITY},
                     ["SeriesInstanceUID", "SeriesDescription", "SeriesNumber", "StudyDescription"])
    out = []
    for row in rows:
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
        out.append(replace(info, files=()))
    return sort_segs(referencing(out, series_uid))


def _header(blob: bytes) -> Any:
    import io

    import pydicom

    return pydicom.dcmread(io.BytesIO(blob), stop_before_pixels=True, force=True)
