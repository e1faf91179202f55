"""STOW-RS upload of the DICOM files of folders, in batches, with resume: before sending a
series, a QIDO-RS query lists the SOPInstanceUIDs the server already has and those are skipped.
The bytes are sent as stored (byte-exact; ``dicomweb-client`` would re-encode a Deflated SEG)."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from AdaptiveBrushDicomLib.store.dicomweb.auth import Auth
from AdaptiveBrushDicomLib.store.dicomweb.connection import (
    SEG_MODALITY,
    AuthError,
    DicomWebConnection,
    RemoteError,
    RetryPolicy,
    ServerUnreachableError,
)


# ---------------------------------------------------------------------- push
@dataclass(frozen=True)
class LocalInstance:
    """One DICOM file to push."""

    path: Path
    study_uid: str
    series_uid: str
    sop_uid: str
    modality: str
    instance_number: int
    size: int


@dataclass
class PushProgress:
    """State passed to the progress callback after every batch (and after the resume check).

    Attributes
    ----------
    total : instances found locally.
    done : instances dealt with so far (sent + skipped + failed).
    sent, skipped, failed : counts so far.
    series_uid : the series being pushed.
    last_paths : files of the batch just sent (empty after a resume check).
    """

    total: int
    done: int
    sent: int
    skipped: int
    failed: int
    series_uid: str = ""
    last_paths: tuple[Path, ...] = ()


@dataclass
class PushIssue:
    """A file that was not stored, and why."""

    path: str
    reason: str
    sop_instance_uid: str = ""

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


@dataclass
class PushReport:
    """Summary of :func:`push`.

    Attributes
    ----------
    url : the DICOMweb base URL.
    files_seen : regular files found under the given paths.
    instances : DICOM instances among them (non-DICOM files are listed in ``non_dicom``).
    sent : instances uploaded and confirmed by the server in this call.
    skipped : instances the server already had (resume / second push).
    failed : instances not stored, with reasons.
    series : series pushed (SeriesInstanceUIDs).
    bytes_sent : bytes of the files uploaded.
    requests : STOW-RS requests made; retries : retried HTTP exchanges.
    aborted : why the push stopped early ('' if it did not).
    notes : things the user should know that are not failures (e.g. a DIMSE peer that
        refuses C-FIND, so nothing could be skipped or checked).
    seconds : wall time.
    """

    url: str
    files_seen: int = 0
    instances: int = 0
    sent: int = 0
    skipped: int = 0
    failed: list[PushIssue] = field(default_factory=list)
    non_dicom: list[str] = field(default_factory=list)
    series: list[str] = field(default_factory=list)
    bytes_sent: int = 0
    requests: int = 0
    retries: int = 0
    aborted: str = ""
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """True when every DICOM instance is on the server."""
        return not self.failed and not self.aborted

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["failed"] = [asdict(f) for f in self.failed]
        d["seconds"] = round(self.seconds, 3)
        d["ok"] = self.ok
        return d

    def to_text(self) -> str:
        lines = [
            f"{self.url}: {self.instances} instances in {len(self.series)} series: {self.sent} sent, "
            f"{self.skipped} already there (skipped), {len(self.failed)} failed "
            f"({self.bytes_sent:,} bytes, {self.requests} requests, {self.retries} retries, {self.seconds:.2f} s)"
        ]
        if self.non_dicom:
            lines.append(f"  {len(self.non_dicom)} files are not DICOM and were ignored")
        lines += [f"  failed: {f}" for f in self.failed[:20]]
        if len(self.failed) > 20:
            lines.append(f"  ... and {len(self.failed) - 20} more")
        lines += [f"  note: {n}" for n in self.notes]
        if self.aborted:
            lines.append(f"  stopped early: {self.aborted}")
        if not self.ok:
            lines.append("  run the same command again to resume: instances already stored are skipped")
        return "\n".join(lines)


def scan_instances(paths: Iterable[str | Path]) -> tuple[list[LocalInstance], list[str], int, list[PushIssue]]:
    """DICOM instances under ``paths``: (instances, non-DICOM files, files seen, unreadable).

    Raises
    ------
    UserError
        A path does not exist.
    """
    import pydicom
    from AdaptiveBrushDicomLib.store.dicom_files import iter_files, looks_like_dicom

    found: list[LocalInstance] = []
    non_dicom: list[str] = []
    bad: list[PushIssue] = []
    seen = 0
    tags = ["StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "Modality", "InstanceNumber"]
    for path in iter_files(paths):
        seen += 1
        if not looks_like_dicom(path):
            non_dicom.append(str(path))
            continue
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=tags)
            study, series, sop = (str(getattr(ds, k, "") or "") for k in tags[:3])
        except Exception as exc:  # unreadable header: report, keep going
            bad.append(PushIssue(str(path), f"cannot read the DICOM header ({type(exc).__name__}: {exc})"))
            continue
        if not (study and series and sop):
            bad.append(PushIssue(str(path), "no StudyInstanceUID / SeriesInstanceUID / SOPInstanceUID"))
            continue
        try:
            number = int(getattr(ds, "InstanceNumber", 0) or 0)
        except (TypeError, ValueError):
            number = 0
        found.append(LocalInstance(path, study, series, sop, str(getattr(ds, "Modality", "") or ""), number,
                                   path.stat().st_size))
    return found, non_dicom, seen, bad


def _series_order(instances: list[LocalInstance]) -> list[list[LocalInstance]]:
    """Group by series; image series first, SEG series after (viewers see the images first).

    Duplicate SOPInstanceUIDs (the same instance in two files) are pushed once.
    """
    groups: dict[str, list[LocalInstance]] = {}
    seen: set[str] = set()
    for inst in instances:
        if inst.sop_uid in seen:
            continue
        seen.add(inst.sop_uid)
        groups.setdefault(inst.series_uid, []).append(inst)
    ordered = sorted(groups.values(), key=lambda g: (g[0].modality.upper() == SEG_MODALITY, g[0].study_uid,
                                                     g[0].series_uid))
    return [sorted(g, key=lambda i: (i.instance_number, str(i.path))) for g in ordered]


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
    groups = _series_order(instances)
    report.instances = sum(len(g) for g in groups) + len(unreadable)
    report.series = [g[0].series_uid for g in groups]
    total = report.instances

    def tell(series_uid: str, last: Sequence[LocalInstance] = ()) -> None:
        if progress is not None:
            progress(PushProgress(total, report.sent + report.skipped + len(report.failed), report.sent,
                                  report.skipped, len(report.failed), series_uid,
                                  tuple(i.path for i in last)))

    try:
        for gi, group in enumerate(groups):
            series_uid, study_uid = group[0].series_uid, group[0].study_uid
            try:
                present = conn.sop_uids_of_series(study_uid, series_uid) if resume else set()
            except ServerUnreachableError as exc:
                if report.sent == 0 and gi == 0:
                    raise
                _abort(report, groups[gi:], str(exc))
                break
            todo = [i for i in group if i.sop_uid not in present]
            report.skipped += len(group) - len(todo)
            tell(series_uid)
            stopped = False
            batches = list(_batches(todo, batch_size, batch_bytes))
            for bi, batch in enumerate(batches):
                blobs, sendable = [], []
                for inst in batch:
                    try:
                        blobs.append(inst.path.read_bytes())
                        sendable.append(inst)
                    except OSError as exc:
                        report.failed.append(PushIssue(str(inst.path), f"cannot read: {exc.strerror or exc}",
                                                       inst.sop_uid))
                if not blobs:
                    continue
                what = f"STOW-RS of {len(blobs)} instances of series {series_uid}"
                try:
                    outcome = conn.stow(blobs, what)
                except ServerUnreachableError as exc:
                    rest = sendable + [i for b in batches[bi + 1:] for i in b]
                    _abort(report, [rest] + groups[gi + 1:], str(exc))
                    stopped = True
                    break
                except AuthError:
                    raise
                except RemoteError as exc:  # persistent 5xx or another refusal: this batch only
                    for inst in sendable:
                        report.failed.append(PushIssue(str(inst.path), str(exc), inst.sop_uid))
                    report.requests += 1
                    tell(series_uid, sendable)
                    continue
                report.requests += 1
                for inst in sendable:
                    if inst.sop_uid in outcome.failed:
                        report.failed.append(PushIssue(str(inst.path), outcome.failed[inst.sop_uid], inst.sop_uid))
                    elif inst.sop_uid in outcome.stored or (not outcome.stored and outcome.status < 300):
                        report.sent += 1
                        report.bytes_sent += inst.size
                    else:
                        report.failed.append(PushIssue(
                            str(inst.path), f"the server did not confirm it (HTTP {outcome.status})", inst.sop_uid))
                tell(series_uid, sendable)
            if stopped:
                break
            if verify and todo:
                sent_here = {i.sop_uid for i in todo} - {f.sop_instance_uid for f in report.failed}
                try:
                    now = conn.sop_uids_of_series(study_uid, series_uid)
                except ServerUnreachableError as exc:
                    _abort(report, groups[gi + 1:], str(exc))
                    break
                for inst in todo:
                    if inst.sop_uid in sent_here and inst.sop_uid not in now:
                        report.sent -= 1
                        report.bytes_sent -= inst.size
                        report.failed.append(PushIssue(str(inst.path), "not listed by the server after upload",
                                                       inst.sop_uid))
    finally:
        report.retries = conn.retries_used
        report.seconds = time.perf_counter() - t0
    return report


def _abort(report: PushReport, remaining: list[list[LocalInstance]], reason: str) -> None:
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
