"""The records every DICOM database returns: studies, series, SEG series, import / verify reports.

Plain frozen dataclasses (and three mutable reports), no I/O. The queries that return them
are the :class:`~.database_protocol.DicomDatabase` protocol; the SQLite index
(:mod:`.sqlite`), Slicer's DICOM database (:mod:`~AdaptiveBrushDicomLib.slicer.ctk_database`)
and a DICOMweb server (:mod:`.dicomweb`) all answer with these.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from AdaptiveBrushDicomLib.dicom.sop_class import SegSopClass
from AdaptiveBrushDicomLib.store.series_kind import SeriesKind


@dataclass(frozen=True)
class SegSummary:
    """What the index keeps of one SEG instance's header.

    Attributes
    ----------
    referenced_series_uids : SeriesInstanceUIDs from ReferencedSeriesSequence (0008,1115).
    segment_numbers, segment_labels : described segments (SegmentNumber 0 "Background" of a
        LABELMAP is left out), in SegmentNumber order.
    algorithm_names : distinct algorithm names of the segments, in first-seen order
        (SegmentAlgorithmName (0062,0009) or the SegmentationAlgorithmIdentificationSequence
        AlgorithmName (0066,0036)).
    algorithm_types : SegmentAlgorithmType per segment (AUTOMATIC / SEMIAUTOMATIC / MANUAL).
    content_label : ContentLabel (0070,0080).
    content_description : ContentDescription (0070,0081).
    """

    referenced_series_uids: tuple[str, ...] = ()
    segment_numbers: tuple[int, ...] = ()
    segment_labels: tuple[str, ...] = ()
    algorithm_names: tuple[str, ...] = ()
    algorithm_types: tuple[str, ...] = ()
    content_label: str = ""
    content_description: str = ""


@dataclass(frozen=True)
class SeriesInfo:
    """One series of a study."""

    series_instance_uid: str
    study_instance_uid: str
    modality: str = ""
    series_description: str = ""
    series_number: int | None = None
    n_instances: int = 0
    sop_class_uids: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The record as JSON-ready values (``--json``)."""
        return asdict(self)


@dataclass(frozen=True)
class StudyInfo:
    """One study (for a run: StudyDescription = run name)."""

    study_instance_uid: str
    patient_id: str = ""
    patient_name: str = ""
    study_description: str = ""
    study_date: str = ""
    n_series: int = 0
    n_instances: int = 0

    def to_dict(self) -> dict[str, Any]:
        """The record as JSON-ready values (``--json``)."""
        return asdict(self)


@dataclass(frozen=True)
class SegSeriesInfo:
    """A segmentation series, everything a caller needs without opening its files.

    Attributes
    ----------
    series_instance_uid, study_instance_uid : str
    study_description : str
        StudyDescription; for an optimisation run, the run name.
    series_description : str
    series_number : int or None
    sop_class_uid : str
        66.7 (LABELMAP) or 66.4 (BINARY / FRACTIONAL); the first instance's if several.
    sop_instance_uids : tuple of str
    files : tuple of Path
        Files of the instances, same order.
    referenced_series_uids : tuple of str
        Union of the ReferencedSeriesSequence of the instances.
    segment_labels : tuple of str
    algorithms : tuple of str
        Distinct algorithm names: those in the segments, then the one from the description.
    kind : SeriesKind
        ``"gold"``, ``"trial"`` or ``"other"``.
    trial_number : int or None
    run : str
        Run name from the ContentDescription (``<run> trial <n>``); "" if there is none,
        and then :attr:`run_name` is the StudyDescription.
    """

    series_instance_uid: str
    study_instance_uid: str
    study_description: str = ""
    series_description: str = ""
    series_number: int | None = None
    sop_class_uid: str = ""
    sop_instance_uids: tuple[str, ...] = ()
    files: tuple[Path, ...] = ()
    referenced_series_uids: tuple[str, ...] = ()
    segment_labels: tuple[str, ...] = ()
    algorithms: tuple[str, ...] = ()
    kind: SeriesKind = SeriesKind.OTHER
    trial_number: int | None = None
    run: str = ""

    @property
    def run_name(self) -> str:
        """The run this SEG belongs to: :attr:`run`, else its study's description."""
        return self.run or self.study_description

    @property
    def is_gold(self) -> bool:
        """True for a gold-standard SEG."""
        return self.kind == SeriesKind.GOLD

    @property
    def is_labelmap(self) -> bool:
        """True for a Label Map Segmentation (SOP class 66.7)."""
        return self.sop_class_uid == SegSopClass.LABELMAP

    def to_dict(self) -> dict[str, Any]:
        """The record as JSON-ready values (``--json``)."""
        d = asdict(self)
        d["files"] = [str(p) for p in self.files]
        for key in ("sop_instance_uids", "referenced_series_uids", "segment_labels", "algorithms"):
            d[key] = list(d[key])
        d["run_name"] = self.run_name
        return d


@dataclass(frozen=True)
class FileIssue:
    """A file an operation could not use, and why."""

    path: str
    reason: str
    uid: str | None = None

    def __str__(self) -> str:
        """``path: reason (UID uid)`` for reports."""
        return f"{self.path}: {self.reason}" + (f" (UID {self.uid})" if self.uid else "")


@dataclass
class ImportReport:
    """What one :meth:`~.database_protocol.DicomDatabase.import_paths` call did.

    Attributes
    ----------
    files_seen : int
        Regular files found under the given paths.
    added : int
        Instances new to the database.
    unchanged : int
        Instances already indexed with the same content (same SOPInstanceUID and SHA-256).
    relocated : int
        Known instances (same content) whose indexed file had disappeared; the path was
        updated to the new file.
    non_dicom : int
        Files skipped because they are not DICOM (no ``DICM`` preamble / unparseable header).
    conflicts : list of FileIssue
        Same SOPInstanceUID as an indexed instance but different bytes; not imported.
    errors : list of FileIssue
        DICOM files that could not be indexed (truncated, no SOPInstanceUID, unreadable).
    seconds : float
    """

    files_seen: int = 0
    added: int = 0
    unchanged: int = 0
    relocated: int = 0
    non_dicom: int = 0
    conflicts: list[FileIssue] = field(default_factory=list)
    errors: list[FileIssue] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """True when nothing was refused (non-DICOM files do not count as problems)."""
        return not self.conflicts and not self.errors

    def to_dict(self) -> dict[str, Any]:
        """The record as JSON-ready values (``--json``)."""
        return {
            "files_seen": self.files_seen, "added": self.added, "unchanged": self.unchanged,
            "relocated": self.relocated, "non_dicom": self.non_dicom,
            "conflicts": [asdict(c) for c in self.conflicts], "errors": [asdict(e) for e in self.errors],
            "seconds": round(self.seconds, 4), "ok": self.ok,
        }

    def to_text(self) -> str:
        """The report for people: one summary line, then one line per problem."""
        lines = [
            f"{self.files_seen} files: {self.added} added, {self.unchanged} unchanged, "
            f"{self.relocated} relocated, {self.non_dicom} not DICOM, {len(self.conflicts)} conflicts, "
            f"{len(self.errors)} errors ({self.seconds:.2f} s)"
        ]
        lines += [f"  conflict: {c}" for c in self.conflicts]
        lines += [f"  error: {e}" for e in self.errors]
        return "\n".join(lines)


@dataclass
class VerifyReport:
    """Result of :meth:`~.database_protocol.DicomDatabase.verify`: indexed files that are gone or changed."""

    checked: int = 0
    ok: int = 0
    missing: list[FileIssue] = field(default_factory=list)
    changed: list[FileIssue] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        """True when no indexed file is missing or changed."""
        return not self.missing and not self.changed

    def to_dict(self) -> dict[str, Any]:
        """The record as JSON-ready values (``--json``)."""
        return {"checked": self.checked, "ok": self.ok, "clean": self.clean,
                "missing": [asdict(m) for m in self.missing], "changed": [asdict(c) for c in self.changed]}

    def to_text(self) -> str:
        """The report for people: one summary line, then one line per problem."""
        lines = [f"{self.checked} files checked: {self.ok} ok, {len(self.missing)} missing, {len(self.changed)} changed"]
        lines += [f"  missing: {m}" for m in self.missing]
        lines += [f"  changed: {c}" for c in self.changed]
        if not self.clean:
            lines.append("  run 'abdicom db remove-missing' to forget missing files; re-import changed ones")
        return "\n".join(lines)


@dataclass
class RemoveReport:
    """Result of :meth:`~.database_protocol.DicomDatabase.remove_missing`."""

    instances: int = 0
    series: int = 0
    studies: int = 0
    patients: int = 0
    paths: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The record as JSON-ready values (``--json``)."""
        return asdict(self)

    def to_text(self) -> str:
        """The report for people: one summary line, then one line per problem."""
        return (f"removed {self.instances} instances whose files are gone "
                f"({self.series} series, {self.studies} studies, {self.patients} patients now empty)")
