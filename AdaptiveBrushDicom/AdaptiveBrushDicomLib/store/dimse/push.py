"""C-STORE push to a DIMSE peer, resumable: each file in its own transfer syntax, checked after.

C-ECHO first; then, series by series, a C-FIND (IMAGE level) lists the SOPInstanceUIDs
the peer already has and those are skipped. Each file is offered in its own transfer
syntax (sent byte for byte when the peer accepts it) with Explicit / Implicit VR Little
Endian as the fallback the peer may pick instead (the file is then decoded and
re-encoded by pydicom). After sending, another C-FIND checks what arrived.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable, Iterable

from AdaptiveBrushDicomLib.dicom.sop_class import SegSopClass
from AdaptiveBrushDicomLib.errors import UserError
from AdaptiveBrushDicomLib.store.dimse.association import (
    UNKNOWN_SOP_HINT,
    AssociationRefusedError,
    DimsePeer,
    associate,
    echo,
    status_text,
    uncompressed,
)
from AdaptiveBrushDicomLib.store.dimse.find import find_contexts, sop_uids_of_series
from AdaptiveBrushDicomLib.store.push_files import (
    LocalInstance,
    PushIssue,
    PushProgress,
    PushReport,
    scan_instances,
    series_order,
)
from AdaptiveBrushDicomLib.store.remote_errors import RemoteError, ServerUnreachableError


def _store_contexts(meta: dict[Path, tuple[str, str]]) -> list[tuple[str, list[str]]]:
    """Per SOP class one context per own compressed transfer syntax plus the uncompressed
    fallback (Explicit / Implicit VR Little Endian).

    Raises
    ------
    UserError
        More than the 128 presentation contexts one association can propose.
    """
    contexts: list[tuple[str, list[str]]] = []
    seen: set[tuple[str, str]] = set()
    plain = set(uncompressed())
    for ts, sop_class in meta.values():
        for key in ((sop_class, ts), (sop_class, "fallback")):
            if key in seen or key[1] in plain:
                continue
            seen.add(key)
            contexts.append((sop_class, uncompressed() if key[1] == "fallback" else [ts]))
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
    return f"C-STORE refused by {peer} (status {status_text(status)})"



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
    peer : the called AE (see :meth:`~.association.DimsePeer.parse`).
    resume : C-FIND (IMAGE level) per series first and skip instances the peer has. A
        peer that refuses C-FIND gets everything (noted in ``report.notes``).
    verify : C-FIND each series after sending; instances not listed are reported failed.
    progress : called with a :class:`~..push_files.PushProgress` after each instance.

    Returns
    -------
    PushReport
        ``url`` is ``AET@host:port``; ``requests`` counts C-STORE requests. When the
        association breaks, the push stops, ``aborted`` says why and every instance not
        confirmed is listed in ``failed`` (a second call resumes).

    Raises
    ------
    AssociationRefusedError
        Before anything was sent: the peer rejected the association.
    ServerUnreachableError
        Before anything was sent: no connection.
    RemoteError
        Before anything was sent: the C-ECHO failed, or the peer accepted none of the services.
    UserError
        A path does not exist, or the files need more than 128 presentation contexts.
    """
    t0 = time.perf_counter()
    if isinstance(paths, (str, Path)):
        paths = [paths]
    report = PushReport(url=str(peer))
    instances, report.non_dicom, report.files_seen, unreadable = scan_instances(paths)
    report.failed.extend(unreadable)
    groups = series_order(instances)
    report.instances = sum(len(g) for g in groups) + len(unreadable)
    report.series = [g[0].series_uid for g in groups]
    meta = _file_meta([i for g in groups for i in g])
    echo(peer)
    present = _present(peer, groups, report, "so nothing was skipped") if resume else {}
    todo = [[i for i in g if i.sop_uid not in present.get(g[0].series_uid, set())] for g in groups]
    report.skipped = sum(len(g) - len(t) for g, t in zip(groups, todo))
    try:
        sent = _send_all(peer, [i for t in todo for i in t], meta, report, progress) if any(todo) else []
        if verify and sent and not report.aborted:
            _verify(peer, [g for g in groups if any(i in sent for i in g)], sent, report)
    finally:
        report.seconds = time.perf_counter() - t0
    return report


def _send_all(peer: DimsePeer, todo: list[LocalInstance], meta: dict[Path, tuple[str, str]],
              report: PushReport, progress: Callable[[PushProgress], None] | None) -> list[LocalInstance]:
    """C-STORE ``todo`` on one association; count in ``report``; the instances stored.

    Raises
    ------
    RemoteError
        The association could not be made (:class:`~.association.AssociationRefusedError`,
        :class:`~..remote_errors.ServerUnreachableError`, or no service accepted).
    UserError
        More than 128 presentation contexts are needed.
    """
    sent: list[LocalInstance] = []
    with associate(peer, _store_contexts(meta), what="C-STORE") as assoc:
        for n, inst in enumerate(todo):
            if not assoc.is_established:
                report.aborted = f"the association with {peer} was lost"
                report.failed += [PushIssue(str(i.path), "not sent: " + report.aborted, i.sop_uid)
                                  for i in todo[n:]]
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
    return sent


def _present(peer: DimsePeer, groups: list[list[LocalInstance]], report: PushReport,
             why: str) -> dict[str, set[str]]:
    """SOPInstanceUIDs the peer holds, per series (one association); {} when C-FIND is refused.

    Raises
    ------
    AssociationRefusedError
        The peer rejected the association (a refused query is only noted in ``report``).
    ServerUnreachableError
        The peer cannot be reached.
    """
    out: dict[str, set[str]] = {}
    try:
        with associate(peer, find_contexts(), what="C-FIND") as assoc:
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
