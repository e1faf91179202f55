"""What a push sends and how it is reported, whatever the transport (DICOMweb STOW-RS or DIMSE C-STORE).

:func:`scan_instances` finds the DICOM files under the paths a user gave;
:func:`series_order` groups them by series, image series before SEG series (so a viewer
sees the images first), each duplicate SOPInstanceUID once. :class:`PushReport` is the
report of both :func:`~.dicomweb.stow.push` and :func:`~.dimse.push.push`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable

from AdaptiveBrushDicomLib.store.series_kind import SEG_MODALITY


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
    """Summary of a push (:func:`~.dicomweb.stow.push`, :func:`~.dimse.push.push`).

    Attributes
    ----------
    url : the DICOMweb base URL, or the DIMSE peer ``AET@host:port``.
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
        """The report as JSON-ready values (``--json``)."""
        d = asdict(self)
        d["failed"] = [asdict(f) for f in self.failed]
        d["seconds"] = round(self.seconds, 3)
        d["ok"] = self.ok
        return d

    def to_text(self) -> str:
        """The report for people: one summary line, then failures (at most 20), notes, how to resume."""
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


def series_order(instances: list[LocalInstance]) -> list[list[LocalInstance]]:
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
