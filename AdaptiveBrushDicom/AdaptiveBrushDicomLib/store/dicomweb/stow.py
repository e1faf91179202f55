"""STOW-RS upload of the DICOM files of folders, in batches, with resume: before sending a
series, a QIDO-RS query lists the SOPInstanceUIDs the server already has and those are skipped.
The bytes are sent as stored (byte-exact; ``dicomweb-client`` would re-encode a Deflated SEG).
What is sent and the report are shared with the DIMSE push (:mod:`~..push_files`)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, Iterable, Sequence

from AdaptiveBrushDicomLib.store.dicomweb.auth import Auth
from AdaptiveBrushDicomLib.store.dicomweb.connection import DicomWebConnection, RetryPolicy, StowOutcome
from AdaptiveBrushDicomLib.store.push_files import (
    LocalInstance,
    PushIssue,
    PushProgress,
    PushReport,
    scan_instances,
    series_order,
)
from AdaptiveBrushDicomLib.store.remote_errors import AuthError, RemoteError, ServerUnreachableError


def push(
    paths: Iterable[str | Path] | str | Path,
    url: str,
    auth: "Auth | tuple[str, str] | None" = None,
    *,
    batch_size: int = 16,
    batch_bytes: int = 32 * 1024 * 1024,
    retry: RetryPolicy | None = None,
    resume: bool = True,
    verify: bool = True,
    progress: Callable[[PushProgress], None] | None = None,
    timeout: float = 120.0,
) -> PushReport:
    """Upload DICOM files to a DICOMweb server with STOW-RS.

    Parameters
    ----------
    paths : files or folders (searched recursively); non-DICOM files are ignored.
    url : DICOMweb base URL (Orthanc: ``http://host:8042/dicom-web``).
    auth : :class:`Auth`, ``(user, password)`` or None.
    batch_size, batch_bytes : instances per STOW-RS request, at most this many bytes per
        request (a single larger file is sent alone).
    retry : retries with backoff for transient errors (connection refused / reset, 5xx).
    resume : query the server (QIDO-RS, one query per series) and skip instances it has.
    verify : after sending a series, query it again and report instances the server does
        not list as failed.
    progress : called with a :class:`PushProgress` after each batch.
    timeout : seconds per HTTP request.

    Returns
    -------
    PushReport
        Counts and failures; ``report.ok`` is False when something is not on the server.
        When the server becomes unreachable for longer than the retries allow, the push
        stops, ``aborted`` says why, and a later call resumes where it stopped.

    Raises
    ------
    AuthError
        Credentials refused (nothing is sent).
    ServerUnreachableError
        The server cannot be reached before anything was sent.
    UserError
        A path does not exist, or the URL is not http(s).
    """
    t0 = time.perf_counter()
    if isinstance(paths, (str, Path)):
        paths = [paths]
    conn = DicomWebConnection(url, auth, retry=retry, timeout=timeout)
    report = PushReport(url=conn.url)
    instances, report.non_dicom, report.files_seen, unreadable = scan_instances(paths)
    report.failed.extend(unreadable)
    groups = series_order(instances)
    report.instances = sum(len(g) for g in groups) + len(unreadable)
    report.series = [g[0].series_uid for g in groups]
    stow = _StowPush(conn, report, progress, batch_size, batch_bytes)
    try:
        for gi, group in enumerate(groups):
            if not stow.series(group, groups[gi + 1:], first=gi == 0, resume=resume, verify=verify):
                break
    finally:
        report.retries = conn.retries_used
        report.seconds = time.perf_counter() - t0
    return report


class _StowPush:
    """The state of one :func:`push`: the connection, the report, the progress callback."""

    def __init__(self, conn: DicomWebConnection, report: PushReport,
                 progress: Callable[[PushProgress], None] | None, batch_size: int, batch_bytes: int) -> None:
        self.conn = conn
        self.report = report
        self.progress = progress
        self.batch_size = batch_size
        self.batch_bytes = batch_bytes

    def tell(self, series_uid: str, last: Sequence[LocalInstance] = ()) -> None:
        """Call the progress callback (if any) with the counts so far."""
        report = self.report
        if self.progress is not None:
            self.progress(PushProgress(report.instances, report.sent + report.skipped + len(report.failed),
                                       report.sent, report.skipped, len(report.failed), series_uid,
                                       tuple(i.path for i in last)))

    def series(self, group: list[LocalInstance], later: list[list[LocalInstance]], *, first: bool,
               resume: bool, verify: bool) -> bool:
        """Push one series (``later``: the series after it); False when the push must stop.

        Raises
        ------
        ServerUnreachableError
            The server cannot be reached for the first series, before anything was sent.
        AuthError
            Credentials refused.
        """
        report = self.report
        series_uid, study_uid = group[0].series_uid, group[0].study_uid
        try:
            present = self.conn.sop_uids_of_series(study_uid, series_uid) if resume else set()
        except ServerUnreachableError as exc:
            if report.sent == 0 and first:
                raise
            _abort(report, [group] + later, str(exc))
            return False
        todo = [i for i in group if i.sop_uid not in present]
        report.skipped += len(group) - len(todo)
        self.tell(series_uid)
        batches = list(_batches(todo, self.batch_size, self.batch_bytes))
        for bi, batch in enumerate(batches):
            if not self.batch(series_uid, batch, [i for b in batches[bi + 1:] for i in b], later):
                return False
        if verify and todo:
            return self.verify(series_uid, study_uid, todo, later)
        return True

    def batch(self, series_uid: str, batch: list[LocalInstance], rest: list[LocalInstance],
              later: list[list[LocalInstance]]) -> bool:
        """One STOW-RS request (``rest``: the instances of this series after it); False to stop.

        Raises
        ------
        AuthError
            Credentials refused.
        """
        report = self.report
        blobs, sendable = _read(batch, report)
        if not blobs:
            return True
        what = f"STOW-RS of {len(blobs)} instances of series {series_uid}"
        try:
            outcome = self.conn.stow(blobs, what)
        except ServerUnreachableError as exc:
            _abort(report, [sendable + rest] + later, str(exc))
            return False
        except AuthError:
            raise
        except RemoteError as exc:  # persistent 5xx or another refusal: this batch only
            for inst in sendable:
                report.failed.append(PushIssue(str(inst.path), str(exc), inst.sop_uid))
            report.requests += 1
            self.tell(series_uid, sendable)
            return True
        report.requests += 1
        _count(outcome, sendable, report)
        self.tell(series_uid, sendable)
        return True

    def verify(self, series_uid: str, study_uid: str, todo: list[LocalInstance],
               later: list[list[LocalInstance]]) -> bool:
        """Query the series again; instances sent but not listed become failures. False to stop.

        Raises
        ------
        AuthError
            Credentials refused.
        """
        report = self.report
        sent_here = {i.sop_uid for i in todo} - {f.sop_instance_uid for f in report.failed}
        try:
            now = self.conn.sop_uids_of_series(study_uid, series_uid)
        except ServerUnreachableError as exc:
            _abort(report, later, str(exc))
            return False
        for inst in todo:
            if inst.sop_uid in sent_here and inst.sop_uid not in now:
                report.sent -= 1
                report.bytes_sent -= inst.size
                report.failed.append(PushIssue(str(inst.path), "not listed by the server after upload",
                                               inst.sop_uid))
        return True


def _read(batch: list[LocalInstance], report: PushReport) -> tuple[list[bytes], list[LocalInstance]]:
    """The bytes of the files of ``batch`` that can be read (the others become failures)."""
    blobs: list[bytes] = []
    sendable: list[LocalInstance] = []
    for inst in batch:
        try:
            blobs.append(inst.path.read_bytes())
            sendable.append(inst)
        except OSError as exc:
            report.failed.append(PushIssue(str(inst.path), f"cannot read: {exc.strerror or exc}", inst.sop_uid))
    return blobs, sendable


def _count(outcome: StowOutcome, sendable: list[LocalInstance], report: PushReport) -> None:
    """Count the instances of one STOW-RS response as sent or failed."""
    for inst in sendable:
        if inst.sop_uid in outcome.failed:
            report.failed.append(PushIssue(str(inst.path), outcome.failed[inst.sop_uid], inst.sop_uid))
        elif inst.sop_uid in outcome.stored or (not outcome.stored and outcome.status < 300):
            report.sent += 1
            report.bytes_sent += inst.size
        else:
            report.failed.append(PushIssue(
                str(inst.path), f"the server did not confirm it (HTTP {outcome.status})", inst.sop_uid))


def _abort(report: PushReport, remaining: list[list[LocalInstance]], reason: str) -> None:
    """Stop the push: every instance of ``remaining`` becomes a "not sent" failure."""
    report.aborted = reason
    for group in remaining:
        for inst in group:
            report.failed.append(PushIssue(str(inst.path), "not sent: " + reason, inst.sop_uid))


def _batches(items: list[LocalInstance], size: int, max_bytes: int) -> Iterable[list[LocalInstance]]:
    batch: list[LocalInstance] = []
    nbytes = 0
    for inst in items:
        if batch and (len(batch) >= max(size, 1) or nbytes + inst.size > max_bytes):
            yield batch
            batch, nbytes = [], 0
        batch.append(inst)
        nbytes += inst.size
    if batch:
        yield batch
